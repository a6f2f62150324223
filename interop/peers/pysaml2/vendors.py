#!/usr/bin/python3
"""Vendor emulators on Debian's python3-pysaml2: the pysaml2 IdP (idp.py) and SP (peer.py) serving
one product's paths and enforcing that product's documented logout rules, for the broker's
interop tests. Not the products: only what the broker must get right about them.

    /usr/bin/python3 vendors.py salesforce-idp --port P [--name N] [--slo-sig-alg rsa-sha1|rsa-sha256]
    /usr/bin/python3 vendors.py auth0-idp --port P [--name N] --client-id CID
    /usr/bin/python3 vendors.py salesforce-app --port P [--name N] --fetch-metadata URL [--idp EID]

Trust, keys, users and cookies as in idp.py / peer.py (state $PEERS_STATE/pysaml2/NAME/). Test
hooks live under /_emulator/ (never a vendor path): /_emulator/status, /_emulator/events, and for
the Salesforce IdP /_emulator/config?slo_sig_alg=... (the org admin toggling a setting).

salesforce-idp: a Salesforce org as IdP (entityID = its base URL, as https://{MyDomain}.my.salesforce.com)
  GET  /.well-known/samlidp.xml           metadata
  GET  /idp/endpoint/HttpRedirect         SSO (Redirect); POST /idp/endpoint/HttpPost (POST)
  GET|POST /services/auth/idp/saml2/logout  SLO (Redirect, POST; no SOAP: front channel only)
  Logout rules (Salesforce Help "SAML Session Index Support", "Single Logout"; DESIGN.md seed 000/001):
  the LogoutRequest must be signed with the org's logout algorithm -- RSA-SHA1 (SHA-1 digest) by
  default, the SSO method (RSA-SHA256) when the org uses "Use Selected Request Signature Method
  for Single Logout" (--slo-sig-alg rsa-sha256) -- and carry the SessionIndex the org issued; only
  the first SessionIndex counts. Otherwise: HTTP 200, an HTML page "We are unable to log you out.",
  no LogoutResponse, the session stays. Its own LogoutResponses are signed with that algorithm.

auth0-idp: an Auth0 application with the SAML2 Web App addon (Auth0 Authentication API; seed 003)
  GET  /samlp/metadata/{client_id}        metadata (entityID urn:emulator.auth0.com)
  GET|POST /samlp/{client_id}             SSO; the login form posts to /u/login
  GET|POST /samlp/{client_id}/logout      SLO (Redirect, POST), RSA-SHA256 only
  anything else: 404 "Not found". NameID: unspecified format "auth0|USER", no qualifiers (it must
  come back exactly so).

salesforce-app: Salesforce as a service provider (the broker is its IdP)
  GET /metadata, /login, POST /acs, GET /logout?binding=redirect|post, /services/auth/sp/saml2/logout
  (SLO, Redirect and POST; no SOAP), /status, /events (as peer.py).
  Keeps only the first SessionIndex it receives; refuses a LogoutRequest whose (first) SessionIndex
  is over 512 characters (Requester/RequestDenied, session kept); signs its logout messages with
  RSA-SHA1 (--logout-sig-alg rsa-sha256 for "Use Selected Request Signature Method"); accepts
  RSA-SHA1 or RSA-SHA256 from its IdP.
"""
import argparse
import json
import logging
import os
import re
import sys
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import idp as idpmod  # noqa: E402
import peer as peermod  # noqa: E402
from peer import decode_front, fetch_metadata  # noqa: E402

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.s_utils import status_message_factory  # noqa: E402
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NameID  # noqa: E402
from saml2.samlp import STATUS_REQUEST_DENIED, STATUS_REQUESTER  # noqa: E402
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256  # noqa: E402

log = logging.getLogger('vendors')

ALGS = {'rsa-sha1': (SIG_RSA_SHA1, DIGEST_SHA1), 'rsa-sha256': (SIG_RSA_SHA256, DIGEST_SHA256)}
UNABLE = ('<!DOCTYPE html><html><head><title>Single Logout Error</title></head><body>'
          '<p>We are unable to log you out.</p></body></html>')
HOOKS = {'status': '/_emulator/status', 'events': '/_emulator/events'}


