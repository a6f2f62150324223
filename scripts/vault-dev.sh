#!/usr/bin/env bash
# usage: scripts/vault-dev.sh bin|start|stop   (env: VAULT_PORT, default 8200)
#
#   bin    build Vault if needed and print the binary's path (scripts/test.sh exports it as
#          BROKER_TEST_VAULT_BIN; the keys/vault tests start their own servers from it)
#   start  start a dev server on 127.0.0.1:VAULT_PORT (in memory, unsealed, root token "root",
#          Transit enabled at transit/) for trying the broker by hand; it also binds VAULT_PORT+1
#   stop   stop that server
#
# The binary is a real HashiCorp Vault v1.14.1 (MPL-2.0) built from Go modules by
# tools/vaultserver/build.sh: ~5-8 minutes and ~5 GB of Go caches cold, then cached as
# .cache/vault/vault-1.14.1-HASH, HASH covering the wrapper's files (a change rebuilds it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wrap=$root/tools/vaultserver
state=$root/.cache/vault
port=${VAULT_PORT:-8200}
hash=$(cd "$wrap" && cat main.go go.mod go.sum build.sh | sha256sum | cut -c1-16)
bin=$state/vault-1.14.1-$hash

build() {
  [ -x "$bin" ] && return 0
  mkdir -p "$state"
  echo "vault-dev.sh: building Vault v1.14.1 from Go modules (cold ~5-8 min; cached afterwards)" >&2
  local start=$SECONDS tmp=$bin.tmp.$$
  trap 'rm -f "$tmp"' EXIT
  "$wrap/build.sh" "$tmp" >&2
  mv "$tmp" "$bin"   # only a complete binary gets the cached name
  trap - EXIT
  echo "vault-dev.sh: built $bin in $((SECONDS - start))s" >&2
  # Binaries of older wrapper versions are 180 MB each.
  find "$state" -maxdepth 1 -name 'vault-1.14.1-*' ! -name '*.tmp.*' ! -name "$(basename "$bin")" -delete
}

case "${1:-}" in
bin)
  build
  echo "$bin" ;;
start)
  build
  log=$state/server-$port.log pidf=$state/server-$port.pid
  "$bin" server -dev -dev-root-token-id=root -dev-no-store-token \
      -dev-listen-address="127.0.0.1:$port" >"$log" 2>&1 &
  echo $! >"$pidf"
  for _ in $(seq 1 300); do   # up to 15 s
    if curl -fs -o /dev/null "http://127.0.0.1:$port/v1/sys/health"; then
      curl -fsS -o /dev/null -H "X-Vault-Token: root" -X POST -d '{"type":"transit"}' \
          "http://127.0.0.1:$port/v1/sys/mounts/transit"
      echo "VAULT_ADDR=http://127.0.0.1:$port VAULT_TOKEN=root (Transit at transit/; log $log)"
      exit 0
    fi
    kill -0 "$(cat "$pidf")" 2>/dev/null || break
    sleep 0.05
  done
  echo "vault-dev.sh: vault did not become healthy; see $log" >&2
  exit 1 ;;
stop)
  pidf=$state/server-$port.pid
  pid=$(cat "$pidf" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidf" ;;
*)
  echo "usage: scripts/vault-dev.sh bin|start|stop   (env: VAULT_PORT, default 8200)" >&2
  exit 2 ;;
esac
