// Package demo is what `broker demo` adds to the server: a built-in demo IdP (crewjam/saml's
// samlidp, with a login form) and a demo app (crewjam/saml's samlsp middleware), both mounted
// under /demo/ on the broker's own address, so a newcomer can sign in through the broker with
// nothing else running. Not for production: its users and keys live in memory.
package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/bcrypt"

	"github.com/sloworks/broker/keys"
)

// Users of the demo IdP: name → password.
var Users = map[string]string{"alice": "wonderland", "bob": "builder"}

// Demo is the demo IdP and app.
type Demo struct {
	idp     *samlidp.Server
	app     *samlsp.Middleware
	base    string
	handler http.Handler

	idpKey, appKey   *rsa.PrivateKey
	idpCert, appCert *x509.Certificate
	// brokerSLO and brokerSPSLO are the broker's SingleLogoutService (Redirect) as IdP and as SP;
	// brokerCerts its signing certificates.
	brokerSLO, brokerSPSLO string
	brokerCerts            []*x509.Certificate
}

var randRead = rand.Read

// New builds the demo under base (the broker's base URL). brokerIdP is the broker's IdP metadata
// for the demo tenant (the app trusts it); brokerSP its SP metadata (the IdP trusts it).
func New(base *url.URL, brokerIdP, brokerSP *saml.EntityDescriptor) (*Demo, error) {
	root := strings.TrimSuffix(base.String(), "/") + "/demo"
	idpURL, _ := url.Parse(root + "/idp")
	appURL, _ := url.Parse(root + "/app/") // samlsp resolves saml/acs against it

	idpKey, idpCert, err := keyPair("demo idp")
	if err != nil {
		return nil, err
	}
	store := &samlidp.MemoryStore{}
	if err := store.Put("/services/broker", samlidp.Service{Name: "broker", Metadata: *brokerSP}); err != nil {
		return nil, err
	}
	for name, pw := range Users {
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		if err := store.Put("/users/"+name, samlidp.User{
			Name: name, HashedPassword: hash, Email: name + "@demo.example",
			CommonName: strings.ToUpper(name[:1]) + name[1:], GivenName: strings.ToUpper(name[:1]) + name[1:],
			Surname: "Demo", Groups: []string{"demo"},
		}); err != nil {
			return nil, err
		}
	}
	idp, err := samlidp.New(samlidp.Options{URL: *idpURL, Key: idpKey, Signer: idpKey, Certificate: idpCert, Store: store, Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("demo idp: %w", err)
	}
	idp.IDP.SignatureMethod = dsig.RSASHA256SignatureMethod
	// samlidp's login form posts to LoginURL, whose handler does not continue the SAML flow;
	// posting the credentials with the SAMLRequest to the SSO endpoint does.
	idp.IDP.LoginURL = idp.IDP.SSOURL

	appKey, appCert, err := keyPair("demo app")
	if err != nil {
		return nil, err
	}
	app, err := samlsp.New(samlsp.Options{URL: *appURL, Key: appKey, Certificate: appCert, IDPMetadata: brokerIdP, CookieName: "demo_app_token",
		LogoutBindings: []string{saml.HTTPRedirectBinding}})
	if err != nil {
		return nil, fmt.Errorf("demo app: %w", err)
	}
	d := &Demo{idp: idp, app: app, base: root, idpKey: idpKey, idpCert: idpCert, appKey: appKey, appCert: appCert}
	if len(brokerIdP.IDPSSODescriptors) > 0 {
		d.brokerSLO = sloEndpoint(brokerIdP.IDPSSODescriptors[0].SingleLogoutServices)
		for _, kd := range brokerIdP.IDPSSODescriptors[0].KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				if der, err := base64.StdEncoding.DecodeString(c.Data); err == nil {
					if cert, err := x509.ParseCertificate(der); err == nil {
						d.brokerCerts = append(d.brokerCerts, cert)
					}
				}
			}
		}
	}
	if len(brokerSP.SPSSODescriptors) > 0 {
		d.brokerSPSLO = sloEndpoint(brokerSP.SPSSODescriptors[0].SingleLogoutServices)
	}
	mux := http.NewServeMux()
	// Only the IdP's SAML and login endpoints: samlidp's REST admin routes stay unmounted.
	idpOnly := http.StripPrefix("/demo/idp", idp)
	mux.Handle("/demo/idp/metadata", idpOnly)
	mux.Handle("/demo/idp/sso", idpOnly)
	mux.Handle("/demo/idp/login", idpOnly)
	mux.HandleFunc("/demo/idp/slo", d.idpSLO)
	mux.HandleFunc("/demo/app/saml/slo", d.appSLO)
	mux.HandleFunc("/demo/app/logout", d.appLogout)
	mux.Handle("/demo/app/saml/", app) // samlsp matches the full ACS and metadata paths
	mux.Handle("/demo/app/", app.RequireAccount(http.HandlerFunc(d.appHome)))
	mux.HandleFunc("/demo/{$}", d.home)
	d.handler = mux
	return d, nil
}