def signature_alg(binding, raw_query, raw_xml):
    """(SignatureMethod, DigestMethod or None) of a received message: the Redirect SigAlg, or the
    enveloped signature's algorithms."""
    if binding == BINDING_HTTP_REDIRECT:
        for kv in raw_query.split('&'):
            k, _, v = kv.partition('=')
            if k == 'SigAlg':
                return urllib.parse.unquote_plus(v), None
        return None, None
    text = raw_xml.decode('utf-8', 'replace')
    sm = re.search(r'SignatureMethod[^>]*Algorithm="([^"]+)"', text)
    dm = re.search(r'DigestMethod[^>]*Algorithm="([^"]+)"', text)
    return (sm.group(1) if sm else None), (dm.group(1) if dm else None)


class SalesforceIdP(idpmod.IdP):
    paths = dict(metadata='/.well-known/samlidp.xml', sso='/idp/endpoint/HttpRedirect', sso_post='/idp/endpoint/HttpPost',
                 login='/login', slo='/services/auth/idp/saml2/logout', slo_soap=None, initslo=None, **HOOKS)

    def __init__(self, name, port, args):
        super().__init__(name, port, args)
        self.set_alg(args.slo_sig_alg)

    def set_alg(self, name):
        self.slo_alg_name = name
        self.logout_sig_alg, self.logout_digest_alg = ALGS[name]

    def entity_id(self):
        return self.base   # as https://{MyDomain}.my.salesforce.com

    def config(self, h, q):
        if q.get('slo_sig_alg') in ALGS:
            self.set_alg(q['slo_sig_alg'])
        h.reply(200, json.dumps({'slo_sig_alg': self.slo_alg_name}), 'application/json')

    def slo_front(self, h, binding, params, raw_query):
        if 'SAMLRequest' not in params:
            return super().slo_front(h, binding, params, raw_query)
        raw, m, issuer, verified, why = self.read_front_logout_request(binding, params, raw_query)
        sig, digest = signature_alg(binding, raw_query, raw)
        sis = [s.text for s in (m.session_index or [])]
        first = sis[0] if sis else None   # only the first SessionIndex counts
        problems = []
        if not verified:
            problems.append('signature: ' + why)
        elif sig != self.logout_sig_alg or (digest is not None and digest != self.logout_digest_alg):
            problems.append('signed with %s / %s; this org expects %s' % (sig, digest, self.slo_alg_name))
        if first is None:
            problems.append('no SessionIndex')
        elif not any(s['sps'].get(issuer, {}).get('session_index') == first for s in self.sessions.values()):
            problems.append('the first SessionIndex %r is not one this org issued to %s' % (first, issuer))
        if problems:
            self.event(dir='in', msg='LogoutRequest', binding=binding, id=m.id, issuer=issuer, session_index=sis,
                       sig_alg=sig, digest_alg=digest, signature_ok=verified, refused=problems,
                       answer='We are unable to log you out.', sessions_ended=0)
            return h.reply(200, UNABLE, 'text/html; charset=utf-8')
        self.event(dir='in', msg='LogoutRequest accepted by the org rules', binding=binding, id=m.id,
                   sig_alg=sig, digest_alg=digest, session_index=sis)
        # The first SessionIndex is this session's (checked above): the base ends it and answers.
        return super().slo_front(h, binding, params, raw_query)


class Auth0IdP(idpmod.IdP):
    name_id_format = NAMEID_FORMAT_UNSPECIFIED

    def __init__(self, name, port, args):
        cid = args.client_id
        self.paths = dict(metadata='/samlp/metadata/' + cid, sso='/samlp/' + cid, login='/u/login',
                          slo='/samlp/' + cid + '/logout', slo_soap=None, initslo=None, **HOOKS)
        super().__init__(name, port, args)

    def entity_id(self):
        return 'urn:emulator.auth0.com'

    def name_id(self, user, sp):
        return NameID(format=NAMEID_FORMAT_UNSPECIFIED, text='auth0|' + user)

    def not_found(self, h, method, path):
        self.event(dir='in', msg='not found', method=method, path=path)
        h.reply(404, 'Not found', 'text/plain; charset=utf-8')

    def slo_front(self, h, binding, params, raw_query):
        if 'SAMLRequest' in params:
            raw = decode_front(params['SAMLRequest'], binding)
            sig, _ = signature_alg(binding, raw_query, raw)
            if sig is not None and sig != SIG_RSA_SHA256:
                self.event(dir='in', msg='LogoutRequest', binding=binding, sig_alg=sig, refused=['rsa-sha256 only'])
                return h.reply(400, 'Bad Request: signature algorithm not supported', 'text/plain; charset=utf-8')
        return super().slo_front(h, binding, params, raw_query)


