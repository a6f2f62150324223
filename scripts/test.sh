#!/usr/bin/env bash
# Runs every test of the broker: unit, table, golden, store conformance, hostile-input, the
# interop tests against real SAML peers (SimpleSAMLphp, pysaml2, xmlsec1), the logout page in
# headless Chromium, and the key backend tests against a real Vault. Installs the Debian packages
# the tests need when they are missing (needs root or sudo), and the Go modules; builds Vault once
# (cold ~5-8 min, then cached in .cache/vault).
set -euo pipefail
cd "$(dirname "$0")/.."

bash interop/install.sh
bash e2e/install.sh
go mod download
# A real Vault v1.14.1 built from Go modules; keys/vault's tests start dev servers from it.
BROKER_TEST_VAULT_BIN=$(bash scripts/vault-dev.sh bin)
export BROKER_TEST_VAULT_BIN
go vet ./...
# Interop tests fail instead of skipping when a peer is missing.
export CI="${CI:-true}"
go test -race -count=1 -timeout 30m "$@" ./...
