#!/bin/sh
# tokenproxy postinst: the service account, ownership and modes, systemd.
#
# Debian calls it as "postinst configure [OLD_VERSION]" (and with
# abort-upgrade / abort-remove ... after a failed upgrade or removal).
# test/deploy runs it in a throwaway root (private mount namespace, chroot).
set -eu

user=tokenproxy
conf_dir=/etc/tokenproxy
conf=$conf_dir/tokenproxy.yaml
cred_dir=$conf_dir/credentials
data_dir=/var/lib/tokenproxy
log_dir=/var/log/tokenproxy

# create_user adds the system group and user when missing: no password, no
# login shell, home is the data directory (not created here: the package
# ships it). adduser (Debian's front end) when present, else useradd.
create_user() {
	if ! getent group "$user" >/dev/null; then
		if command -v addgroup >/dev/null; then
			addgroup --system --quiet "$user"
		else
			groupadd --system "$user"
		fi
	fi
	if ! getent passwd "$user" >/dev/null; then
		if command -v adduser >/dev/null; then
			adduser --system --quiet --ingroup "$user" --home "$data_dir" \
				--no-create-home --shell /usr/sbin/nologin \
				--gecos "tokenproxy SMTP proxy" "$user"
		else
			useradd --system --gid "$user" --home-dir "$data_dir" \
				--no-create-home --shell /usr/sbin/nologin \
				--comment "tokenproxy SMTP proxy" "$user"
		fi
	fi
}

# set_owner OWNER:GROUP MODE PATH, unless the administrator keeps a
# dpkg-statoverride for PATH (then theirs wins).
set_owner() {
	[ -e "$3" ] || return 0
	if command -v dpkg-statoverride >/dev/null && dpkg-statoverride --list "$3" >/dev/null 2>&1; then
		return 0
	fi
	chown "$1" "$3"
	chmod "$2" "$3"
}

case "${1:-}" in
configure)
	create_user
	# dpkg unpacked these before the user existed (owned by root then).
	set_owner root:"$user" 0750 "$conf_dir"
	set_owner root:"$user" 0640 "$conf"
	set_owner root:root 0700 "$cred_dir"
	set_owner "$user":"$user" 0700 "$data_dir"
	set_owner "$user":"$user" 0700 "$log_dir"
	# Credentials are copied by systemd (as root) at start: keep them
	# root-only.
	for f in "$cred_dir"/*; do
		if [ -f "$f" ]; then
			set_owner root:root 0600 "$f"
		fi
	done

	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		# An upgrade restarts a running proxy on the new binary (a
		# graceful stop: SIGTERM drains). A first install starts nothing:
		# the configuration needs its placeholders replaced first.
		if [ -n "${2:-}" ]; then
			systemctl try-restart tokenproxy.service || true
		fi
	fi
	;;
abort-upgrade | abort-remove | abort-deconfigure) ;;
*)
	echo "postinst called with unknown argument '${1:-}'" >&2
	exit 1
	;;
esac
exit 0
