# apt.sh: installing Debian packages for the project's tests, sourced by
# test/tools/install.sh, deploy/test-tools.sh and
# mailauth/testdata/install-tools.sh (which define say and die).
#
# - as root, or through sudo (never prompting when there is no terminal to
#   prompt on, as under go test);
# - while apt runs, a policy-rc.d that refuses every service start is in
#   place (exit 101), so installing postfix, systemd or nftables starts
#   nothing; the previous policy-rc.d, if any, is put back afterwards, and a
#   run killed mid-install is repaired by the next one;
# - apt is asked to simulate first: a package it would remove (another MTA
#   for postfix, say) stops the install unless TOKENPROXY_ALLOW_REMOVE=1;
# - missing or stale package lists get one apt-get update and a retry.
#
# apt_ensure is the whole job for a script that only needs a list of
# packages; a script with steps around the install (install.sh) calls its
# parts: apt_find_missing, apt_root, apt_install, apt_check_installed.

apt_policy=/usr/sbin/policy-rc.d
apt_saved_policy=/usr/sbin/policy-rc.d.tokenproxy-saved
apt_marker='# installed by tokenproxy test/tools/apt.sh'

# apt_root PKG...: defines as_root, or dies saying what needs root.
apt_root() {
	command -v apt-get >/dev/null || die "apt-get not found: install the Debian packages $* (or your system's equivalent) by hand"
	if [ "$(id -u)" -eq 0 ]; then
		as_root() { "$@"; }
	elif command -v sudo >/dev/null; then
		if [ -t 0 ]; then
			as_root() { sudo "$@"; }
		else
			as_root() { sudo -n "$@"; }
		fi
		as_root true 2>/dev/null || die "installing $* needs root: sudo asks for a password and there is no terminal; run $0 once by hand"
	else
		die "installing $* needs root, and sudo is not available; run $0 as root or install $* by hand"
	fi
}

apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }

# apt_restore_policy puts back the policy-rc.d that was there before (or
# removes ours).
apt_restore_policy() {
	if as_root test -e "$apt_saved_policy"; then
		as_root mv -f "$apt_saved_policy" "$apt_policy"
	elif as_root grep -qsF "# installed by tokenproxy" "$apt_policy"; then
		as_root rm -f "$apt_policy"
	fi
}

apt_refuse_services() {
	apt_restore_policy
	if as_root test -e "$apt_policy"; then
		as_root cp -p "$apt_policy" "$apt_saved_policy"
	fi
	trap apt_restore_policy EXIT
	printf '#!/bin/sh\n%s\n# Refuses every service start while test tools are installed.\nexit 101\n' "$apt_marker" |
		as_root tee "$apt_policy" >/dev/null
	as_root chmod 755 "$apt_policy"
}

# apt_try PKG...: simulate, then install; apt's output is kept in $apt_out.
apt_out=
apt_try() {
	apt_out=$(apt_get install -s --no-install-recommends "$@" 2>&1) || return 1
	local removed
	removed=$(printf '%s\n' "$apt_out" | awk '$1 == "Remv" { print $2 }' | tr '\n' ' ')
	if [ -n "$removed" ] && [ "${TOKENPROXY_ALLOW_REMOVE:-}" != 1 ]; then
		die "installing $* would remove: ${removed}; set TOKENPROXY_ALLOW_REMOVE=1 to allow it"
	fi
	apt_out=$(apt_get install -y -q --no-install-recommends "$@" 2>&1)
}

# apt_install PKG...: installs the packages (apt_root first).
apt_install() {
	apt_refuse_services
	say "installing: $* (service starts refused during the install)"
	apt_try "$@" && return 0
	if printf '%s\n' "$apt_out" | grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found|is not available'; then
		say "package lists missing or stale: apt-get update"
		apt_get update -q >/dev/null 2>&1 || true
		apt_try "$@" && return 0
	fi
	printf '%s\n' "$apt_out" >&2
	die "apt-get install $* failed"
}

# apt_installed PKG: dpkg lists the package as installed.
apt_installed() {
	[ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# apt_find_missing PKG...: sets the array apt_missing to the packages dpkg
# does not list as installed (all of them without dpkg-query); when none is
# missing, says "already installed" and returns 1.
apt_missing=()
apt_find_missing() {
	apt_missing=()
	local p
	for p in "$@"; do
		if command -v dpkg-query >/dev/null && apt_installed "$p"; then
			continue
		fi
		apt_missing+=("$p")
	done
	if [ ${#apt_missing[@]} -eq 0 ]; then
		say "already installed: $*"
		return 1
	fi
}

# apt_check_installed PKG...: dies naming the first package dpkg still does
# not list as installed.
apt_check_installed() {
	local p
	for p in "$@"; do
		apt_installed "$p" || die "$p is still not installed after apt-get install"
	done
}

# apt_ensure PKG...: installs those of the packages that are missing (as root
# or through sudo, service starts refused) and checks they are installed
# afterwards; changes nothing when all are there.
apt_ensure() {
	apt_find_missing "$@" || return 0
	apt_root "${apt_missing[@]}"
	apt_install "${apt_missing[@]}"
	apt_check_installed "${apt_missing[@]}"
	say "installed: ${apt_missing[*]}"
}
