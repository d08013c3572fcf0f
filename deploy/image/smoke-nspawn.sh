#!/usr/bin/env bash
# Boots the root file system of build-rootfs.sh in systemd-nspawn and checks
# tokenproxy.service under a real systemd: the sandbox as shipped, the
# credentials, ports 25 and 587 bound by an unprivileged user with only
# CAP_NET_BIND_SERVICE, /readyz, an SMTP greeting, reload (SIGHUP), a
# graceful stop, and tokenproxy-admin (a transient unit with the
# credentials). The test configuration is the shipped one with the local
# keyring and loopback downstreams instead of Vault and real hosts, and
# short-lived self-signed certificates.
#
#   sudo deploy/image/smoke-nspawn.sh dist/tokenproxy-rootfs.tar.gz
#
# Needs root, systemd-nspawn (package systemd-container) and openssl. Not
# part of `go test ./...` (the root file system download takes a minute);
# run it after changing the unit.
set -euo pipefail

tarball=${1:?usage: smoke-nspawn.sh ROOTFS.tar.gz}
work=$(mktemp -d /var/tmp/tokenproxy-smoke.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root result=$work/result
mkdir -p "$root" "$result"
chmod 0755 "$work" "$root"
tar -C "$root" -xzf "$tarball"

creds=$root/etc/tokenproxy/credentials
for n in inbound outbound; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$n.company.example" -keyout "$creds/$n.key" -out "$creds/$n.crt" 2>/dev/null
done
echo unused >"$creds/role_id"
echo unused >"$creds/secret_id"
chmod 0600 "$creds"/*
conf=$root/etc/tokenproxy/tokenproxy.yaml
sed -i -e 's/^  provider: vault/  provider: local/' \
	-e 's/^    address: intake\.crm\.example:25 .*/    address: 127.0.0.1:2526/' \
	-e 's/^    address: smarthost\.company\.example:587 .*/    address: 127.0.0.1:2527/' \
	-e 's/^    tls: verify$/    tls: insecure/' "$conf"

# The checks run inside the container, after tokenproxy.service, and write
# to /result; then the container powers off.
cat >"$root/etc/systemd/system/smoke.service" <<'UNIT'
[Unit]
After=tokenproxy.service
[Service]
Type=oneshot
ExecStart=/bin/bash /smoke.sh
[Install]
WantedBy=multi-user.target
UNIT
cat >"$root/smoke.sh" <<'SH'
r=/result
sleep 3
systemctl is-active tokenproxy >$r/active 2>&1
curl -sS http://127.0.0.1:8025/readyz >$r/readyz 2>&1
pid=$(systemctl show -p MainPID --value tokenproxy)
grep -E '^(Uid|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/$pid/status >$r/proc 2>&1
(exec 3<>/dev/tcp/127.0.0.1/25; head -n1 <&3) >$r/smtp25 2>&1
(exec 3<>/dev/tcp/127.0.0.1/587; head -n1 <&3) >$r/smtp587 2>&1
systemctl reload tokenproxy >$r/reload 2>&1 && echo reloaded >>$r/reload
sleep 1
systemctl is-active tokenproxy >$r/active-after-reload 2>&1
systemctl stop tokenproxy
systemctl show -p Result --value tokenproxy >$r/stop-result
tokenproxy-admin check-config >$r/admin-config 2>&1
tokenproxy-admin keys status >$r/admin-keys 2>&1 && echo "exit 0" >>$r/admin-keys
journalctl -b -u tokenproxy --no-pager -o cat >$r/journal 2>&1
systemd-analyze security tokenproxy >$r/security 2>&1
systemctl poweroff
SH
ln -sf /etc/systemd/system/smoke.service "$root/etc/systemd/system/multi-user.target.wants/smoke.service"
ln -sf /lib/systemd/system/tokenproxy.service "$root/etc/systemd/system/multi-user.target.wants/tokenproxy.service"

timeout 180 systemd-nspawn -q -b -D "$root" --register=no --keep-unit --private-network \
	--bind="$result:/result" >"$work/console.log" 2>&1 || true

fail=0
check() { # NAME FILE PATTERN
	if grep -qE "$3" "$result/$2" 2>/dev/null; then
		echo "ok    $1"
	else
		echo "FAIL  $1: $(head -c 400 "$result/$2" 2>/dev/null || echo "no $2")"
		fail=1
	fi
}
check "service active" active '^active$'
check "/readyz" readyz '^ready$'
check "runs as the tokenproxy user" proc '^Uid:[[:space:]]+[1-9]'
check "only CAP_NET_BIND_SERVICE (effective)" proc '^CapEff:[[:space:]]+0000000000000400$'
check "only CAP_NET_BIND_SERVICE (bounding)" proc '^CapBnd:[[:space:]]+0000000000000400$'
check "no new privileges" proc '^NoNewPrivs:[[:space:]]+1$'
check "seccomp filter" proc '^Seccomp:[[:space:]]+2$'
check "SMTP greeting on 25" smtp25 '^220 '
check "SMTP greeting on 587" smtp587 '^220 '
check "reload (SIGHUP)" reload '^reloaded$'
check "still active after reload" active-after-reload '^active$'
check "credentials read" journal 'run/credentials/tokenproxy\.service/inbound\.crt'
check "clean stop" stop-result '^success$'
check "tokenproxy-admin: credential paths rewritten" admin-config 'secret_id_file: /run/credentials/tokenproxy-admin-[0-9]+\.service/tokenproxy_secret_id'
check "tokenproxy-admin keys status (service stopped)" admin-keys '^exit 0$'
grep -m1 'Overall exposure' "$result/security" || true
if [ "$fail" -ne 0 ]; then
	echo "--- journal"; cat "$result/journal" || true
	exit 1
fi
