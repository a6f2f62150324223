#!/bin/bash
# interop/install.sh: install what the interop tests (go test ./interop/) need on Debian 12.
# Idempotent and quick when everything is there: apt-get update + install run only when one of
# the packages is missing (needs root, or sudo). Then checks that Debian's /usr/bin/python3
# (not a python3 found earlier on PATH) can import the SAML peer's modules.
set -euo pipefail

PKGS=(simplesamlphp php-cli php-xml php-mbstring php-curl php-sqlite3
      python3-requests python3-defusedxml python3-pysaml2
      apache2-bin libapache2-mod-auth-mellon media-types
      xmlsec1 openssl curl)

die() { echo "interop/install.sh: error: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query); install by hand: ${PKGS[*]}"
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo; as root run: apt-get install ${missing[*]}"
    SUDO=sudo
  fi
  echo "interop/install.sh: installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
  echo "interop/install.sh: Debian packages all present"
fi

/usr/bin/python3 -c 'import saml2, requests, defusedxml' ||
  die "/usr/bin/python3 cannot import saml2/requests/defusedxml (python3-pysaml2 python3-requests python3-defusedxml)"
[ -d /usr/share/simplesamlphp/www ] || die "SimpleSAMLphp not found in /usr/share/simplesamlphp"
for b in php xmlsec1 openssl curl; do
  command -v "$b" >/dev/null || die "$b not found on PATH"
done
# Apache + mod_auth_mellon (TestMellonApp): run by interop/peers/mellon/run.sh, not as a service
for f in /usr/sbin/apache2 /usr/lib/apache2/modules/mod_mpm_prefork.so \
         /usr/lib/apache2/modules/mod_auth_mellon.so /etc/mime.types; do
  [ -e "$f" ] || die "$f not found (apache2-bin libapache2-mod-auth-mellon media-types)"
done
echo "interop/install.sh: ok"
