#!/usr/bin/env bash
# Installs the programs the deployment tests (test/deploy) drive, when missing:
#   systemd-analyze  (Debian package systemd; --offline=true needs 252 or later)
#   nft              (Debian package nftables, in /usr/sbin)
#   make             (Debian package make)
#   dpkg-deb         (Debian package dpkg)
#   strace           (Debian package strace)
#   openssl          (Debian package openssl: deploy/etcd/make-certs.sh)
#
# Usage: deploy/test-tools.sh [TOOL...]   (no argument: all of them)
#
# Idempotent: prints "already installed" and changes nothing when every tool
# asked for is there. The install goes through test/tools/apt.sh: service
# starts are refused while apt runs, so installing systemd or nftables starts
# nothing and loads no firewall rules.
#
# Needs root, or password-less sudo. Called by test/deploy (Go) under the file
# lock <user cache dir>/tokenproxy/tools-install.lock, the one
# test/tools/install.sh is run under, so the two never run apt at once.
set -euo pipefail

say() { printf 'test-tools.sh: %s\n' "$*"; }
die() { printf 'test-tools.sh: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/../test/tools/apt.sh"

# package_of TOOL: the Debian package that ships it.
package_of() {
	case $1 in
	systemd-analyze) echo systemd ;;
	nft) echo nftables ;;
	make) echo make ;;
	dpkg-deb) echo dpkg ;;
	strace) echo strace ;;
	openssl) echo openssl ;;
	*) die "unknown tool $1 (known: systemd-analyze nft make dpkg-deb strace openssl)" ;;
	esac
}

# have TOOL: in PATH or in an sbin directory a non-root PATH may lack.
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(systemd-analyze nft make dpkg-deb strace openssl)
missing=()
for t in "${tools[@]}"; do
	p=$(package_of "$t")
	have "$t" && continue
	[[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	say "already installed: ${tools[*]}"
	exit 0
fi

apt_root "${missing[@]}"
apt_install "${missing[@]}"
for t in "${tools[@]}"; do
	have "$t" || die "$t still missing after installing ${missing[*]}"
done
say "installed: ${missing[*]}"
