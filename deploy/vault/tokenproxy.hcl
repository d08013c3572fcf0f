# Least-privilege Vault policy for tokenproxy (transit key "tokenproxy" on
# the mount "transit"; change both names together with keys.vault in the
# configuration). Apply: vault policy write tokenproxy tokenproxy.hcl
#
# The proxy needs exactly these, and test/integration applies this file to
# a real Vault server, runs the key life cycle under it, and checks that
# anything else is denied.

# First start: Vault generates the data keys and returns only their
# wrapped form (no datakey/plaintext grant is needed).
path "transit/datakey/wrapped/tokenproxy" {
  capabilities = ["update"]
}

# Every start: unwrap the stored data keys, once.
path "transit/decrypt/tokenproxy" {
  capabilities = ["update"]
}

# proxy keys rotate: rotate the key encryption key, rewrap the data keys.
path "transit/keys/tokenproxy/rotate" {
  capabilities = ["update"]
}
path "transit/rewrap/tokenproxy" {
  capabilities = ["update"]
}

# proxy keys status: key versions (never key material).
path "transit/keys/tokenproxy" {
  capabilities = ["read"]
}

# Token auth: check the token at start, renew it while running.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# The audit trail signs its checkpoints with the Ed25519 transit key
# "tokenproxy-audit" (whenever keys.provider is vault; the name is fixed):
# the private key never leaves Vault. The public keys are read at start, to
# check the key's type, and by `proxy audit verify` to check signatures.
path "transit/sign/tokenproxy-audit" {
  capabilities = ["update"]
}
path "transit/keys/tokenproxy-audit" {
  capabilities = ["read"]
}

# Only when outbound.dkim.vault_key names a transit key (here
# "tokenproxy-dkim"): sign with it, and read its public key for
# `proxy dns`. The private key never leaves Vault. Uncomment to use.
#
# path "transit/sign/tokenproxy-dkim" {
#   capabilities = ["update"]
# }
# path "transit/keys/tokenproxy-dkim" {
#   capabilities = ["read"]
# }
