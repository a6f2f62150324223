# Sourced by the shell scripts of interop/peers (not run on its own).
# Defines PEERS_ROOT (interop/peers), PEERS_STATE (all generated state; the Go tests set it to a
# temporary directory) and helpers. Adapted from a SAML peer kit for SimpleSAMLphp/pysaml2.

PEERS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${PEERS_STATE:=${TMPDIR:-/tmp}/broker-interop-peers}"
mkdir -p "$PEERS_STATE"
PEERS_STATE=$(cd "$PEERS_STATE" && pwd)
export PEERS_STATE
export PYTHONDONTWRITEBYTECODE=1      # never write __pycache__ into the source tree
PY=/usr/bin/python3                   # Debian's python: sees python3-pysaml2/-requests/-defusedxml

# Seconds to wait for a server or a metadata URL.
: "${PEERS_WAIT:=15}"

die() { echo "error: $*" >&2; exit 1; }
