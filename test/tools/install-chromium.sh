#!/usr/bin/env bash
# Installs headless Chromium (Debian package chromium, with its fonts) for
# the compliance console's browser test (test/integration, chromedp), when
# missing. Idempotent; needs root or sudo; same apt wrapper as install.sh.
# Called by test/tools (Go) under the install lock; safe to run by hand.
set -euo pipefail

say() { printf 'install-chromium.sh: %s\n' "$*"; }
die() { printf 'install-chromium.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/apt.sh"

# fonts-dejavu-core: the console's pages name system fonts only; without a
# font package the screenshots show boxes.
packages=(chromium fonts-dejavu-core)

apt_ensure "${packages[@]}"
command -v chromium >/dev/null || die "chromium is still not installed"
