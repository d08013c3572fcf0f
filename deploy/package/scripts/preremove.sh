#!/bin/sh
# tokenproxy prerm: stop the service before its files go away. An upgrade
# leaves it running; the new postinst restarts it on the new binary.
set -eu

case "${1:-}" in
remove | deconfigure)
	if [ -d /run/systemd/system ]; then
		systemctl stop tokenproxy.service || true
		systemctl disable tokenproxy.service >/dev/null 2>&1 || true
	fi
	;;
upgrade | failed-upgrade) ;;
*)
	echo "prerm called with unknown argument '${1:-}'" >&2
	exit 1
	;;
esac
exit 0
