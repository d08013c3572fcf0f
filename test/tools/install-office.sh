#!/usr/bin/env bash
# Installs the office document producers and readers the attachment tests
# use (rewrite/attach, test/attachcorpus), when missing:
#   python3-docx, python3-openpyxl   write and read back docx and xlsx
#   libreoffice-{writer,calc,impress}-nogui
#                                    headless soffice: odt/ods/odp and pptx,
#                                    and the conversion to text that checks
#                                    a rewritten document still opens
#   unzip                            lists and extracts packages as a reader
# The Python modules are Debian's, so the tests run /usr/bin/python3 (a
# pyenv or venv python3 earlier in PATH would not see them).
# Idempotent; needs root or sudo; same apt wrapper as install.sh.
set -euo pipefail

packages=(python3-docx python3-openpyxl libreoffice-writer-nogui libreoffice-calc-nogui
	libreoffice-impress-nogui unzip)

say() { printf 'install-office.sh: %s\n' "$*"; }
die() { printf 'install-office.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

apt_ensure "${packages[@]}"
