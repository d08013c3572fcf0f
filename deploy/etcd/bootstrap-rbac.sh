#!/bin/sh
# bootstrap-rbac.sh: etcd users and roles for the proxy nodes, then auth on.
#
#   root              user with the root role; no password: it
#                     authenticates with the root client certificate (CN root)
#   tokenproxy-<node> role: readwrite on the map's prefix only ([PREFIX, PREFIX end))
#   <node>            user with that role; no password: the proxy node's client
#                     certificate has CN <node> (make-certs.sh), which etcd takes
#                     as the user name (client-cert-auth)
#
# A node's user can read and write nothing outside the prefix, cannot
# compact, defragment, snapshot or administer users (etcd-maintain.sh does
# the compaction and defragmentation erasures need, as root).
#
# Usage: bootstrap-rbac.sh NODE...        (e.g. tp-1 tp-2 tp-3)
# Environment:
#   ETCDCTL        etcdctl binary                 (default etcdctl)
#   ETCD_ENDPOINTS client URLs, comma-separated   (default https://127.0.0.1:2379)
#   ETCD_CACERT, ETCD_CERT, ETCD_KEY   CA and root client certificate
#                  (default /etc/etcd/pki/ca.crt, root.crt, root.key)
#   PREFIX         store.etcd.prefix of the nodes (default tp/)
#
# Idempotent: existing users and roles are kept (their grants are set
# again), and it may run again to add a node. Run it once, from one
# appliance, before the first proxy node starts. test/deploy runs it
# against a real etcd cluster and checks what each user may do.
set -eu

[ $# -ge 1 ] || { echo "usage: $0 NODE..." >&2; exit 2; }
ETCDCTL=${ETCDCTL:-etcdctl}
ETCD_ENDPOINTS=${ETCD_ENDPOINTS:-https://127.0.0.1:2379}
ETCD_CACERT=${ETCD_CACERT:-/etc/etcd/pki/ca.crt}
ETCD_CERT=${ETCD_CERT:-/etc/etcd/pki/root.crt}
ETCD_KEY=${ETCD_KEY:-/etc/etcd/pki/root.key}
PREFIX=${PREFIX:-tp/}
case $PREFIX in
*/) ;;
*) echo "bootstrap-rbac.sh: PREFIX must end with / (got $PREFIX)" >&2; exit 2 ;;
esac

ctl() {
	"$ETCDCTL" --endpoints="$ETCD_ENDPOINTS" --cacert="$ETCD_CACERT" \
		--cert="$ETCD_CERT" --key="$ETCD_KEY" "$@"
}

# exists KIND NAME: whether the user or role is there already.
exists() { ctl "$1" get "$2" >/dev/null 2>&1; }

exists user root || ctl user add root --no-password >/dev/null
ctl user grant-role root root >/dev/null
for node in "$@"; do
	role=tokenproxy-$node
	exists role "$role" || ctl role add "$role" >/dev/null
	# --prefix grants [PREFIX, PREFIX end): every key that starts with it.
	ctl role grant-permission "$role" readwrite "$PREFIX" --prefix=true >/dev/null
	exists user "$node" || ctl user add "$node" --no-password >/dev/null
	ctl user grant-role "$node" "$role" >/dev/null
	echo "bootstrap-rbac.sh: user $node, role $role: readwrite on $PREFIX*"
done
ctl auth enable >/dev/null
echo "bootstrap-rbac.sh: auth enabled"