class SalesforceApp(peermod.Peer):
    paths = dict(peermod.Peer.paths, slo='/services/auth/sp/saml2/logout')
    max_session_index = 512

    def __init__(self, name, port, args):
        super().__init__(name, port, args)
        self.logout_sig_alg, self.logout_digest_alg = ALGS[args.logout_sig_alg]

    def end_matching(self, m, verified, why):
        sis = [s.text for s in (m.session_index or [])]
        if sis and len(sis[0]) > self.max_session_index:
            return 0, ['SessionIndex of %d characters; Salesforce refuses one over %d' % (len(sis[0]), self.max_session_index)], \
                status_message_factory('SessionIndex longer than %d characters' % self.max_session_index,
                                       STATUS_REQUEST_DENIED, STATUS_REQUESTER)
        if len(sis) > 1:
            m.session_index = m.session_index[:1]   # Salesforce keeps only the first
        return super().end_matching(m, verified, why)

    def slo_front(self, h, binding, params, raw_query):
        key = 'SAMLRequest' if 'SAMLRequest' in params else 'SAMLResponse'
        if key in params:
            raw = decode_front(params[key], binding)
            sig, digest = signature_alg(binding, raw_query, raw)
            sis = re.findall(r"<(?:\w+:)?SessionIndex\b[^>]*>([^<]*)<", raw.decode('utf-8', 'replace'))
            self.event(dir='in', msg=key + ' (as received)', binding=binding, sig_alg=sig, digest_alg=digest,
                       session_indexes=[len(s) for s in sis])
        return super().slo_front(h, binding, params, raw_query)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('vendor', choices=['salesforce-idp', 'auth0-idp', 'salesforce-app'])
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--name')
    ap.add_argument('--slo-sig-alg', choices=sorted(ALGS), default='rsa-sha1',
                    help='salesforce-idp: the logout algorithm the org expects (rsa-sha256 = "Use Selected Request Signature Method")')
    ap.add_argument('--client-id', default='emulatorclient0000000000000000000', help='auth0-idp: the application client ID')
    ap.add_argument('--logout-sig-alg', choices=sorted(ALGS), default='rsa-sha1', help='salesforce-app: its logout algorithm')
    ap.add_argument('--idp', help='salesforce-app: the IdP entityID (default: first in metadata)')
    ap.add_argument('--fetch-metadata', action='append', default=[], metavar='URL')
    ap.add_argument('--soap-content-type', default='text/xml; charset=utf-8')
    ap.add_argument('-v', action='store_true')
    a = ap.parse_args()
    a.name = a.name or a.vendor
    a.slo_bindings = 'redirect,post'   # salesforce-app: front channel only
    logging.basicConfig(level=logging.DEBUG if a.v else logging.INFO,
                        format='%(asctime)s %(name)s %(message)s', stream=sys.stderr)
    if not a.v:
        logging.getLogger('saml2').setLevel(logging.WARNING)
    if a.vendor == 'salesforce-app':
        p = SalesforceApp(a.name, a.port, a)
        handler = peermod.make_handler(p)
    else:
        p = (SalesforceIdP if a.vendor == 'salesforce-idp' else Auth0IdP)(a.name, a.port, a)
        base = idpmod.make_handler(p)

        class handler(base):
            def route(self, method, path, q, form, body, raw_query):
                if path == '/_emulator/config' and isinstance(p, SalesforceIdP):
                    return p.config(self, q)
                return super().route(method, path, q, form, body, raw_query)
    fetch_metadata(p.mddir, a.fetch_metadata, float(os.environ.get('PEERS_WAIT') or 15))
    p.ent()
    import http.server
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', a.port), handler)
    log.info('%s %s listening on %s', a.vendor, a.name, p.base)
    srv.serve_forever()


if __name__ == '__main__':
    main()
