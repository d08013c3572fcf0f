#!/usr/bin/env bash
# test/security.sh: replay the SMTP attacks of TestSMTPSecurity
# (test/integration/security_test.go) against a freshly built `proxy serve`
# and print the table of what was sent, the reply, and the verdict. Exit
# status 1 if any outcome was not the expected refusal.
#
# Needs what the integration tests need: swaks and Postfix's smtp-sink
# (installed by test/tools/install.sh on first use) and the Vault dev
# server the package's TestMain starts (built once into ~/.cache/tokenproxy).
# testssl.sh (Debian package, test/tools/install-testssl.sh) checks both
# routes' STARTTLS: its rows are part of the table.
set -euo pipefail
cd "$(dirname "$0")/.."
test/tools/install-testssl.sh
export TOKENPROXY_TESTSSL=1
exec go test -count=1 -timeout 10m -run '^TestSMTPSecurity$' -v ./test/integration/ "$@"
