#!/usr/bin/env bash
# Prints the broker's benchmark numbers: brokered logins per second per core (with the in-process
# IdP and app, and for the broker alone), RSA signatures per login, plain crypto/rsa signs per
# second in the same run, and their ratio; then back-channel logouts per second per core (ratio
# likewise) and the 50-app SOAP fan-out (total against the leg timeout and against the slowest
# leg). Then a state-bound check across many logins (BROKER_SOAK_LOGINS, default 100000). Last, sign-ins
# with keys in Vault against local keys.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'BrokeredLogin$' -cpu 1 -benchtime "${BENCHTIME:-5s}" ./sso/
go test -run '^$' -bench 'BrokeredLoginParallel' -cpu "$(nproc)" -benchtime "${BENCHTIME:-5s}" ./sso/
go test -run '^$' -bench 'BackChannelLogout' -cpu 1 -benchtime "${BENCHTIME:-5s}" ./sso/
go test -run '^$' -bench 'FanOut' -benchtime 10x ./slo/
BROKER_SOAK_LOGINS="${BROKER_SOAK_LOGINS:-100000}" go test -count=1 -run TestStateBoundedAcrossLogins -v -timeout 60m ./sso/ | grep -E 'logins:|swept|^(ok|FAIL|---)'
# Sign-ins with keys in a real Vault dev server (Transit) against local keys, in the same run.
BROKER_TEST_VAULT_BIN="${BROKER_TEST_VAULT_BIN:-$(bash scripts/vault-dev.sh bin)}" \
	go test -run '^$' -bench 'VaultLogin' -cpu 1 -benchtime "${BENCHTIME:-5s}" ./sso/
