#!/bin/bash
# ssp/run.sh NAME
# Serve the SimpleSAMLphp instance $PEERS_STATE/ssp/NAME (made by ssp/mkinstance.sh) in the
# FOREGROUND (exec, so the caller owns the process) under
#   php -S 127.0.0.1:PORT -t /usr/share/simplesamlphp/www ssp/router.php
# Logs: stdout/stderr of php -S, and $PEERS_STATE/ssp/NAME/log/simplesamlphp.log (DEBUG).
# php -S forks PHP_CLI_SERVER_WORKERS workers: stop the whole process group.
#
# Before serving, SimpleSAMLphp's SP logout endpoint is copied to
# $PEERS_STATE/ssp/NAME/saml2-logout.php with two one-line fixes for SOAP logout (an IdP's
# LogoutRequest on the back channel), which ssp/router.php serves (PEERS_SSP_LOGOUT_PHP):
#  1. SimpleSAMLphp 1.19 on PHP 8 throws a TypeError instead of sending the SOAP LogoutResponse,
#     because $dst is still the endpoint array there (`$lr->setDestination($dst)`);
#  2. it looks up the IdP's Redirect/POST SingleLogoutService even for SOAP, where the answer
#     goes back on the same connection, and throws "Could not find a supported
#     SingleLogoutService endpoint" (after ending the session) when the IdP's metadata has none
#     (the broker's IdP metadata had none before it published front-channel logout).
# /usr/share is not modified. The script stops if an upstream line is not exactly as expected.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/common.sh"
[ $# -eq 1 ] || die "usage: ssp/run.sh NAME"
NAME=$1
D=$PEERS_STATE/ssp/$NAME
[ -f "$D/config/config.php" ] || die "no instance $D: run ssp/mkinstance.sh first"
PORT=$(cat "$D/port")
SSP=/usr/share/simplesamlphp
[ -d "$SSP/www" ] || die "SimpleSAMLphp not found in $SSP (run interop/install.sh)"

# --- patched copy of the SP logout endpoint (per instance: instances start concurrently)
UPSTREAM=$SSP/modules/saml/www/sp/saml2-logout.php
PATCHED=$D/saml2-logout.php
[ -f "$UPSTREAM" ] || die "$UPSTREAM is missing"
TMP=$(mktemp "$PATCHED.XXXXXX")
if ! "$PY" - "$UPSTREAM" "$TMP" <<'PYEOF'; then rm -f "$TMP"; die "cannot patch $UPSTREAM (see above)"; fi
import sys
src, dst = sys.argv[1:]
fixes = [  # (exact upstream line, replacement)
    ('    $dst = $idpMetadata->getEndpointPrioritizedByBinding(',
     '    $dst = ($binding instanceof \\SAML2\\SOAP) ? null : $idpMetadata->getEndpointPrioritizedByBinding( // SOAP: none needed'),
    ('    $lr->setDestination($dst);',
     '    $lr->setDestination(is_array($dst) ? null : $dst); // SOAP: $dst is the endpoint array'),
]
with open(src) as f:
    lines = f.read().split('\n')
for old, new in fixes:
    n = lines.count(old)
    if n != 1:
        sys.exit('%s changed: expected exactly one line %r, found %d; review the fixes in ssp/run.sh' % (src, old, n))
    lines[lines.index(old)] = new
with open(dst, 'w') as f:
    f.write('\n'.join(lines))
PYEOF
chmod 644 "$TMP"
mv "$TMP" "$PATCHED"

cd "$D"
export SIMPLESAMLPHP_CONFIG_DIR=$D/config PHP_CLI_SERVER_WORKERS=4 PEERS_SSP_LOGOUT_PHP=$PATCHED
exec php -S "127.0.0.1:$PORT" -t "$SSP/www" "$HERE/router.php" < /dev/null
