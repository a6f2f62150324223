#!/bin/bash
# mellon/run.sh PORT IDP_METADATA_URL_OR_FILE
# Serve Apache + mod_auth_mellon (Debian apache2-bin, libapache2-mod-auth-mellon 0.18) on
# 127.0.0.1:PORT in the FOREGROUND (exec; the caller owns the process group), as an SP of that one
# IdP (the broker, in the tests):
#   SP metadata (= entityID): /mellon/metadata   (SLO: SOAP and Redirect at /mellon/logout; no POST)
#   protected page:           /protected/        (200 with a session, 303 to the IdP without)
#   session as JSON:          /status, /loggedout (same CGI; /loggedout is the tests' logout ReturnTo)
#   SP-initiated logout:      /mellon/logout?ReturnTo=http://127.0.0.1:PORT/loggedout
# State: $PEERS_STATE/mellon/PORT/{httpd.conf,idp-metadata.xml,sp.key,sp.crt,htdocs,cgi-bin,run,
#        logs/error.log (mellon at debug), logs/mellon_diagnostics.log (every SAML message), logs/access.log}
# Cookie: mellon-pPORT. Sessions live in shared memory: a restart loses them all.
# Started as root, Apache's children run as www-data: they must reach the files above, so every
# folder from / down to the instance folder must be searchable by others. Folders that are not
# and belong to the current user (the tests' temporary directories) get o+x; others stop the script.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/common.sh"
[ $# -eq 2 ] || die "usage: mellon/run.sh PORT IDP_METADATA_URL_OR_FILE"
PORT=$1; MD=$2
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
[ -x "$APACHE" ] || die "apache2 not installed (interop/install.sh: apache2-bin)"
[ -f /usr/lib/apache2/modules/mod_auth_mellon.so ] || die "mod_auth_mellon not installed (interop/install.sh: libapache2-mod-auth-mellon)"
[ -f /etc/mime.types ] || die "/etc/mime.types missing (interop/install.sh: media-types)"
D=$PEERS_STATE/mellon/$PORT
mkdir -p "$D"/{run,logs,htdocs,cgi-bin}

USER_CONF="# not root: Apache keeps running as $(id -un)"
if [ "$(id -u)" = 0 ]; then
  getent passwd www-data >/dev/null || die "no user www-data for Apache's children"
  USER_CONF=$'User www-data\nGroup www-data'
  # Apache's children (www-data) must traverse every folder down to $D.
  p=$D
  while [ "$p" != / ]; do
    if [ "$(stat -c %A "$p" | cut -c10)" != x ] && [ "$(stat -c %A "$p" | cut -c10)" != t ]; then
      [ "$(stat -c %u "$p")" = "$(id -u)" ] || die "$p is not searchable by others (www-data) and not ours to change"
      chmod o+x "$p"
    fi
    p=$(dirname "$p")
  done
  chmod 755 "$D" "$D"/{run,logs,htdocs,cgi-bin}
fi

cp -R "$HERE/htdocs/." "$D/htdocs/"
cp "$HERE/cgi-bin/status.sh" "$D/cgi-bin/status.sh"
chmod -R a+rX "$D/htdocs" "$D/cgi-bin"
chmod 755 "$D/cgi-bin/status.sh"
"$PEERS_ROOT/lib/mkcert.sh" mellon-sp
install -m 644 "$PEERS_STATE/certs/mellon-sp.crt" "$D/sp.crt"
if [ "$(id -u)" = 0 ]; then
  install -m 640 -g www-data "$PEERS_STATE/certs/mellon-sp.key" "$D/sp.key"
else
  install -m 600 "$PEERS_STATE/certs/mellon-sp.key" "$D/sp.key"
fi
"$PEERS_ROOT/lib/fetch-metadata.sh" "$MD" "$D/idp-metadata.xml" > /dev/null
echo "$MD" > "$D/idp-metadata.src"

"$PY" - "$HERE/httpd.conf.tmpl" "$D/httpd.conf" "$PORT" "$D" "$USER_CONF" <<'PYEOF'
import sys
tmpl, out, port, d, user = sys.argv[1:]
with open(tmpl) as f:
    s = f.read()
s = s.replace('@PORT@', port).replace('@DIR@', d).replace('@USER@', user)
with open(out, 'w') as f:
    f.write(s)
PYEOF
"$APACHE" -t -f "$D/httpd.conf" || die "bad Apache configuration $D/httpd.conf"
rm -f "$D/run/httpd.pid"
echo "mellon on 127.0.0.1:$PORT: metadata http://127.0.0.1:$PORT/mellon/metadata, state $D"
exec "$APACHE" -f "$D/httpd.conf" -DFOREGROUND < /dev/null
