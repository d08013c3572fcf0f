#!/usr/bin/env bash
# Installs the producers and readers of the text-forms and PDF tests
# (test/textforms, rewrite/pdf, issue 17 items 2, 4 and 6), when missing:
#   libreoffice-writer-nogui   headless soffice: writes RTF as a word
#                              processor does, and reads the rewritten RTF
#                              back to text (which proves it still opens)
#   python3-reportlab          writes PDFs (compressed content streams,
#                              info dictionary, link annotations)
#   poppler-utils              pdftotext, an independent PDF reader
# The Python module is Debian's, so the tests run /usr/bin/python3 (a pyenv
# or venv python3 earlier in PATH would not see it).
# Idempotent; needs root or sudo; same apt wrapper as install.sh.
set -euo pipefail

packages=(libreoffice-writer-nogui python3-reportlab poppler-utils)

say() { printf 'install-textforms.sh: %s\n' "$*"; }
die() { printf 'install-textforms.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

apt_ensure "${packages[@]}"
