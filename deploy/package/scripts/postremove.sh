#!/bin/sh
# tokenproxy postrm.
#
# purge removes the logs directory and the (root-only) credentials the
# administrator put in /etc/tokenproxy/credentials. It keeps:
#   /var/lib/tokenproxy   the token map: without it no token in the CRM can
#                         be mapped back to its customer; delete it by hand
#                         once that is intended (and its backups per policy)
#   the tokenproxy user   files that survive (the map, backups) stay owned
#                         by it; remove it with `deluser --system tokenproxy`
set -eu

case "${1:-}" in
purge)
	rm -rf /var/log/tokenproxy /etc/tokenproxy/credentials
	rmdir /etc/tokenproxy 2>/dev/null || true
	if [ -d /var/lib/tokenproxy ]; then
		echo "tokenproxy: kept /var/lib/tokenproxy (the token map) and the tokenproxy user; remove them by hand when intended" >&2
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
remove)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
upgrade | failed-upgrade | abort-install | abort-upgrade | disappear) ;;
*)
	echo "postrm called with unknown argument '${1:-}'" >&2
	exit 1
	;;
esac
exit 0
