#!/bin/sh
# make-certs.sh: the certificates of the example three-appliance etcd
# cluster, with openssl. Run it once on an offline machine (or where the
# CA key may live), then copy to each appliance only what it needs (see
# deploy/README.md, "Cluster (etcd)"):
#
#   ca.crt                     every appliance (etcd and tokenproxy)
#   ca.key                     nowhere: keep it offline, it signs members and nodes
#   etcd-N.crt/.key            member N's client-facing certificate (server)
#   etcd-N-peer.crt/.key       member N's peer certificate (server and client)
#   <node>.crt/.key            proxy node <node>'s client certificate, CN = <node>:
#                              its etcd user (bootstrap-rbac.sh)
#   root.crt/.key              etcd's root user (CN root): bootstrap-rbac.sh, etcdctl
#                              by the operator, etcd-maintain.sh. Root-only on disk.
#
# Usage: make-certs.sh OUTDIR
# Environment:
#   MEMBERS  "name=IP ..." of the members  (default: etcd-1=10.0.0.11 etcd-2=10.0.0.12 etcd-3=10.0.0.13)
#   NODES    proxy node names              (default: tp-1 tp-2 tp-3)
#   DAYS     validity of the leaf certificates (default 825); the CA gets 10 years
#
# Every member certificate holds its IP and 127.0.0.1 (etcd-maintain.sh and
# etcdctl on the appliance use the loopback listener). Keys are ECDSA P-256,
# written with mode 0600. An existing CA in OUTDIR is reused, so the script
# can issue a certificate for a node added later. test/deploy runs it and
# checks the outputs.
set -eu
umask 077

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
MEMBERS=${MEMBERS:-"etcd-1=10.0.0.11 etcd-2=10.0.0.12 etcd-3=10.0.0.13"}
NODES=${NODES:-"tp-1 tp-2 tp-3"}
DAYS=${DAYS:-825}
mkdir -p "$out"
cd "$out"

if [ ! -f ca.key ]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout ca.key -out ca.crt -days 3650 -subj "/CN=tokenproxy etcd CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME CN EKU [SAN]: NAME.key and NAME.crt signed by the CA.
issue() {
	name=$1 cn=$2 eku=$3 san=${4:-}
	ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku"
	[ -z "$san" ] || ext="$ext
subjectAltName=$san"
	printf '%s\n' "$ext" >"$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$name.key" -out "$name.csr" -subj "/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
		-days "$DAYS" -extfile "$name.ext" -out "$name.crt" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
	chmod 600 "$name.key"
}

for m in $MEMBERS; do
	name=${m%%=*} ip=${m#*=}
	# clientAuth too: the member dials its own client port (gRPC gateway)
	# with this certificate when client-cert-auth is on.
	issue "$name" "$name" serverAuth,clientAuth "IP:$ip,IP:127.0.0.1,DNS:$name"
	issue "$name-peer" "$name" serverAuth,clientAuth "IP:$ip,DNS:$name"
done
for n in $NODES root; do
	issue "$n" "$n" clientAuth
done
rm -f ca.srl
chmod 644 ca.crt
echo "make-certs.sh: CA, members ($MEMBERS), clients ($NODES root) in $out"
