// Package salesforce is the provider for a Salesforce org as the tenant's IdP, and the quirks of
// Salesforce as an app behind the broker (AppQuirks, App).
//
// As the IdP, a connection is opened from the org's IdP metadata (it carries the signing
// certificate, so it is required) and optionally its My Domain name, from which the logout
// endpoint is derived when the metadata has none. Config keys:
//
//	metadata_url | metadata_xml      the org's IdP metadata (exactly one)
//	my_domain                        the org's My Domain name ("acme" for https://acme.my.salesforce.com)
//	slo_use_sso_signature_method     the org uses "Use Selected Request Signature Method for Single
//	                                 Logout": sign logout like AuthnRequests (RSA-SHA256), not RSA-SHA1
//	slo_binding                      "redirect" or "post": the binding the org's SLO takes
//
// Salesforce as an app: an app registered with "provider": "salesforce" gets AppQuirks (cmd/broker
// registers App in its map of app providers): one SessionIndex, none over 512 characters,
// RSA-SHA1 used toward and accepted from this app only (its logout_signature_algorithm
// "rsa-sha256" when the org uses "Use Selected Request Signature Method for Single Logout"),
// never a SOAP leg.
package salesforce

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/providers/generic"
)

// Config keys of the salesforce provider.
const (
	KeyMyDomain                 = "my_domain"
	KeySLOUseSSOSignatureMethod = "slo_use_sso_signature_method"
	KeySLOBinding               = "slo_binding"
)

var known = []string{"metadata_url", "metadata_xml", KeyMyDomain, KeySLOUseSSOSignatureMethod, KeySLOBinding}

// Sources cited by the quirks.
const (
	// SrcSessionIndex: "If the identity provider sends more than one session index parameter,
	// Salesforce stores only the first one that it receives. The session index parameter can't be
	// more than 512 characters." and "the session index parameter is required to identify which
	// user session to end".
	SrcSessionIndex = "Salesforce Help: SAML Session Index Support, https://help.salesforce.com/s/articleView?id=xcloud.slo_saml_session_index.htm"
	// SrcFrontChannel: "Salesforce currently supports front-channel SLO only, meaning that SLO
	// redirects must occur in the same browser."
	SrcFrontChannel = "Salesforce Help: Single Logout, https://help.salesforce.com/s/articleView?id=xcloud.slo_about.htm"
	// SrcUnableToLogOut: an unsigned LogoutRequest, or one without SessionIndex, gets "We are
	// unable to log you out." and nothing in the org's logs.
	SrcUnableToLogOut = "salesforce.stackexchange.com/questions/274373 (pysaml2 LogoutRequest, unsigned, no SessionIndex); DESIGN.md seed 000"
	// SrcSLOEndpoint: the IdP SLO endpoint https://{MyDomainName}.my.salesforce.com/services/auth/idp/saml2/logout,
	// and RSA-SHA1 with a SHA-1 digest for logout unless the org enabled "Use Selected Request
	// Signature Method for Single Logout" (then the SSO method).
	SrcSLOEndpoint = "DESIGN.md seed 001 (Salesforce Help: Configure SAML Single Logout, https://help.salesforce.com/s/articleView?id=xcloud.security_auth_slo_saml_idp_configuring.htm)"
)

// Provider is a Salesforce org as the tenant's IdP.
type Provider struct{}

var _ providers.Provider = (*Provider)(nil)

// New returns the salesforce provider.
func New() *Provider { return &Provider{} }

// SLOURL is the org's IdP logout endpoint derived from its My Domain name (SrcSLOEndpoint).
func SLOURL(myDomain string) string {
	return "https://" + strings.ToLower(myDomain) + ".my.salesforce.com/services/auth/idp/saml2/logout"
}

