#!/usr/bin/env bash
# Bootstrap tokenproxy's AppRole in Vault, idempotently:
#   transit engine and keys (KEY, and the audit signing key
#   tokenproxy-audit), the least-privilege policy (tokenproxy.hcl beside
#   this script), the AppRole role, its role_id, and a response-wrapped
#   secret_id (single use: unwrapped by the proxy at its next start).
#
# Usage: VAULT_ADDR=https://vault:8200 VAULT_TOKEN=<admin token> \
#          [VAULT_CACERT=ca.pem] [KEY=tokenproxy] [ROLE=tokenproxy] [WRAP_TTL=24h] \
#          bootstrap-approle.sh OUT_DIR
# Writes OUT_DIR/role_id and OUT_DIR/secret_id.wrapped (mode 0600), for
# keys.vault.auth.approle.role_id_file / secret_id_file (secret_id_wrapped: true).
# Needs bash, curl and sed only. Re-run it to issue a fresh wrapped secret_id.
set -euo pipefail

out=${1:?usage: bootstrap-approle.sh OUT_DIR}
: "${VAULT_ADDR:?set VAULT_ADDR}" "${VAULT_TOKEN:?set VAULT_TOKEN (an admin token)}"
key=${KEY:-tokenproxy}
role=${ROLE:-tokenproxy}
wrap_ttl=${WRAP_TTL:-24h}
here=$(cd "$(dirname "$0")" && pwd)
curl_tls=()
[ -n "${VAULT_CACERT:-}" ] && curl_tls=(--cacert "$VAULT_CACERT")

# vault METHOD PATH [JSON] [extra curl args...]: prints the response body;
# fails with Vault's errors on a non-2xx status.
vault() {
	local method=$1 path=$2 body=${3:-} resp status
	shift 3 || shift $#
	resp=$(curl -sS "${curl_tls[@]}" -X "$method" -H "X-Vault-Token: $VAULT_TOKEN" \
		-H "Content-Type: application/json" ${body:+--data-binary "$body"} "$@" \
		-w '\n%{http_code}' "$VAULT_ADDR/v1/$path")
	status=${resp##*$'\n'}
	resp=${resp%$'\n'*}
	if [ "${status:0:1}" != 2 ]; then
		echo "vault $method $path: HTTP $status: $resp" >&2
		return 1
	fi
	printf '%s' "$resp"
}

# field NAME: the first string value of NAME in the JSON on stdin.
field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n1; }

# json_string: stdin as a JSON string literal.
json_string() { printf '"%s"' "$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | sed -e ':a;N;$!ba;s/\n/\\n/g')"; }

mounted() { vault GET "$1" | grep -q "\"$2/\""; }

mounted sys/mounts transit || vault POST sys/mounts/transit '{"type":"transit"}' >/dev/null
vault POST "transit/keys/$key" '{}' >/dev/null
# The audit trail's checkpoint signing key. Creating an existing key is a
# no-op that keeps its type, so check the type of what is there.
vault POST transit/keys/tokenproxy-audit '{"type":"ed25519"}' >/dev/null
audit_type=$(vault GET transit/keys/tokenproxy-audit | field type)
[ "$audit_type" = ed25519 ] || { echo "bootstrap: transit/keys/tokenproxy-audit is of type ${audit_type:-unknown}; want ed25519 (the audit trail signs with it)" >&2; exit 1; }
policy=$(sed "s#/tokenproxy\"#/$key\"#g; s#/tokenproxy/#/$key/#g" "$here/tokenproxy.hcl" | json_string)
vault PUT "sys/policies/acl/$role" "{\"policy\":$policy}" >/dev/null
mounted sys/auth approle || vault POST sys/auth/approle '{"type":"approle"}' >/dev/null
vault POST "auth/approle/role/$role" \
	"{\"token_policies\":[\"$role\"],\"token_no_default_policy\":true,\"token_ttl\":\"1h\",\"token_max_ttl\":\"24h\",\"secret_id_ttl\":\"0\"}" >/dev/null

mkdir -p "$out"
umask 077
vault GET "auth/approle/role/$role/role-id" | field role_id >"$out/role_id"
vault POST "auth/approle/role/$role/secret-id" '{}' -H "X-Vault-Wrap-TTL: $wrap_ttl" | field token >"$out/secret_id.wrapped"
[ -s "$out/role_id" ] && [ -s "$out/secret_id.wrapped" ] || { echo "bootstrap: could not read role_id or the wrapped secret_id" >&2; exit 1; }

cat <<CONF
AppRole "$role" ready; files in $out (mode 0600). In the proxy's configuration:
keys:
  provider: vault
  vault:
    address: $VAULT_ADDR
    key: $key
    auth:
      method: approle
      approle: {role_id_file: $out/role_id, secret_id_file: $out/secret_id.wrapped, secret_id_wrapped: true}
CONF
