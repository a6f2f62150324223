#!/bin/bash
# ssp/run.sh NAME
# Serve the SimpleSAMLphp instance $PEERS_STATE/ssp/NAME (made by ssp/mkinstance.sh) in the
# FOREGROUND (exec, so the caller owns the process) under
#   php -S 127.0.0.1:PORT -t /usr/share/simplesamlphp/www ssp/router.php
# Logs: stdout/stderr of php -S, and $PEERS_STATE/ssp/NAME/log/simplesamlphp.log (DEBUG).
# php -S forks PHP_CLI_SERVER_WORKERS workers: stop the whole process group.
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
cd "$D"
export SIMPLESAMLPHP_CONFIG_DIR=$D/config PHP_CLI_SERVER_WORKERS=4
exec php -S "127.0.0.1:$PORT" -t "$SSP/www" "$HERE/router.php" < /dev/null
