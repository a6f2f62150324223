// Package auth0 is the provider for an Auth0 tenant as the tenant's IdP, through an application
// with the SAML2 Web App addon. The admin gives the tenant's domain (or custom domain) and the
// application's client ID; everything else is derived:
//
//	metadata  https://{domain}/samlp/metadata/{client_id}
//	SSO       https://{domain}/samlp/{client_id}
//	SLO       https://{domain}/samlp/{client_id}/logout
//
// Auth0 answers "Not found" anywhere else, so the derived SSO and SLO endpoints replace whatever
// the metadata lists. Config keys:
//
//	domain         the Auth0 tenant domain ("acme.us.auth0.com") or a custom domain ("login.acme.com")
//	client_id      the application's Client ID (32 letters and digits)
//	metadata_xml   the metadata document, when the broker cannot fetch it (optional)
package auth0

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
)

// Config keys of the auth0 provider.
const (
	KeyDomain      = "domain"
	KeyClientID    = "client_id"
	KeyMetadataXML = "metadata_xml"
)

var known = []string{KeyDomain, KeyClientID, KeyMetadataXML}

// Sources cited by the quirks.
const (
	// SrcEndpoints: GET /samlp/metadata/{client_id}, GET /samlp/{client_id} (login),
	// POST /samlp/{client_id}/logout (a SAML LogoutRequest in the body).
	SrcEndpoints = "Auth0 Authentication API: Get Metadata, SAML Logout, https://auth0.com/docs/api/authentication/saml/get-saml-metadata, https://auth0.com/docs/api/authentication/logout/saml-logout"
	// SrcNotFound: any other path answers "Not found".
	SrcNotFound = "DESIGN.md seed 003; Auth0 support: Federated logout with Auth0 as SAML IdP and SP, https://support.auth0.com/center/s/article/Federated-logout-with-Auth0-as-SAML-IdP-and-SP"
	// SrcLogoutCallback: Auth0 sends logout responses (and, with slo_enabled, requests) to the
	// addon's logout.callback, one URL per application.
	SrcLogoutCallback = "Auth0: Log Users Out of SAML Identity Providers, Configure SLO when Auth0 is the SAML IdP, https://auth0.com/docs/authenticate/login/logout/log-users-out-of-saml-idps"
	// SrcClientID: Auth0 client IDs are 32 letters and digits; the docs do not state it, every
	// public client ID seen has that shape.
	SrcClientID = "observed Auth0 client IDs (e.g. in public SPA configs); not stated in Auth0's docs"
)

// Provider is an Auth0 application (SAML2 Web App addon) as the tenant's IdP.
type Provider struct{}

var _ providers.Provider = (*Provider)(nil)

// New returns the auth0 provider.
func New() *Provider { return &Provider{} }

// Endpoints are an Auth0 application's SAML URLs, derived from the domain and client ID.
type Endpoints struct {
	Metadata, SSO, SLO string
}

// Derive returns the application's SAML URLs (SrcEndpoints). base is "https://{domain}" (or
// "http://127.0.0.1:port" for a local test IdP with BROKER_ALLOW_HTTP).
func Derive(base, clientID string) Endpoints {
	return Endpoints{
		Metadata: base + "/samlp/metadata/" + clientID,
		SSO:      base + "/samlp/" + clientID,
		SLO:      base + "/samlp/" + clientID + "/logout",
	}
}

// CheckClientID checks the syntax of an Auth0 client ID: 32 letters and digits (SrcClientID).
func CheckClientID(id string) error {
	bad := func(format string, args ...any) error {
		return &providers.ConfigError{Field: "config." + KeyClientID, Message: fmt.Sprintf(format, args...)}
	}
	if id == "" {
		return bad("client_id is required: the Client ID of the Auth0 application with the SAML2 Web App addon (Applications > the application > Settings)")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return bad("client_id %q has %q; an Auth0 Client ID has only letters and digits (copy it from Applications > the application > Settings, not the Client Secret or the Domain)", id, r)
		}
	}
	if len(id) != 32 {
		return bad("client_id %q is %d characters long; an Auth0 Client ID is 32 letters and digits", id, len(id))
	}
	return nil
}

