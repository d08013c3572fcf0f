#!/bin/sh
# etcd-maintain.sh: compaction and defragmentation of this appliance's etcd
# member after an erasure, on behalf of the proxy nodes.
#
# With RBAC (bootstrap-rbac.sh) a proxy node's etcd user may read and write
# the map's prefix only; compacting the key history and defragmenting a
# member are root's. After an erasure the node writes the key <prefix>wipe
# instead (tokenize/etcdstore/wipe.go). This job, run every minute by
# etcd-maintain.timer on each appliance with the root client certificate,
# compacts the cluster to its current revision once that key changed since
# its last run, then defragments the local member only (its database file
# is rewritten without the freed pages that held the erased ciphertext).
# Every appliance runs it for its own member; the compaction is
# cluster-wide, so the second and third are no-ops.
#
# Environment (defaults for the appliance layout in deploy/etcd):
#   ETCDCTL           etcdctl binary                 /usr/bin/etcdctl
#   ETCD_ENDPOINT     this appliance's member        https://127.0.0.1:2379
#   ETCD_PREFIX       store.etcd.prefix of the nodes tp/
#   ETCD_CACERT, ETCD_CERT, ETCD_KEY   CA and root client certificate
#                     /etc/etcd/pki/ca.crt, /etc/etcd/pki/root.crt, root.key
#   STATE_FILE        last request handled           /var/lib/etcd-maintain/handled
#
# Prints one line when it compacted and defragmented, nothing otherwise.
# test/deploy runs it against a real TLS cluster with RBAC.
set -eu

ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
ETCD_ENDPOINT=${ETCD_ENDPOINT:-https://127.0.0.1:2379}
ETCD_PREFIX=${ETCD_PREFIX:-tp/}
ETCD_CACERT=${ETCD_CACERT:-/etc/etcd/pki/ca.crt}
ETCD_CERT=${ETCD_CERT:-/etc/etcd/pki/root.crt}
ETCD_KEY=${ETCD_KEY:-/etc/etcd/pki/root.key}
STATE_FILE=${STATE_FILE:-/var/lib/etcd-maintain/handled}

ctl() {
	"$ETCDCTL" --endpoints="$ETCD_ENDPOINT" --cacert="$ETCD_CACERT" \
		--cert="$ETCD_CERT" --key="$ETCD_KEY" --command-timeout=60s "$@"
}

# One JSON reply holds both figures: the request key's mod_revision and
# the cluster's current revision (header). "revision": with its leading
# quote matches the header's only, not mod_revision or create_revision.
reply=$(ctl get "${ETCD_PREFIX}wipe" -w json)
requested=$(printf '%s' "$reply" | grep -o '"mod_revision":[0-9]*' | head -n 1 | cut -d: -f2)
current=$(printf '%s' "$reply" | grep -o '"revision":[0-9]*' | head -n 1 | cut -d: -f2)
[ -n "$requested" ] || exit 0 # no erasure asked for a wipe yet
[ -n "$current" ] || { echo "etcd-maintain: no revision in the reply of $ETCD_ENDPOINT" >&2; exit 1; }
handled=$(cat "$STATE_FILE" 2>/dev/null || echo 0)
[ "$requested" -gt "$handled" ] || exit 0

# Compact to the current revision (it covers every request up to now);
# another member's job may have compacted further already.
if ! out=$(ctl compact "$current" --physical 2>&1); then
	case $out in
	*"required revision has been compacted"*) ;;
	*) echo "etcd-maintain: compact: $out" >&2; exit 1 ;;
	esac
fi
ctl defrag >/dev/null
mkdir -p "$(dirname "$STATE_FILE")"
printf '%s\n' "$requested" >"$STATE_FILE.tmp"
mv "$STATE_FILE.tmp" "$STATE_FILE"
echo "etcd-maintain: compacted to revision $current and defragmented $ETCD_ENDPOINT (request at revision $requested)"
