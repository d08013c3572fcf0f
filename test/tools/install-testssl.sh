#!/usr/bin/env bash
# Installs testssl.sh (Debian package testssl.sh, with its bash, openssl and
# dnsutils dependencies) for test/security.sh's TLS check, when missing.
# Idempotent; needs root or sudo; same apt wrapper as install.sh.
set -euo pipefail

say() { printf 'install-testssl.sh: %s\n' "$*"; }
die() { printf 'install-testssl.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

if command -v testssl >/dev/null || command -v testssl.sh >/dev/null; then
	say "already installed"
	exit 0
fi
apt_root testssl.sh
apt_install testssl.sh
command -v testssl >/dev/null || command -v testssl.sh >/dev/null || die "testssl.sh is still not installed"
say "installed: $(command -v testssl || command -v testssl.sh)"
