#!/usr/bin/env bash
# Runs every test of the broker: unit, table, golden, store conformance, hostile-input and the
# interop tests against real SAML peers (SimpleSAMLphp, pysaml2, xmlsec1). Installs the Debian
# packages the tests need when they are missing (needs root or sudo), and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."

bash interop/install.sh
go mod download
go vet ./...
# Interop tests fail instead of skipping when a peer is missing.
export CI="${CI:-true}"
go test -race -count=1 -timeout 30m "$@" ./...