// CheckMyDomain checks the syntax of a My Domain name: letters, digits and hyphens, not at either
// end, as one DNS label. The message says what is wrong.
func CheckMyDomain(name string) error {
	bad := func(format string, args ...any) error {
		return &providers.ConfigError{Field: "config." + KeyMyDomain, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case name == "":
		return bad("my_domain is empty; give the org's My Domain name (\"acme\" for https://acme.my.salesforce.com), or leave it out")
	case strings.Contains(name, "://") || strings.Contains(name, "/"):
		return bad("my_domain %q is a URL; give the My Domain name alone (\"acme\" for https://acme.my.salesforce.com)", name)
	case strings.HasSuffix(strings.ToLower(name), ".salesforce.com"):
		return bad("my_domain %q is a host name; give the My Domain name alone, without .my.salesforce.com (\"acme\" for acme.my.salesforce.com)", name)
	case len(name) > 63:
		return bad("my_domain is %d characters long; a My Domain name is one DNS label of at most 63", len(name))
	case name[0] == '-' || name[len(name)-1] == '-':
		return bad("my_domain %q starts or ends with a hyphen; a My Domain name cannot", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return bad("my_domain %q has %q; a My Domain name has only letters, digits and hyphens", name, r)
		}
	}
	return nil
}

type config struct {
	md              generic.MetadataSource
	myDomain        string
	sloUseSSOMethod bool
	sloBinding      providers.Binding
}

func decode(raw []byte) (*config, error) {
	o, err := generic.DecodeObject(raw, known, "give the org's IdP metadata_url or metadata_xml, and its my_domain")
	if err != nil {
		return nil, err
	}
	c := &config{}
	if c.md, err = o.Metadata(); err != nil {
		return nil, err
	}
	if o.Has(KeyMyDomain) {
		if c.myDomain, err = o.String(KeyMyDomain); err != nil {
			return nil, err
		}
		if err := CheckMyDomain(c.myDomain); err != nil {
			return nil, err
		}
		c.myDomain = strings.ToLower(c.myDomain)
	}
	if c.sloUseSSOMethod, err = o.Bool(KeySLOUseSSOSignatureMethod, false); err != nil {
		return nil, err
	}
	if c.sloBinding, err = o.Binding(KeySLOBinding); err != nil {
		return nil, err
	}
	return c, nil
}

// IdPQuirks are the quirks of a Salesforce org as the IdP. sloUseSSOMethod is the org's "Use
// Selected Request Signature Method for Single Logout"; sloBinding the binding its SLO takes
// ("" for what the metadata says).
func IdPQuirks(sloUseSSOMethod bool, sloBinding providers.Binding) providers.Quirks {
	q := providers.Quirks{
		SessionIndex:        providers.SessionIndexFirstOnly, // SrcSessionIndex
		MaxSessionIndexLen:  512,                             // SrcSessionIndex
		RequireSessionIndex: true,                            // SrcSessionIndex, SrcUnableToLogOut
		LogoutSigAlg:        providers.SigAlgRSASHA1,         // SrcSLOEndpoint
		FrontChannelOnly:    true,                            // SrcFrontChannel
		Diagnoses:           idpDiagnoses(),
	}
	if sloUseSSOMethod {
		// The SSO method: the algorithm of the broker's AuthnRequests (SrcSLOEndpoint).
		q.LogoutSigAlg = providers.SigAlgRSASHA256
	}
	if sloBinding != "" {
		q.LogoutBindings = []providers.Binding{sloBinding}
	}
	return q
}

const unableToLogOut = "Salesforce shows \"We are unable to log you out.\" (and logs nothing) when a LogoutRequest is unsigned, does not carry the " +
	"SessionIndex it issued at sign-in, or is signed with another algorithm than the org expects: RSA-SHA1 with a SHA-1 digest, unless " +
	"the org uses \"Use Selected Request Signature Method for Single Logout\" (then set slo_use_sso_signature_method on the connection). " +
	"The broker's certificate must be the one in the connected app's SAML settings."

func idpDiagnoses() []providers.Diagnosis {
	return []providers.Diagnosis{{
		Contains: "We are unable to log you out",
		Text:     unableToLogOut,
		Source:   SrcUnableToLogOut,
	}, {
		ErrorClass: "no_answer",
		Text: unableToLogOut + " If the logout did succeed, Salesforce sends the browser back to the connected app's Single Logout URL, " +
			"which must be the broker's .../sp/slo URL.",
		Source: SrcUnableToLogOut + "; " + SrcFrontChannel,
	}}
}

// AppQuirks are the quirks of Salesforce as an app behind the broker (Salesforce as SP): it keeps
// only the first SessionIndex and refuses one over 512 characters, so the broker sends exactly
// one, short; it signs its logout messages with RSA-SHA1 unless the org uses "Use Selected Request
// Signature Method for Single Logout", so SHA-1 is accepted from this app only; front channel
// only. sloUseSelectedSignatureMethod is the org's "Use Selected Request Signature Method for
// Single Logout" (then RSA-SHA256).
func AppQuirks(sloUseSelectedSignatureMethod bool) providers.Quirks {
	q := providers.Quirks{
		SessionIndex:        providers.SessionIndexFirstOnly, // SrcSessionIndex
		MaxSessionIndexLen:  512,                             // SrcSessionIndex
		RequireSessionIndex: true,                            // SrcSessionIndex
		LogoutSigAlg:        providers.SigAlgRSASHA1,         // SrcSLOEndpoint
		FrontChannelOnly:    true,                            // SrcFrontChannel
		Diagnoses: []providers.Diagnosis{{
			ErrorClass: "no_answer",
			Text: "Salesforce (the app) did not send the browser back. It keeps only the first SessionIndex it received and refuses one over " +
				"512 characters; its SAML Single Sign-On Settings must have Single Logout Enabled with the broker's .../idp/slo URL as " +
				"Identity Provider Single Logout URL.",
			Source: SrcSessionIndex,
		}},
	}
	if sloUseSelectedSignatureMethod {
		q.LogoutSigAlg = providers.SigAlgRSASHA256
	}
	return q
}

// App is Salesforce as an app behind the broker, for the catalogue of app providers: AppQuirks,
// with the app's logout_signature_algorithm "rsa-sha256" standing for the org's "Use Selected
// Request Signature Method for Single Logout" (the default is Salesforce's RSA-SHA1).
func App(s providers.AppSettings) providers.Quirks {
	return AppQuirks(s.LogoutSigAlg == providers.SigAlgRSASHA256)
}

var _ providers.AppProvider = App

// Configure decodes the config, fetches the metadata when given by URL, and opens the connection.
func (p *Provider) Configure(ctx context.Context, raw []byte, env providers.Env) (*providers.Upstream, error) {
	c, err := decode(raw)
	if err != nil {
		return nil, err
	}
	doc, err := c.md.Load(ctx, env)
	if err != nil {
		return nil, err
	}
	return open(c, doc, env)
}

// Load reopens a connection from its stored config and metadata, without network access.
func (p *Provider) Load(raw []byte, doc []byte, env providers.Env) (*providers.Upstream, error) {
	c, err := decode(raw)
	if err != nil {
		return nil, err
	}
	return open(c, doc, env)
}

func open(c *config, doc []byte, env providers.Env) (*providers.Upstream, error) {
	up, err := generic.Open(doc, IdPQuirks(c.sloUseSSOMethod, c.sloBinding), env)
	if err != nil {
		return nil, generic.MetadataError(c.md.Field(), err)
	}
	if c.myDomain != "" {
		if org := orgOf(up); org != "" && org != c.myDomain {
			return nil, &providers.ConfigError{Field: "config." + KeyMyDomain, Message: fmt.Sprintf(
				"my_domain is %q but the metadata is of the org %q (its SingleSignOnService is on %s.my.salesforce.com); give the My Domain name of the org whose metadata this is", c.myDomain, org, org)}
		}
	}
	if len(up.SLO) == 0 {
		if c.myDomain == "" {
			return nil, &providers.ConfigError{Field: "config." + KeyMyDomain, Message: fmt.Sprintf(
				"the metadata of %q has no SingleLogoutService; give my_domain, the org's My Domain name, so that the broker derives its logout endpoint %s", up.EntityID, SLOURL("{my_domain}"))}
		}
		loc := SLOURL(c.myDomain)
		if err := metadata.CheckURL(loc, env.AllowHTTP); err != nil {
			return nil, generic.MetadataError("config."+KeyMyDomain, err)
		}
		up.SLO = []providers.Endpoint{{Binding: providers.BindingRedirect, Location: loc}, {Binding: providers.BindingPOST, Location: loc}}
		up.Notes = append(up.Notes, fmt.Sprintf("the metadata has no SingleLogoutService: the logout endpoint %s is derived from my_domain", loc))
	}
	if c.sloBinding != "" {
		found := false
		for _, e := range up.SLO {
			found = found || e.Binding == c.sloBinding
		}
		if !found {
			return nil, &providers.ConfigError{Field: "config." + KeySLOBinding, Message: fmt.Sprintf(
				"the metadata of %q has no SingleLogoutService with the %s binding; use the binding it lists, or leave slo_binding out", up.EntityID, providers.BindingName(c.sloBinding))}
		}
	}
	return up, nil
}

// orgOf is the My Domain name of the org the metadata's SingleSignOnService is on, "" when it is
// not on a *.my.salesforce.com host (a custom domain or an Experience Cloud site).
func orgOf(up *providers.Upstream) string {
	for _, e := range up.SSO {
		u, err := url.Parse(e.Location)
		if err != nil {
			continue
		}
		host := strings.ToLower(u.Hostname())
		if name, ok := strings.CutSuffix(host, ".my.salesforce.com"); ok && !strings.Contains(name, ".") {
			return name
		}
	}
	return ""
}
