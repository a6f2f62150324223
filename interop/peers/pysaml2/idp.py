#!/usr/bin/python3
"""SAML2 test IdP built on Debian's python3-pysaml2 (7.0.1) + stdlib http.server (the IdP role of
the peer kit's peer.py, adapted; the helpers for signatures and SOAP are shared with peer.py).

    /usr/bin/python3 idp.py --port PORT [--name NAME] [--fetch-metadata URL]...

Runs in the foreground until killed. State: $PEERS_STATE/pysaml2/NAME/ (server files, messages).
Trust: every SAML metadata XML file in $PEERS_STATE/pysaml2/NAME/remote-metadata/*.xml, re-read
when files change (broken files are skipped): drop the SPs' metadata there (no restart needed).
Keys: $PEERS_STATE/certs/NAME.{key,crt} (made by lib/mkcert.sh if missing). Cookie: idpPORT_sid.
Users: student/studentpass, alice/alicepass. NameID: persistent, value = the user name, with
NameQualifier = this IdP and SPNameQualifier = the SP; a random SessionIndex per SP sign-in.

  GET  /metadata         own SAML metadata (its URL is the entityID): SSO Redirect+POST at /sso,
                         SLO Redirect+POST at /slo and SOAP at /slo/soap
  GET|POST /sso          AuthnRequest (Redirect or POST) -> login form (or the cookie's session)
                         -> signed Response + signed Assertion by POST to the SP's ACS
  POST /login            the login form's target
  GET  /initslo?binding=soap&user=U[&sp=EID][&which=latest|oldest]
                         IdP-initiated Single Logout over the back channel, no browser: the IdP
                         POSTs a signed LogoutRequest (the NameID and SessionIndex exactly as it
                         issued them to that SP) in a SOAP envelope (text/xml + SOAPAction) to the
                         SP's SOAP SingleLogoutService, checks the answer (signature with xmlsec1
                         on the raw envelope against the SP's metadata, Reference URI, Issuer,
                         InResponseTo, status) and returns JSON:
                         {"logout": "success"|"failed", "http_status", "content_type", "request_id",
                          "destination", "issuer", "in_response_to", "status", "sub_status",
                          "status_message", "signed", "signature_ok", "detail", "problems",
                          "sessions_ended", "error"}
                         On success the SP is removed from the IdP session, and the IdP session
                         ends with its last SP. Without user=, the cookie's session.
  GET|POST /slo          an SP's LogoutRequest by Redirect or POST (signature checked on the raw
                         query / raw XML): ends the IdP session whose SP, NameID and SessionIndex
                         match, answers a signed LogoutResponse through the browser
  POST /slo/soap         the same over SOAP (signature checked with xmlsec1 on the raw envelope)
  GET  /status           JSON: every IdP session {sid: {"user", "sps": {EID: {"name_id",
                         "name_id_format", "name_qualifier", "sp_name_qualifier", "session_index"}}}}
  GET  /events           JSON log of every SAML message received/sent, with the checks
Messages are also kept in the state folder: last_soap_request.xml (sent), last_soap_response.xml
(received, exactly as received), last_front_request.xml, last_slo_soap_request.xml.
"""
import argparse
import glob
import html
import http.server
import json
import logging
import os
import re
import secrets
import sys
import threading
import time

import requests

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peer import (cert, decode_front, handler_base, fetch_metadata, opt, redirect_signature_ok,  # noqa: E402
                  soap_unwrap, state_dir, status_of, xmlsec_verify)

import defusedxml.ElementTree as DET  # noqa: E402

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP  # noqa: E402
from saml2.authn_context import PASSWORD  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.s_utils import status_message_factory, success_status_factory  # noqa: E402
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID  # noqa: E402
from saml2.samlp import STATUS_REQUEST_DENIED, STATUS_REQUESTER, STATUS_SUCCESS, STATUS_UNKNOWN_PRINCIPAL  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

USERS = {
    'student': ('studentpass', {'uid': ['student'], 'mail': ['student@example.org'],
                                'eduPersonAffiliation': ['member', 'student']}),
    'alice': ('alicepass', {'uid': ['alice'], 'mail': ['alice@example.org'],
                            'eduPersonAffiliation': ['member', 'employee']}),
}
SOAP_ACTION = 'http://www.oasis-open.org/committees/security'

