#!/usr/bin/python3
"""Drive one headless browser (one cookie jar, lib/browser.py) through a series of steps and
print everything that happened as JSON on stdout; the Go tests make the assertions.

usage: browse.py [--user U --password P] [--cookies FILE] [--refresh-poll S|none] [-v]
                 --step NAME START_URL [STATUS_URL] [--step ...]

Each step loads START_URL (following redirects, submitting SAML forms, filling login forms with
U/P; on any other page acting like a browser without JavaScript: every <iframe src> is loaded as
a navigation of its own, then the meta refresh is followed), then GETs STATUS_URL if given (a
peer's JSON session status). A meta refresh to the page itself is followed after at most S seconds
(--refresh-poll, default 0.5: like pressing reload) instead of the delay it names; "none" waits the
full delay. Output:
  {"steps": [{"name", "start", "final": {url, status, content_type, body},
              "status": {url, http_status, json, body} | null,
              "requests": [{method, url, status, location}], "password_forms": [{url, filled}],
              "saml": [{binding, param, url, xml, raw, relaystate, sigalg, signature, from}],
              "pages": [{url, status, title, iframes, refresh: {content, delay, url} | null, waited}],
              "frames": [{page, src, final_url, status, content_type, body, error}],
              "error": traceback | null}]}
A step that raises is reported in "error" and the next steps still run.
--cookies FILE: start with the cookies saved in FILE (if it exists) and save the cookie jar there
at the end (JSON), so that a later run continues as the same browser.
"""
import json
import os
import sys
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'lib'))
from browser import Browser  # noqa: E402


def parse_args(argv):
    opts = {'user': None, 'password': None, 'cookies': None, 'verbose': False, 'steps': [], 'refresh-poll': '0.5'}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ('--user', '--password', '--cookies', '--refresh-poll'):
            opts[a[2:]] = argv[i + 1]
            i += 2
        elif a == '-v':
            opts['verbose'] = True
            i += 1
        elif a == '--step':
            rest = []
            i += 1
            while i < len(argv) and not argv[i].startswith('-'):
                rest.append(argv[i])
                i += 1
            if len(rest) not in (2, 3):
                sys.exit('--step NAME START_URL [STATUS_URL]')
            opts['steps'].append((rest[0], rest[1], rest[2] if len(rest) == 3 else None))
        else:
            sys.exit('unknown argument %r\n%s' % (a, __doc__))
    if not opts['steps']:
        sys.exit(__doc__)
    return opts


def load_cookies(jar, path):
    if not path or not os.path.exists(path):
        return
    with open(path) as f:
        for c in json.load(f):
            jar.set(c['name'], c['value'], domain=c['domain'], path=c['path'], secure=c['secure'],
                    expires=c['expires'], rest=c['rest'])


def save_cookies(jar, path):
    if not path:
        return
    out = [{'name': c.name, 'value': c.value, 'domain': c.domain, 'path': c.path, 'secure': c.secure,
            'expires': c.expires, 'rest': dict(c._rest)} for c in jar]
    with open(path + '.tmp', 'w') as f:
        json.dump(out, f, indent=1)
    os.replace(path + '.tmp', path)


def page(r, limit=8000):
    return {'url': r.url, 'status': r.status_code, 'content_type': r.headers.get('Content-Type'),
            'body': r.text[:limit]}


def main():
    o = parse_args(sys.argv[1:])
    poll = None if o['refresh-poll'] == 'none' else float(o['refresh-poll'])
    b = Browser(o['user'], o['password'], verbose=o['verbose'], refresh_poll=poll)
    load_cookies(b.s.cookies, o['cookies'])
    out = {'steps': []}
    for name, start, status_url in o['steps']:
        n_req, n_pw, n_tr, n_pg, n_fr = len(b.requests), len(b.password_forms), len(b.trace), len(b.pages), len(b.frames)
        step = {'name': name, 'start': start, 'final': None, 'status': None, 'error': None}
        try:
            step['final'] = page(b.go(start))
            if status_url:
                r = b.s.get(status_url, timeout=30)
                st = {'url': status_url, 'http_status': r.status_code, 'json': None, 'body': r.text[:8000]}
                try:
                    st['json'] = r.json()
                except ValueError:
                    pass
                step['status'] = st
        except Exception:
            step['error'] = traceback.format_exc()
        step['requests'] = b.requests[n_req:]
        step['password_forms'] = b.password_forms[n_pw:]
        step['saml'] = b.trace[n_tr:]
        step['pages'] = b.pages[n_pg:]
        step['frames'] = b.frames[n_fr:]
        out['steps'].append(step)
    save_cookies(b.s.cookies, o['cookies'])
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