// BaseURL checks the syntax of an Auth0 domain and returns "https://{domain}": a host name
// (tenant domain or custom domain) of dot-separated labels of letters, digits and hyphens, no
// scheme, path or port. With allowHTTP, a loopback host with a port (a local test IdP) gives
// "http://{host}:{port}".
func BaseURL(domain string, allowHTTP bool) (string, error) {
	bad := func(format string, args ...any) (string, error) {
		return "", &providers.ConfigError{Field: "config." + KeyDomain, Message: fmt.Sprintf(format, args...)}
	}
	if domain == "" {
		return bad("domain is required: the Auth0 tenant's domain (\"acme.us.auth0.com\") or its custom domain")
	}
	if strings.Contains(domain, "://") || strings.ContainsAny(domain, "/?#@") {
		return bad("domain %q is a URL; give the host name alone (\"acme.us.auth0.com\", not https://acme.us.auth0.com/)", domain)
	}
	host := strings.ToLower(strings.TrimSuffix(domain, "."))
	if h, port, err := net.SplitHostPort(host); err == nil {
		if allowHTTP && isLoopback(h) && port != "" {
			return "http://" + host, nil
		}
		return bad("domain %q has a port; give the host name alone (Auth0 serves on https, port 443)", domain)
	}
	if len(host) > 253 {
		return bad("domain is %d characters long; a host name has at most 253", len(host))
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return bad("domain %q is not a full host name; give the tenant's domain (\"acme.us.auth0.com\") or its custom domain", domain)
	}
	for _, l := range labels {
		switch {
		case l == "":
			return bad("domain %q has an empty label (two dots in a row, or a leading dot)", domain)
		case len(l) > 63:
			return bad("domain %q has a label of %d characters; at most 63", domain, len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return bad("domain %q has a label that starts or ends with a hyphen", domain)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return bad("domain %q has %q; a host name has only letters, digits, hyphens and dots", domain, r)
			}
		}
	}
	return "https://" + host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Quirks are the quirks of Auth0 as the IdP: signed LogoutRequests with the NameID exactly as
// issued (Auth0 often issues transient or unspecified formats; the engine always echoes it) and
// the SessionIndex, RSA-SHA256, POST preferred for logout (the documented binding).
func Quirks() providers.Quirks {
	return providers.Quirks{
		AuthnRequestSigAlg: providers.SigAlgRSASHA256,
		LogoutSigAlg:       providers.SigAlgRSASHA256,
		// POST /samlp/{client_id}/logout is the documented logout endpoint (SrcEndpoints).
		LogoutBindings: []providers.Binding{providers.BindingPOST, providers.BindingRedirect},
		Diagnoses: []providers.Diagnosis{{
			Status: "404",
			Text: "Auth0 answers \"Not found\" to SAML messages sent anywhere but https://{domain}/samlp/{client_id} (sign-in) and " +
				"https://{domain}/samlp/{client_id}/logout (logout): check the connection's domain and client_id, and that the application " +
				"has the SAML2 Web App addon on.",
			Source: SrcNotFound,
		}, {
			Contains: "Not found",
			Text: "Auth0 answers \"Not found\" to SAML messages sent anywhere but https://{domain}/samlp/{client_id}/logout: check the " +
				"connection's domain and client_id, and that the application has the SAML2 Web App addon on.",
			Source: SrcNotFound,
		}, {
			ErrorClass: "no_answer",
			Text: "Auth0 did not send the browser back. Auth0 sends its LogoutResponse to the logout.callback of the application's SAML2 Web App " +
				"addon settings, which must be the broker's .../sp/slo URL; a LogoutRequest sent to a wrong path gets \"Not found\" in the browser.",
			Source: SrcLogoutCallback + "; " + SrcNotFound,
		}},
	}
}

type config struct {
	base     string
	clientID string
	xml      string
}

func decode(raw []byte, allowHTTP bool) (*config, error) {
	o, err := generic.DecodeObject(raw, known, "give the Auth0 domain and client_id")
	if err != nil {
		return nil, err
	}
	c := &config{}
	domain, err := o.String(KeyDomain)
	if err != nil {
		return nil, err
	}
	if c.base, err = BaseURL(domain, allowHTTP); err != nil {
		return nil, err
	}
	if c.clientID, err = o.String(KeyClientID); err != nil {
		return nil, err
	}
	if err := CheckClientID(c.clientID); err != nil {
		return nil, err
	}
	if c.xml, err = o.String(KeyMetadataXML); err != nil {
		return nil, err
	}
	return c, nil
}

// Configure decodes the config, fetches the application's metadata unless it is given, and opens
// the connection with the derived endpoints.
func (p *Provider) Configure(ctx context.Context, raw []byte, env providers.Env) (*providers.Upstream, error) {
	c, err := decode(raw, env.AllowHTTP)
	if err != nil {
		return nil, err
	}
	doc := []byte(c.xml)
	if c.xml == "" {
		u := Derive(c.base, c.clientID).Metadata
		if doc, err = metadata.Fetch(ctx, env.HTTPClient, u, env.AllowHTTP); err != nil {
			return nil, generic.MetadataError(metadataField(c), err)
		}
	}
	return open(c, doc, env)
}

// Load reopens a connection from its stored config and metadata, without network access.
func (p *Provider) Load(raw []byte, doc []byte, env providers.Env) (*providers.Upstream, error) {
	c, err := decode(raw, env.AllowHTTP)
	if err != nil {
		return nil, err
	}
	return open(c, doc, env)
}

// metadataField is the field a metadata problem is reported on: metadata_xml when given, else
// the domain and client ID it was fetched with (reported on client_id: a wrong client ID is the
// usual cause of a 404).
func metadataField(c *config) string {
	if c.xml != "" {
		return "config." + KeyMetadataXML
	}
	return "config." + KeyClientID
}

func open(c *config, doc []byte, env providers.Env) (*providers.Upstream, error) {
	up, err := generic.Open(doc, Quirks(), env)
	if err != nil {
		return nil, generic.MetadataError(metadataField(c), err)
	}
	ep := Derive(c.base, c.clientID)
	for _, loc := range []string{ep.SSO, ep.SLO} {
		if err := metadata.CheckURL(loc, env.AllowHTTP); err != nil {
			return nil, generic.MetadataError("config."+KeyDomain, err)
		}
	}
	// Auth0 answers "Not found" anywhere but these paths (SrcNotFound): the derived endpoints
	// replace the metadata's, whatever host (tenant or custom domain) it names.
	up.SSO = []providers.Endpoint{{Binding: providers.BindingRedirect, Location: ep.SSO}, {Binding: providers.BindingPOST, Location: ep.SSO}}
	up.SLO = []providers.Endpoint{{Binding: providers.BindingPOST, Location: ep.SLO}, {Binding: providers.BindingRedirect, Location: ep.SLO}}
	up.Notes = append(up.Notes, fmt.Sprintf("sign-in at %s and logout at %s, derived from domain and client_id", ep.SSO, ep.SLO))
	return up, nil
}
