#!/usr/bin/python3
"""Headless 'browser' for SAML front-channel flows (Debian python3-requests only).

- keeps one cookie jar (requests.Session), follows 301/302/303/307 redirects by hand,
- auto-submits SAML POST-binding forms (any form carrying SAMLRequest/SAMLResponse,
  or SimpleSAMLphp's postredirect page),
- fills username/password login forms (SimpleSAMLphp exampleauth and the like),
- records every request (.requests), every page that showed a password form (.password_forms)
  and every SAML message that crossed the front channel (.trace: decoded XML, plus the raw
  base64 value and the URL of the page that carried a POST form).
"""
import base64
import html.parser
import urllib.parse
import zlib

import requests


class _FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []
        self._cur = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'form':
            self._cur = {'action': a.get('action', ''), 'method': (a.get('method') or 'get').lower(),
                         'fields': {}, 'types': {}}
            self.forms.append(self._cur)
        elif tag in ('input', 'button') and self._cur is not None:
            name = a.get('name')
            if name:
                self._cur['fields'][name] = a.get('value', '') or ''
                self._cur['types'][name] = (a.get('type') or 'text').lower()

    def handle_endtag(self, tag):
        if tag == 'form':
            self._cur = None


def parse_forms(text):
    p = _FormParser()
    p.feed(text)
    return p.forms


def decode_saml(value, redirect_binding):
    raw = base64.b64decode(value)
    if redirect_binding:
        raw = zlib.decompress(raw, -15)
    return raw.decode('utf-8', 'replace')


class Browser:
    def __init__(self, username=None, password=None, verbose=False, max_steps=40):
        self.s = requests.Session()
        self.username, self.password = username, password
        self.verbose = verbose
        self.max_steps = max_steps
        self.requests = []        # {method, url, status, location}
        self.password_forms = []  # {url, filled}
        self.trace = []           # {binding, param, url, xml, raw, relaystate, sigalg, signature, from}

    def _log(self, *a):
        if self.verbose:
            print('  [browser]', *a)

    def _record_query(self, url):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        for p in ('SAMLRequest', 'SAMLResponse'):
            if p in q:
                self.trace.append({'binding': 'redirect', 'param': p, 'url': url.split('?')[0],
                                   'xml': decode_saml(q[p][0], True), 'raw': q[p][0],
                                   'relaystate': q.get('RelayState', [None])[0],
                                   'sigalg': q.get('SigAlg', [None])[0],
                                   'signature': q.get('Signature', [None])[0],
                                   'rawurl': url})

    def _request(self, method, url, data=None):
        # follow redirects manually so that every hop is recorded
        for _ in range(self.max_steps):
            self._record_query(url)
            self._log(method, url[:160])
            entry = {'method': method, 'url': url, 'status': None, 'location': None}
            self.requests.append(entry)
            r = self.s.request(method, url, data=data, allow_redirects=False, timeout=30)
            entry['status'] = r.status_code
            if r.status_code in (301, 302, 303, 307) and 'Location' in r.headers:
                entry['location'] = r.headers['Location']
                url = urllib.parse.urljoin(url, r.headers['Location'])
                if r.status_code != 307:
                    method, data = 'GET', None
                continue
            return r
        raise RuntimeError('too many redirects')

    def go(self, url, method='GET', data=None):
        """Load url and keep submitting SAML/login forms; return the final requests.Response."""
        r = self._request(method, url, data)
        for _ in range(self.max_steps):
            ctype = r.headers.get('Content-Type', '')
            if 'html' not in ctype:
                return r
            forms = parse_forms(r.text)
            nxt = None
            for f in forms:
                flds = f['fields']
                if 'SAMLRequest' in flds or 'SAMLResponse' in flds:
                    p = 'SAMLRequest' if 'SAMLRequest' in flds else 'SAMLResponse'
                    self.trace.append({'binding': 'post', 'param': p,
                                       'url': urllib.parse.urljoin(r.url, f['action']),
                                       'xml': decode_saml(flds[p], False), 'raw': flds[p],
                                       'relaystate': flds.get('RelayState'), 'from': r.url})
                    nxt = f
                    break
                pw = [n for n, t in f['types'].items() if t == 'password']
                if pw:
                    self.password_forms.append({'url': r.url, 'filled': self.username is not None})
                if pw and self.username is not None:
                    user = next((n for n, t in f['types'].items() if t in ('text', 'email') and n != pw[0]), 'username')
                    flds = dict(flds)
                    flds[user], flds[pw[0]] = self.username, self.password
                    f = dict(f, fields=flds)
                    nxt = f
                    break
            if nxt is None and len(forms) == 1 and 'postredirect' in r.url:
                nxt = forms[0]
            if nxt is None:
                return r
            action = urllib.parse.urljoin(r.url, nxt['action'] or r.url)
            fields = {k: v for k, v in nxt['fields'].items() if nxt['types'].get(k) not in ('submit', 'button')}
            if nxt['method'] == 'post':
                r = self._request('POST', action, fields)
            else:
                r = self._request('GET', action + ('&' if '?' in action else '?') + urllib.parse.urlencode(fields))
        raise RuntimeError('too many form steps')

    def saml_messages(self, kind=None):
        """kind e.g. 'Response' -> trace entries whose XML root is that element"""
        out = []
        for t in self.trace:
            if kind is None or (':' + kind) in t['xml'][:300] or ('<' + kind) in t['xml'][:300]:
                out.append(t)
        return out
