#!/usr/bin/python3
"""Headless 'browser' for SAML front-channel flows (Debian python3-requests only).

- keeps one cookie jar (requests.Session), follows 301/302/303/307 redirects by hand,
- auto-submits SAML POST-binding forms (any form carrying SAMLRequest/SAMLResponse,
  or SimpleSAMLphp's postredirect page),
- fills username/password login forms (SimpleSAMLphp exampleauth and the like),
- behaves like a browser WITHOUT JavaScript on other pages: loads every <iframe src> (each a
  navigation of its own: redirects followed, SAML forms submitted, same cookie jar), then follows
  <meta http-equiv="refresh" content="N;url=U"> -- after at most `refresh_poll` seconds instead
  of N when U is the page itself (a user pressing reload early; the page must be safe to reload),
- records every request (.requests), every page that showed a password form (.password_forms)
  and every SAML message that crossed the front channel (.trace: decoded XML, plus the raw
  base64 value and the URL of the page that carried a POST form).
"""
import base64
import html.parser
import re
import sys
import time
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


class _NoJSParser(html.parser.HTMLParser):
    """What a browser without JavaScript acts on besides forms: iframes and meta refresh."""
    def __init__(self):
        super().__init__()
        self.iframes = []
        self.refresh = None
        self.title = ''
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'iframe' and a.get('src'):
            self.iframes.append(a['src'])
        elif tag == 'meta' and (a.get('http-equiv') or '').lower() == 'refresh' and self.refresh is None:
            self.refresh = a.get('content') or ''
        elif tag == 'title':
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == 'title':
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def parse_refresh(content, base):
    """'N;url=U' -> (N seconds, absolute U; base when absent), or None when unparsable."""
    m = re.match(r'\s*(\d+(?:\.\d+)?)\s*(?:[;,]\s*(?:url\s*=\s*)?[\'"]?([^\'"]*)[\'"]?)?\s*$', content, re.I)
    if not m:
        return None
    return float(m.group(1)), urllib.parse.urljoin(base, (m.group(2) or '').strip() or base)


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
    def __init__(self, username=None, password=None, verbose=False, max_steps=40, refresh_poll=0.5,
                 max_refresh_time=60):
        self.s = requests.Session()
        self.username, self.password = username, password
        self.verbose = verbose
        self.max_steps = max_steps
        self.refresh_poll = refresh_poll          # None: wait as long as the meta refresh says
        self.max_refresh_time = max_refresh_time  # seconds of meta refreshes per go()
        self.requests = []        # {method, url, status, location}
        self.password_forms = []  # {url, filled}
        self.trace = []           # {binding, param, url, xml, raw, relaystate, sigalg, signature, from}
        self.pages = []           # pages with iframes or a meta refresh: {url, status, title, iframes, refresh}
        self.frames = []          # iframe loads: {page, src, final_url, status, content_type, body}
        self._frame_depth = 0

    def _log(self, *a):
        if self.verbose:
            print('  [browser]', *a, file=sys.stderr)   # stdout may carry JSON (flows/browse.py)

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
        """Load url and keep submitting SAML/login forms (and, on other pages, loading iframes and
        following meta refresh); return the final requests.Response."""
        r = self._request(method, url, data)
        refresh_until = None
        loaded = set()   # iframe srcs loaded during this navigation (a reload does not repeat them)
        for _ in range(self.max_steps * 4):
            ctype = r.headers.get('Content-Type', '')
            if 'html' not in ctype:
                return r
            forms = parse_forms(r.text)
            nxt = self._next_form(r, forms)
            if nxt is None:
                if refresh_until is None:
                    refresh_until = time.monotonic() + self.max_refresh_time
                nr = self._no_js(r, loaded, refresh_until)
                if nr is None:
                    return r
                r = nr
                continue
            action = urllib.parse.urljoin(r.url, nxt['action'] or r.url)
            fields = {k: v for k, v in nxt['fields'].items() if nxt['types'].get(k) not in ('submit', 'button')}
            if nxt['method'] == 'post':
                r = self._request('POST', action, fields)
            else:
                r = self._request('GET', action + ('&' if '?' in action else '?') + urllib.parse.urlencode(fields))
        raise RuntimeError('too many form steps')

    def _no_js(self, r, loaded, refresh_until):
        """A page with no form to submit: load its iframes, then follow its meta refresh. Returns
        the next response, or None when the page is final (no meta refresh)."""
        p = _NoJSParser()
        p.feed(r.text)
        if not p.iframes and p.refresh is None:
            return None
        refresh = parse_refresh(p.refresh, r.url) if p.refresh is not None else None
        page = {'url': r.url, 'status': r.status_code, 'title': p.title.strip(),
                'iframes': [urllib.parse.urljoin(r.url, s) for s in p.iframes],
                'refresh': {'content': p.refresh, 'delay': refresh[0], 'url': refresh[1]} if refresh else None,
                'waited': None}
        self.pages.append(page)
        if self._frame_depth < 2:
            for src in page['iframes']:
                if src in loaded:
                    continue
                loaded.add(src)
                self._log('iframe', src[:160])
                fr = {'page': r.url, 'src': src, 'final_url': None, 'status': None, 'content_type': None,
                      'body': None, 'error': None}
                self.frames.append(fr)
                self._frame_depth += 1
                try:
                    f = self.go(src)
                    fr.update(final_url=f.url, status=f.status_code, content_type=f.headers.get('Content-Type'),
                              body=f.text[:2000])
                except Exception as ex:   # a broken frame does not stop the page
                    fr['error'] = repr(ex)
                finally:
                    self._frame_depth -= 1
        if refresh is None:
            return None
        if time.monotonic() > refresh_until:
            raise RuntimeError('meta refresh for more than %ss, last at %s' % (self.max_refresh_time, r.url))
        delay, target = refresh
        wait = delay
        if self.refresh_poll is not None and target == r.url:
            wait = min(delay, self.refresh_poll)
        page['waited'] = wait
        self._log('meta refresh after %.2fs (page says %ss) ->' % (wait, delay), target[:160])
        time.sleep(wait)
        return self._request('GET', target)

    def _next_form(self, r, forms):
        """The form to submit next on page r (SAML message, login form, SSP postredirect), or None."""
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
        return nxt

    def saml_messages(self, kind=None):
        """kind e.g. 'Response' -> trace entries whose XML root is that element"""
        out = []
        for t in self.trace:
            if kind is None or (':' + kind) in t['xml'][:300] or ('<' + kind) in t['xml'][:300]:
                out.append(t)
        return out
