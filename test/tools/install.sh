#!/usr/bin/env bash
# Installs the mail tools the tests and benchmarks use, when missing:
#   swaks                                (Debian package swaks)
#   Net::SSLeay, IO::Socket::SSL        (libnet-ssleay-perl, libio-socket-ssl-perl: swaks --tls)
#   smtp-sink, smtp-source, postfix ...  (Debian package postfix, in /usr/sbin)
#
# Idempotent: prints "already installed" and changes nothing when both are
# there. Postfix is installed as a set of programs only: debconf is preseeded
# with "No configuration" (no main.cf, nothing listening) and a policy-rc.d
# that refuses every service start is in place during the install, so the
# machine does not become a mail server. A package that would have to be
# removed to make room for postfix (another MTA, e.g. exim4) makes the script
# stop instead; TOKENPROXY_ALLOW_MTA_REPLACE=1 lets apt replace it.
#
# Needs root, or sudo. Called by test/tools (Go) under a lock, and by
# test/bench-smtp.sh; safe to run by hand.
set -euo pipefail

packages=(swaks postfix libnet-ssleay-perl libio-socket-ssl-perl)
policy=/usr/sbin/policy-rc.d
saved_policy=/usr/sbin/policy-rc.d.tokenproxy-saved
marker='# installed by tokenproxy test/tools/install.sh'

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

installed() { # package name
	[ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
	if command -v dpkg-query >/dev/null && installed "$p"; then
		continue
	fi
	missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	say "already installed: ${packages[*]}"
	exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: this script installs Debian packages (${missing[*]}); install them with your system's package manager"

# as_root runs a command as root: directly, or through sudo (never prompting
# when there is no terminal to prompt on, as under go test).
if [ "$(id -u)" -eq 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null; then
	if [ -t 0 ]; then
		as_root() { sudo "$@"; }
	else
		as_root() { sudo -n "$@"; }
	fi
	as_root true 2>/dev/null || die "installing ${missing[*]} needs root: sudo is there but asks for a password and there is no terminal; run $0 once by hand"
else
	die "installing ${missing[*]} needs root, and sudo is not available; run $0 as root or install ${missing[*]} by hand"
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }

# restore_policy puts back the policy-rc.d that was there before (or removes
# ours). It also repairs what an earlier run killed mid-install left behind.
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
say "service starts disabled during the install ($policy)"

if [[ " ${missing[*]} " == *" postfix "* ]]; then
	echo 'postfix postfix/main_mailer_type select No configuration' | as_root debconf-set-selections
	say "debconf preseeded: postfix/main_mailer_type = No configuration"
fi

# try_install simulates first, so that nothing is removed behind the user's
# back, then installs. Its output is kept in $out.
out=
try_install() {
	out=$(apt_get install -s --no-install-recommends "${missing[@]}" 2>&1) || return 1
	local removed
	removed=$(printf '%s\n' "$out" | awk '$1 == "Remv" { print $2 }' | tr '\n' ' ')
	if [ -n "$removed" ] && [ "${TOKENPROXY_ALLOW_MTA_REPLACE:-}" != 1 ]; then
		die "installing ${missing[*]} would remove: ${removed}(postfix conflicts with other mail servers). Set TOKENPROXY_ALLOW_MTA_REPLACE=1 to allow it"
	fi
	out=$(apt_get install -y -q --no-install-recommends "${missing[@]}" 2>&1)
}

say "installing: ${missing[*]}"
if ! try_install; then
	# Missing or stale package lists ("Unable to locate package", 404 on
	# download) are the usual cause; anything else is reported as it is.
	if printf '%s\n' "$out" | grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found|is not available'; then
		say "package lists missing or stale: apt-get update"
		apt_get update -q >/dev/null 2>&1 || true
		try_install || { printf '%s\n' "$out" >&2; die "apt-get install ${missing[*]} failed (after apt-get update)"; }
	else
		printf '%s\n' "$out" >&2
		die "apt-get install ${missing[*]} failed"
	fi
fi
for p in "${missing[@]}"; do
	installed "$p" || die "$p is still not installed after apt-get install"
done
say "installed: ${missing[*]} ($(command -v swaks || echo 'swaks ?'), /usr/sbin/smtp-sink, /usr/sbin/smtp-source)"
