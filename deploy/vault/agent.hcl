# Vault Agent for tokenproxy: the alternative to the proxy's built-in
# AppRole login. The agent logs in with AppRole, keeps the token renewed
# (re-authenticating when it expires) and writes it to a file; the proxy
# reads that file with
#
#   keys:
#     vault:
#       auth:
#         method: token
#         token_file: /run/tokenproxy-vault-agent/token
#
# Why: the secret_id stays with the agent (the proxy never sees it), and
# one agent can serve the proxy and its CLI (keys rotate, keys status).
# The proxy needs the token at start and for key rotation only: it unwraps
# its data keys once at start.
#
# Runs as the tokenproxy user under tokenproxy-vault-agent.service (beside
# this file); its RuntimeDirectory= is /run/tokenproxy-vault-agent, and
# its LoadCredential= provides role_id and secret_id (the unwrapped
# secret_id: see deploy/README.md). Install as
# /etc/tokenproxy/vault-agent.hcl. The token file is created 0600 tokenproxy.
#
# test/deploy parses this file (HCL syntax, and the settings the proxy
# depends on: approle, the sink path above).

pid_file = "/run/tokenproxy-vault-agent/agent.pid"

vault {
  address = "https://vault.company.example:8200" # REPLACE, as keys.vault.address
  ca_cert = "/etc/tokenproxy/vault-ca.pem"       # REPLACE, as keys.vault.ca_cert
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path   = "/run/credentials/tokenproxy-vault-agent.service/role_id"
      secret_id_file_path = "/run/credentials/tokenproxy-vault-agent.service/secret_id"
      # The credentials directory is read-only: the agent must not try to
      # delete the secret_id after reading it (its default).
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/run/tokenproxy-vault-agent/token"
      mode = 0600
    }
  }
}

# No listener, no template, no cache: the agent only keeps the token file
# current.
