#!/bin/sh
# /status and /loggedout: the mellon session of the cookie sent, as JSON. MellonEnable info never
# forces a login; authenticated is true only while mellon has a live session for that cookie.
# mellon exports no SessionIndex: session_index is read from the Response it accepted
# (MELLON_SAML_RESPONSE, MellonSamlResponseDump).
echo "Content-Type: application/json"; echo
if [ -n "$MELLON_NAME_ID" ]; then a=true; else a=false; fi
si=
if [ -n "$MELLON_SAML_RESPONSE" ]; then
  si=$(printf '%s' "$MELLON_SAML_RESPONSE" | base64 -d 2>/dev/null | grep -o 'SessionIndex="[^"]*"' | head -n 1 | cut -d '"' -f 2)
fi
printf '{"authenticated": %s, "name_id": "%s", "session_index": "%s", "idp": "%s", "remote_user": "%s", "path": "%s"}\n' \
  "$a" "$MELLON_NAME_ID" "$si" "$MELLON_IDP" "$REMOTE_USER" "$SCRIPT_NAME"
