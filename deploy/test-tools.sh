#!/usr/bin/env bash
# Installs the programs the deployment tests (test/deploy) drive, when missing:
#   systemd-analyze  (Debian package systemd; --offline=true needs 252 or later)
#   nft              (Debian package nftables, in /usr/sbin)
#   make             (Debian package make)
#   dpkg-deb         (Debian package dpkg)
#   strace           (Debian package strace)
#
# Usage: deploy/test-tools.sh [TOOL...]   (no argument: all of them)
#
# Idempotent: prints "already installed" and changes nothing when every tool
# asked for is there. While apt runs, a policy-rc.d that refuses every service
# start is in place (exit 101), so installing systemd or nftables starts
# nothing and loads no firewall rules; the previous policy-rc.d, if any, is
# put back afterwards.
#
# Needs root, or password-less sudo. Called by test/deploy (Go) under the file
# lock <user cache dir>/tokenproxy/tools-install.lock, the one
# test/tools/install.sh is run under, so the two never run apt at once.
set -euo pipefail

policy=/usr/sbin/policy-rc.d
saved_policy=/usr/sbin/policy-rc.d.tokenproxy-deploy-saved
marker='# installed by tokenproxy deploy/test-tools.sh'

say() { printf 'test-tools.sh: %s\n' "$*"; }
die() { printf 'test-tools.sh: error: %s\n' "$*" >&2; exit 1; }

# package_of TOOL: the Debian package that ships it.
package_of() {
	case $1 in
	systemd-analyze) echo systemd ;;
	nft) echo nftables ;;
	make) echo make ;;
	dpkg-deb) echo dpkg ;;
	strace) echo strace ;;
	*) die "unknown tool $1 (known: systemd-analyze nft make dpkg-deb strace)" ;;
	esac
}

# have TOOL: in PATH or in an sbin directory a non-root PATH may lack.
have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(systemd-analyze nft make dpkg-deb strace)
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

command -v apt-get >/dev/null || die "apt-get not found: install the Debian packages ${missing[*]} (or your system's equivalent) by hand"

if [ "$(id -u)" -eq 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	as_root() { sudo -n "$@"; }
else
	die "installing ${missing[*]} needs root or password-less sudo; run $0 once as root"
fi

apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }

# restore_policy puts back the policy-rc.d that was there before (or removes
# ours); it also repairs what a run killed mid-install left behind.
restore_policy() {
	if as_root test -e "$saved_policy"; then
		as_root mv -f "$saved_policy" "$policy"
	elif as_root grep -qsF "$marker" "$policy"; then
		as_root rm -f "$policy"
	fi
}
restore_policy
if as_root test -e "$policy"; then
	as_root cp -p "$policy" "$saved_policy"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n%s\n# Refuses every service start while the test tools are installed.\nexit 101\n' "$marker" |
	as_root tee "$policy" >/dev/null
as_root chmod 755 "$policy"

# install_pkgs: simulate first so nothing is removed behind the user's back.
out=
install_pkgs() {
	out=$(apt_get install -s --no-install-recommends "${missing[@]}" 2>&1) || return 1
	local removed
	removed=$(printf '%s\n' "$out" | awk '$1 == "Remv" { print $2 }' | tr '\n' ' ')
	[ -z "$removed" ] || die "installing ${missing[*]} would remove: $removed; install by hand if that is intended"
	out=$(apt_get install -y -q --no-install-recommends "${missing[@]}" 2>&1)
}

say "installing: ${missing[*]} (service starts refused during the install)"
if ! install_pkgs; then
	say "apt-get install failed; apt-get update and retry"
	apt_get update -q >/dev/null 2>&1 || true
	install_pkgs || { printf '%s\n' "$out" >&2; die "apt-get install ${missing[*]} failed (after apt-get update)"; }
fi
for t in "${tools[@]}"; do
	have "$t" || die "$t still missing after installing ${missing[*]}"
done
say "installed: ${missing[*]}"