log = logging.getLogger('idp')


class IdP:
    # Paths of the endpoints (vendor emulators, vendors.py, serve a product's own); None = not served.
    paths = {'metadata': '/metadata', 'sso': '/sso', 'login': '/login', 'slo': '/slo', 'slo_soap': '/slo/soap',
             'initslo': '/initslo', 'status': '/status', 'events': '/events'}
    # Algorithms of the logout messages it signs (sign-in stays RSA-SHA256).
    logout_sig_alg, logout_digest_alg = SIG_RSA_SHA256, DIGEST_SHA256

    def __init__(self, name, port, args):
        self.name, self.port, self.args = name, port, args
        self.base = 'http://127.0.0.1:%d' % port
        self.dir = state_dir('pysaml2', name)
        self.mddir = state_dir('pysaml2', name, 'remote-metadata')
        self.key_file, self.cert_file = cert(name)
        self.cookie = 'idp%d_sid' % port
        self.lock = threading.RLock()
        self.events = []
        self.sessions = {}   # sid -> {"user", "sps": {EID: {name_id..., session_index}}}
        self.pending = {}    # login key -> AuthnRequest info
        self._md_sig = None
        self._ent = None
        self._cfg = None

    def config_dict(self):
        b = self.base
        md = []
        for f in sorted(glob.glob(os.path.join(self.mddir, '*.xml'))):
            try:   # skip empty/broken files instead of failing every request
                DET.parse(f)
                md.append(f)
            except Exception as ex:
                log.error('ignoring metadata file %s: %r', f, ex)
        slo = [(b + self.paths['slo'], BINDING_HTTP_REDIRECT), (b + self.paths['slo'], BINDING_HTTP_POST)]
        if self.paths.get('slo_soap'):
            slo.append((b + self.paths['slo_soap'], BINDING_SOAP))
        sso = self.paths.get('sso_post') or self.paths['sso']
        return {
            'entityid': self.entity_id(),
            'key_file': self.key_file,
            'cert_file': self.cert_file,
            'xmlsec_binary': '/usr/bin/xmlsec1',
            'metadata': {'local': md},
            'accepted_time_diff': 120,
            'signing_algorithm': SIG_RSA_SHA256,
            'digest_algorithm': DIGEST_SHA256,
            'allow_unknown_attributes': True,
            'service': {'idp': {
                'endpoints': {'single_sign_on_service': [(b + self.paths['sso'], BINDING_HTTP_REDIRECT),
                                                         (b + sso, BINDING_HTTP_POST)],
                              'single_logout_service': slo},
                'name_id_format': [self.name_id_format],
                'sign_response': True,
                'sign_assertion': True,
                'want_authn_requests_signed': False,
                'policy': {'default': {'lifetime': {'minutes': 15},
                                       'attribute_restrictions': None,
                                       'name_form': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri'}},
            }},
        }

    name_id_format = NAMEID_FORMAT_PERSISTENT

    def entity_id(self):
        return self.base + self.paths['metadata']

    def name_id(self, user, sp):
        """The NameID issued to sp for user: persistent, the user name, with both qualifiers."""
        return NameID(format=NAMEID_FORMAT_PERSISTENT, text=user, sp_name_qualifier=sp,
                      name_qualifier=self.entity_id())

    def ent(self):
        """(Re)build the pysaml2 Server when remote metadata files change."""
        files = sorted(glob.glob(os.path.join(self.mddir, '*.xml')))
        sig = [(f, os.path.getmtime(f)) for f in files]
        if self._ent is None or sig != self._md_sig:
            self._cfg = IdPConfig().load(self.config_dict())
            self._ent = Server(config=self._cfg)
            self._md_sig = sig
        return self._ent

    def metadata_xml(self):
        self.ent()
        return str(entity_descriptor(self._cfg))

    def event(self, **kw):
        kw['t'] = time.strftime('%H:%M:%S')
        with self.lock:
            self.events.append(kw)
        log.info('EVENT %s', json.dumps(kw, default=str)[:600])

    def save(self, fname, data):
        with open(os.path.join(self.dir, fname), 'wb') as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    def sp_certs(self, entity_id):
        try:
            return self.ent().metadata.certs(entity_id, 'spsso', 'signing')
        except Exception:
            return []

    def sp_slo_endpoint(self, sp, binding):
        """(Location, ResponseLocation or Location) of the SP's SingleLogoutService of binding."""
        try:
            for srv in self.ent().metadata.single_logout_service(sp, binding, 'spsso'):
                return srv['location'], srv.get('response_location') or srv['location']
        except Exception:
            pass
        return None, None

    def not_found(self, h, method, path):
        h.reply(404, 'not found', 'text/plain')

    # ------------------------------------------------------------------ SSO
    def sso(self, h, binding, req_b64, relay_state):
        e = self.ent()
        req = e.parse_authn_request(req_b64, binding)
        msg = req.message
        resp_args = e.response_args(msg)
        self.event(dir='in', msg='AuthnRequest', binding=binding, issuer=msg.issuer.text, id=msg.id)
        sid = h.cookie(self.cookie)
        if sid in self.sessions:
            return self.issue(h, sid, resp_args, relay_state)
        key = secrets.token_hex(8)
        self.pending[key] = {'resp_args': resp_args, 'relay_state': relay_state}
        h.reply(200, '<html><head><title>pysaml2 IdP login</title></head><body>'
                '<form method="post" action="%s"><input type="hidden" name="key" value="%s"/>'
                'user <input type="text" name="username"/> pass <input type="password" name="password"/>'
                '<input type="submit" value="Login"/></form></body></html>' % (self.paths['login'], html.escape(key)), 'text/html')

    def login(self, h, form):
        p = self.pending.pop(form.get('key'), None)
        u = USERS.get(form.get('username'))
        if not p or not u or u[0] != form.get('password'):
            return h.reply(403, 'bad login', 'text/plain')
        sid = secrets.token_hex(16)
        self.sessions[sid] = {'user': form['username'], 'sps': {}}
        self.issue(h, sid, p['resp_args'], p['relay_state'], set_cookie=True)

    def issue(self, h, sid, resp_args, relay_state, set_cookie=False):
        e = self.ent()
        sess = self.sessions[sid]
        user = sess['user']
        sp = resp_args['sp_entity_id']
        nid = self.name_id(user, sp)
        resp = e.create_authn_response(USERS[user][1], userid=user, name_id=nid,
                                       authn={'class_ref': PASSWORD}, sign_response=True,
                                       sign_assertion=True, sign_alg=SIG_RSA_SHA256,
                                       digest_alg=DIGEST_SHA256, **resp_args)
        si = re.search(r'SessionIndex="([^"]+)"', str(resp)).group(1)
        sess['sps'][sp] = {'name_id': nid.text, 'name_id_format': nid.format, 'name_qualifier': nid.name_qualifier,
                           'sp_name_qualifier': nid.sp_name_qualifier, 'session_index': si}
        self.event(dir='out', msg='Response', to=sp, name_id=user, session_index=si,
                   in_response_to=resp_args.get('in_response_to'))
        info = e.apply_binding(BINDING_HTTP_POST, str(resp), resp_args['destination'],
                               relay_state or '', response=True)
        body = info['data'] if isinstance(info['data'], str) else ''.join(info['data'])
        h.reply(200, body, 'text/html', cookie=(self.cookie, sid) if set_cookie else None)

    # ------------------------------------------------------------------ IdP-initiated SLO, SOAP
    def initslo(self, h, q):
        e = self.ent()
        if q.get('binding', 'soap') != 'soap':
            return h.reply(400, json.dumps({'error': 'only binding=soap is implemented'}), 'application/json')
        sid = h.cookie(self.cookie)
        if q.get('user'):
            order = list(self.sessions.items())
            if q.get('which', 'latest') == 'latest':
                order.reverse()
            sid = next((k for k, s in order if s['user'] == q['user'] and s['sps']), None)
        sess = self.sessions.get(sid)
        if not sess or not sess['sps']:
            return h.reply(400, json.dumps({'error': 'no IdP session with SPs for this user/cookie'}), 'application/json')
        sp = q.get('sp') or next(iter(sess['sps']))
        a = sess['sps'].get(sp)
        if a is None:
            return h.reply(400, json.dumps({'error': 'the session has no SP %s' % sp}), 'application/json')
        dest, _ = self.sp_slo_endpoint(sp, BINDING_SOAP)
        if not dest:
            return h.reply(400, json.dumps({'error': "the SP's metadata has no SOAP SingleLogoutService"}), 'application/json')
        nid = NameID(text=a['name_id'], format=a['name_id_format'], name_qualifier=a['name_qualifier'],
                     sp_name_qualifier=a['sp_name_qualifier'])
        reqid, req = e.create_logout_request(dest, sp, name_id=nid, session_indexes=[a['session_index']],
                                             sign=True, sign_alg=self.logout_sig_alg, digest_alg=self.logout_digest_alg)
        soap = e.apply_binding(BINDING_SOAP, str(req), dest, sign=False)['data']
        soap = soap.encode() if isinstance(soap, str) else soap
        self.save('last_soap_request.xml', soap)
        self.event(dir='out', msg='LogoutRequest', binding=BINDING_SOAP, id=reqid, to=dest, name_id=a['name_id'],
                   session_index=a['session_index'])
        out = {'logout': 'failed', 'request_id': reqid, 'destination': dest, 'problems': [], 'sessions_ended': 0}
        try:
            r = requests.post(dest, data=soap, timeout=30,
                              headers={'Content-Type': self.args.soap_content_type, 'SOAPAction': SOAP_ACTION})
        except requests.RequestException as ex:
            out['error'] = 'POST %s: %r' % (dest, ex)
            self.event(dir='in', msg='LogoutResponse', binding=BINDING_SOAP, **out)
            return h.reply(200, json.dumps(out), 'application/json')
        raw = r.content
        self.save('last_soap_response.xml', raw)
        out.update(http_status=r.status_code, content_type=r.headers.get('Content-Type'))
        try:
            u = soap_unwrap(raw)
            if u['local'] != 'LogoutResponse':
                raise ValueError('the SOAP Body holds a %s, not a LogoutResponse' % u['local'])
            if not u['signed']:
                verified, why = False, 'unsigned LogoutResponse'
            elif u['ref_uri'] != '#' + (u['id'] or ''):
                verified, why = False, 'signature Reference URI %r does not point at the message ID %r' % (u['ref_uri'], u['id'])
            else:
                verified, why = xmlsec_verify(raw, self.sp_certs(sp), 'LogoutResponse')
            resp = e.parse_logout_request_response(u['stripped'], BINDING_SOAP)
            if resp is None:
                raise ValueError('pysaml2 returned no LogoutResponse')
            rr = resp.response
            top, sub, msg = status_of(rr.status)
            issuer = rr.issuer.text if rr.issuer is not None else None
            out.update(status=top, sub_status=sub, status_message=msg, issuer=issuer,
                       in_response_to=rr.in_response_to, signed=u['signed'], signature_ok=verified, detail=why)
            if r.status_code != 200:
                out['problems'].append('HTTP %d' % r.status_code)
            if not verified:
                out['problems'].append('signature: ' + why)
            if issuer != sp:
                out['problems'].append('Issuer %r, want the SP %r' % (issuer, sp))
            if rr.in_response_to != reqid:
                out['problems'].append('InResponseTo %r, want %r' % (rr.in_response_to, reqid))
            if top != STATUS_SUCCESS:
                out['problems'].append('status %s / %s: %s' % (top, sub, msg))
            if not out['problems']:
                out['logout'] = 'success'
                sess['sps'].pop(sp, None)
                if not sess['sps']:
                    self.sessions.pop(sid, None)   # the IdP session ends with its last SP
                    out['sessions_ended'] = 1
        except Exception as ex:
            out.update(error='%r' % ex, body=raw[:2000].decode('utf-8', 'replace'))
        self.event(dir='in', msg='LogoutResponse', binding=BINDING_SOAP, **{k: v for k, v in out.items() if k != 'body'})
        h.reply(200, json.dumps(out), 'application/json')

    # ------------------------------------------------------------------ SP-initiated SLO
    def end_matching(self, m, verified, why):
        """End the IdP session a verified LogoutRequest m names: same SP, NameID (value, Format,
        qualifiers) and SessionIndex as issued. Returns (sessions ended, near misses, status)."""
        issuer = m.issuer.text if m.issuer is not None else None
        nid = m.name_id
        got = {'name_id': nid.text if nid is not None else None,
               'name_id_format': opt(nid.format) if nid is not None else None,
               'name_qualifier': opt(nid.name_qualifier) if nid is not None else None,
               'sp_name_qualifier': opt(nid.sp_name_qualifier) if nid is not None else None}
        sis = [s.text for s in (m.session_index or [])]
        killed, near = 0, []
        if verified:
            for sid, s in list(self.sessions.items()):
                a = s['sps'].get(issuer)
                if not a or a['name_id'] != got['name_id']:
                    continue
                diff = {k: (opt(a[k]), got[k]) for k in ('name_id_format', 'name_qualifier', 'sp_name_qualifier')
                        if opt(a[k]) != got[k]}
                if diff:
                    near.append('NameID differs from the one issued (issued, received): %r' % diff)
                elif sis and a['session_index'] not in sis:
                    near.append('SessionIndex %r not in the request %r' % (a['session_index'], sis))
                else:
                    self.sessions.pop(sid)   # one SP per session here: the IdP session ends
                    killed += 1
        if not verified:
            status = status_message_factory('signature check failed: ' + why, STATUS_REQUEST_DENIED, STATUS_REQUESTER)
        elif killed:
            status = success_status_factory()
        else:
            status = status_message_factory('no matching session' + (': ' + '; '.join(near) if near else ''),
                                            STATUS_UNKNOWN_PRINCIPAL)
        return got, sis, killed, near, status

    def slo_soap(self, h, raw):
        e = self.ent()
        self.save('last_slo_soap_request.xml', raw)
        u = soap_unwrap(raw)
        if u['local'] != 'LogoutRequest':
            raise ValueError('expected a LogoutRequest in the SOAP Body, got ' + u['local'])
        if not u['signed']:
            verified, why = False, 'unsigned LogoutRequest'
        elif u['ref_uri'] != '#' + (u['id'] or ''):
            verified, why = False, 'signature Reference URI %r does not point at the message ID %r' % (u['ref_uri'], u['id'])
        else:
            verified, why = xmlsec_verify(raw, self.sp_certs(u['issuer']) if u['issuer'] else [], 'LogoutRequest')
        m = e.parse_logout_request(u['stripped'], BINDING_SOAP).message
        got, sis, killed, near, status = self.end_matching(m, verified, why)
        self.event(dir='in', msg='LogoutRequest', binding=BINDING_SOAP, id=m.id, issuer=m.issuer.text if m.issuer is not None else None,
                   destination=m.destination, name_id=got, session_index=sis, signed=u['signed'], signature_ok=verified,
                   detail=why, sessions_ended=killed, near_misses=near)
        resp = e.create_logout_response(m, [BINDING_SOAP], status, sign=True, sign_alg=self.logout_sig_alg,
                                        digest_alg=self.logout_digest_alg)
        body = e.apply_binding(BINDING_SOAP, str(resp), '', response=True, sign=False)['data']
        self.event(dir='out', msg='LogoutResponse', binding=BINDING_SOAP, in_response_to=m.id,
                   status=status.status_code.value)
        h.reply(200, body, 'text/xml; charset=utf-8')

    def read_front_logout_request(self, binding, params, raw_query):
        """The LogoutRequest of a front-channel request: its raw XML, the parsed message, its
        issuer, and whether its signature (Redirect: over the raw query; POST: enveloped) verifies
        with the issuer's certificates, and why not."""
        raw = decode_front(params['SAMLRequest'], binding)
        m = self.ent().parse_logout_request(params['SAMLRequest'], binding).message
        issuer = m.issuer.text if m.issuer is not None else None
        certs = self.sp_certs(issuer) if issuer else []
        if binding == BINDING_HTTP_REDIRECT:
            verified, why = redirect_signature_ok(raw_query, certs)
        else:
            verified, why = xmlsec_verify(raw, certs, 'LogoutRequest') if b'Signature' in raw else (False, 'unsigned')
        return raw, m, issuer, verified, why

    def slo_front(self, h, binding, params, raw_query):
        e = self.ent()
        if 'SAMLRequest' not in params:
            return h.reply(400, json.dumps({'error': 'no SAMLRequest (this IdP starts no front-channel logout)'}),
                           'application/json')
        raw, m, issuer, verified, why = self.read_front_logout_request(binding, params, raw_query)
        self.save('last_front_request.xml', raw)
        got, sis, killed, near, status = self.end_matching(m, verified, why)
        self.event(dir='in', msg='LogoutRequest', binding=binding, id=m.id, issuer=issuer, destination=m.destination,
                   name_id=got, session_index=sis, signature_ok=verified, detail=why, sessions_ended=killed,
                   near_misses=near, relay_state=params.get('RelayState'))
        rbinding = binding
        _, rdest = self.sp_slo_endpoint(issuer, binding)
        if not rdest:
            rbinding = BINDING_HTTP_POST if binding == BINDING_HTTP_REDIRECT else BINDING_HTTP_REDIRECT
            _, rdest = self.sp_slo_endpoint(issuer, rbinding)
        if not rdest:
            return h.reply(400, json.dumps({'error': 'the SP has no front-channel SingleLogoutService'}), 'application/json')
        resp = e.create_logout_response(m, [rbinding], status, sign=rbinding == BINDING_HTTP_POST,
                                        sign_alg=self.logout_sig_alg, digest_alg=self.logout_digest_alg)
        self.event(dir='out', msg='LogoutResponse', binding=rbinding, to=rdest, in_response_to=m.id,
                   status=status.status_code.value)
        info = e.apply_binding(rbinding, str(resp), rdest, params.get('RelayState') or '', response=True,
                               sign=rbinding == BINDING_HTTP_REDIRECT, sigalg=self.logout_sig_alg)
        if rbinding == BINDING_HTTP_REDIRECT:
            return h.redirect(dict(info['headers'])['Location'])
        body = info['data'] if isinstance(info['data'], str) else ''.join(info['data'])
        h.reply(200, body, 'text/html; charset=utf-8')


def make_handler(idp):
    # /initslo holds the lock while it waits for the SP's answer: the SP (the broker) does not
    # call back into this IdP during a SOAP logout it did not start.
    class H(handler_base(idp)):
        def route(self, method, path, q, form, body, raw_query):
            p = idp
            at = {k: v for k, v in p.paths.items() if v}
            if path == at['metadata']:
                return self.reply(200, p.metadata_xml(), 'application/samlmetadata+xml')
            if path == at.get('events'):
                return self.reply(200, json.dumps(p.events, indent=1, default=str), 'application/json')
            if path in (at['sso'], at.get('sso_post')):
                if method == 'GET':
                    return p.sso(self, BINDING_HTTP_REDIRECT, q['SAMLRequest'], q.get('RelayState'))
                return p.sso(self, BINDING_HTTP_POST, form['SAMLRequest'], form.get('RelayState'))
            if path == at['login'] and method == 'POST':
                return p.login(self, form)
            if path == at.get('initslo'):
                return p.initslo(self, q)
            if path == at.get('slo_soap') and method == 'POST':
                return p.slo_soap(self, body)
            if path == at['slo']:
                if method == 'GET':
                    return p.slo_front(self, BINDING_HTTP_REDIRECT, q, raw_query)
                return p.slo_front(self, BINDING_HTTP_POST, form, '')
            if path == at.get('status') or (path == '/' and at.get('status') == '/status'):
                return self.reply(200, json.dumps(p.sessions, indent=1, default=str), 'application/json')
            p.not_found(self, method, path)
    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--name', default='pysaml2-idp')
    ap.add_argument('--fetch-metadata', action='append', default=[], metavar='URL',
                    help='download this SP metadata into remote-metadata/ at startup (repeatable)')
    ap.add_argument('--soap-content-type', default='text/xml; charset=utf-8',
                    help='Content-Type of the SOAP requests it sends (pysaml2 itself would use application/soap+xml)')
    ap.add_argument('-v', action='store_true', help='pysaml2 DEBUG logging')
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.v else logging.INFO,
                        format='%(asctime)s %(name)s %(message)s', stream=sys.stderr)
    if not a.v:
        logging.getLogger('saml2').setLevel(logging.WARNING)
    idp = IdP(a.name, a.port, a)
    fetch_metadata(idp.mddir, a.fetch_metadata, float(os.environ.get('PEERS_WAIT') or 15))
    idp.ent()   # fail at startup, not at the first request, on a bad configuration
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', a.port), make_handler(idp))
    log.info('idp %s listening on %s (metadata %s/metadata)', idp.name, idp.base, idp.base)
    srv.serve_forever()


if __name__ == '__main__':
    main()