// Handler serves everything under /demo/.
func (d *Demo) Handler() http.Handler { return d.handler }

// URL is the page a newcomer opens.
func (d *Demo) URL() string { return d.base + "/" }

// IdPMetadata is the demo IdP's metadata document (for the demo tenant's connection), with its
// SingleLogoutService (samlidp has none of its own).
func (d *Demo) IdPMetadata() ([]byte, error) {
	ed := d.idp.IDP.Metadata()
	if len(ed.IDPSSODescriptors) > 0 {
		ed.IDPSSODescriptors[0].SingleLogoutServices = []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: d.base + "/idp/slo"}}
	}
	return xml.Marshal(ed)
}

// AppMetadata is the demo app's metadata document (for the demo tenant's app), with its key
// listed for signing too: the app signs its LogoutRequests (samlsp lists it for encryption only
// unless it also signs AuthnRequests).
func (d *Demo) AppMetadata() ([]byte, error) {
	ed := d.app.ServiceProvider.Metadata()
	for i := range ed.SPSSODescriptors {
		ed.SPSSODescriptors[i].KeyDescriptors = append(ed.SPSSODescriptors[i].KeyDescriptors, saml.KeyDescriptor{
			Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(d.appCert.Raw)}}}}})
	}
	return xml.Marshal(ed)
}

func keyPair(name string) (*rsa.PrivateKey, *x509.Certificate, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	cert, err := keys.SelfSignedCertificate(k, name, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return k, cert, nil
}

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
code{background:#f3f3f3;padding:.1rem .3rem}a.button{display:inline-block;padding:.5rem 1rem;background:#2b5fd9;color:#fff;border-radius:.3rem;text-decoration:none}</style></head>
<body><h1>{{.Title}}</h1>{{.Body}}</body></html>
`))

func (d *Demo) home(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(Users))
	for n := range Users {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(`<p>This broker runs a demo tenant <code>demo</code>: a demo app trusts the broker as its IdP, and the broker trusts a demo IdP. Sign in to the app and you go app → broker → IdP → broker → app.</p>`)
	b.WriteString(`<p><a class="button" href="` + template.HTMLEscapeString(d.base) + `/app/">Sign in to the demo app</a></p><p>Users of the demo IdP:</p><table><tr><th>user</th><th>password</th></tr>`)
	for _, n := range names {
		b.WriteString("<tr><td><code>" + n + "</code></td><td><code>" + Users[n] + "</code></td></tr>")
	}
	b.WriteString(`</table>`)
	render(w, "Broker demo", template.HTML(b.String()))
}

func (d *Demo) appHome(w http.ResponseWriter, r *http.Request) {
	s := samlsp.SessionFromContext(r.Context())
	var b strings.Builder
	b.WriteString(`<p>You are signed in to the demo app through the broker.</p><table>`)
	if sa, ok := s.(samlsp.SessionWithAttributes); ok {
		attrs := sa.GetAttributes()
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			b.WriteString("<tr><th>" + template.HTMLEscapeString(k) + "</th><td>" + template.HTMLEscapeString(strings.Join(attrs[k], ", ")) + "</td></tr>")
		}
	}
	b.WriteString(`</table><p><a class="button" href="` + template.HTMLEscapeString(d.base) + `/app/logout">Sign out everywhere</a></p>`)
	render(w, "Demo app", template.HTML(b.String()))
}

func render(w http.ResponseWriter, title string, body template.HTML) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_ = page.Execute(w, map[string]any{"Title": title, "Body": body})
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...interface{}) {}
func (quietLogger) Print(...interface{})          {}
func (quietLogger) Println(...interface{})        {}
func (quietLogger) Fatal(...interface{})          {}
func (quietLogger) Fatalf(string, ...interface{}) {}
func (quietLogger) Fatalln(...interface{})        {}
func (quietLogger) Panic(...interface{})          {}
func (quietLogger) Panicf(string, ...interface{}) {}
func (quietLogger) Panicln(...interface{})        {}
