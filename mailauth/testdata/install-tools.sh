#!/usr/bin/env bash
# Installs the independent DKIM implementations the mailauth tests check our
# signatures and our verifier against, when missing:
#   Mail::DKIM  (Debian package libmail-dkim-perl) with Net::DNS
#               (libnet-dns-perl): rsa-sha256. Bookworm's Mail::DKIM
#               1.20230212 predates ed25519 support (added in 1.20230630).
#   dkimpy      (python3-dkim, with python3-nacl and python3-dnspython):
#               ed25519-sha256 (RFC 8463), and ARC (RFC 8617), whose
#               arc_sign needs python3-authres (only a Suggests of
#               python3-dkim) to read the Authentication-Results it seals.
#
# Debian's own interpreters are used (/usr/bin/perl, /usr/bin/python3): a
# python3 earlier in PATH (pyenv, a venv) does not see Debian's modules.
#
# Idempotent: prints "already installed" and changes nothing when all are
# there. Needs root, or password-less sudo. Called by the package's tests
# (requireTools in tools_test.go, through test/tools.RunScript) under a
# file lock in os.UserCacheDir()/tokenproxy; safe to run by hand.
set -euo pipefail

packages=(libmail-dkim-perl libnet-dns-perl python3-dkim python3-nacl python3-dnspython python3-authres)
modules=(Mail::DKIM::Verifier Mail::DKIM::Signer Net::DNS::Resolver)
python_modules=(dkim nacl.signing dns.resolver authres)

say() { printf 'install-tools.sh: %s\n' "$*"; }
die() { printf 'install-tools.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/../../test/tools/apt.sh"

have_modules() {
	local m
	for m in "${modules[@]}"; do
		/usr/bin/perl -M"$m" -e1 2>/dev/null || return 1
	done
	for m in "${python_modules[@]}"; do
		/usr/bin/python3 -c "import $m" 2>/dev/null || return 1
	done
}

if have_modules; then
	say "already installed: ${packages[*]}"
	exit 0
fi

apt_root "${packages[@]}"
apt_install "${packages[@]}"
have_modules || die "modules still missing after installing ${packages[*]}: Perl ${modules[*]}, Python ${python_modules[*]}"
say "installed: ${packages[*]}"
