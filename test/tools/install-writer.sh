#!/usr/bin/env bash
# Installs LibreOffice Writer without a GUI (Debian package
# libreoffice-writer-nogui: headless soffice), when missing. The text-forms
# corpus (test/textforms) has it write RTF as a word processor does, and
# read the rewritten RTF back to text, which also proves it still opens.
# Idempotent; needs root or sudo; same apt wrapper as install.sh.
set -euo pipefail

say() { printf 'install-writer.sh: %s\n' "$*"; }
die() { printf 'install-writer.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

if command -v soffice >/dev/null; then
	say "already installed: $(command -v soffice)"
	exit 0
fi
apt_root libreoffice-writer-nogui
apt_install libreoffice-writer-nogui
command -v soffice >/dev/null || die "soffice is still not found after installing libreoffice-writer-nogui"
say "installed: $(command -v soffice)"
