// Package generic is the provider for any SAML 2.0 IdP: a connection from its metadata, given as a
// URL or as XML, with overrides for what the metadata cannot say. Presets for products that
// differ in a few quirks (okta, entra, adfs, google, keycloak: presets.go) are this provider with
// other data, not copies of it; salesforce and auth0 build on its Open and config decoding.
//
// Config keys of the generic provider (all but the metadata optional):
//
//	metadata_url | metadata_xml      where the IdP's metadata is (exactly one)
//	sign_authn_requests              sign AuthnRequests (default true; always when the IdP wants them signed)
//	signature_algorithm              "rsa-sha256" (default) or "rsa-sha1", for AuthnRequests and logout
//	sso_binding                      "redirect" or "post": the preferred SingleSignOnService binding
//	slo_binding                      "redirect" or "post": the preferred SingleLogoutService binding
//	slo                              SAML Single Logout with this IdP (default true)
//	allow_unsigned_logout_request    act on unsigned LogoutRequests from the IdP (default false; warned)
package generic

import (
	"context"
	"fmt"
	"slices"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
)

// Override keys of the generic provider.
const (
	KeySignAuthnRequests          = "sign_authn_requests"
	KeySignatureAlgorithm         = "signature_algorithm"
	KeySSOBinding                 = "sso_binding"
	KeySLOBinding                 = "slo_binding"
	KeySLO                        = "slo"
	KeyAllowUnsignedLogoutRequest = "allow_unsigned_logout_request"
)

var overrideKeys = []string{KeySignAuthnRequests, KeySignatureAlgorithm, KeySSOBinding, KeySLOBinding, KeySLO, KeyAllowUnsignedLogoutRequest}

// Provider is the generic SAML 2.0 provider, and every preset built on it: the fields are data.
// The zero value of Quirks is plain SAML.
type Provider struct {
	// Name is the product's name in messages ("Okta").
	Name string
	// Quirks are the product's differences from the SAML default, each citing its source.
	Quirks providers.Quirks
	// Overrides admits the generic override keys (sign_authn_requests, ...) in the config.
	Overrides bool
	// OnlySLOBindings, when set, keeps only the metadata's SingleLogoutService endpoints of these
	// bindings: the product takes logout by no other (Entra: Redirect only).
	OnlySLOBindings []providers.Binding
	// Options are the product's own boolean config keys.
	Options []Option
	// NoSLOHint says what to do in the product's console when its metadata has no
	// SingleLogoutService (shown in the connection's notes).
	NoSLOHint string
}

// Option is a product's own boolean config key and what it changes in the quirks.
type Option struct {
	Key     string
	Default bool
	// Apply changes q for the value the admin gave (or Default).
	Apply func(q *providers.Quirks, on bool)
}

var _ providers.Provider = (*Provider)(nil)

// New returns the generic provider: SAML defaults, with the override keys.
func New() *Provider { return &Provider{Name: "the IdP", Overrides: true} }

func (p *Provider) known() []string {
	keys := []string{"metadata_url", "metadata_xml"}
	if p.Overrides {
		keys = append(keys, overrideKeys...)
	}
	for _, o := range p.Options {
		keys = append(keys, o.Key)
	}
	return keys
}

// settings is a decoded config: where the metadata is, and the quirks it asks for.
type settings struct {
	md         MetadataSource
	quirks     providers.Quirks
	ssoBinding providers.Binding
	sloBinding providers.Binding
}

func (p *Provider) decode(raw []byte) (*settings, error) {
	o, err := DecodeObject(raw, p.known(), "give metadata_url or metadata_xml")
	if err != nil {
		return nil, err
	}
	s := &settings{quirks: CloneQuirks(p.Quirks)}
	if s.md, err = o.Metadata(); err != nil {
		return nil, err
	}
	for _, opt := range p.Options {
		on, err := o.Bool(opt.Key, opt.Default)
		if err != nil {
			return nil, err
		}
		opt.Apply(&s.quirks, on)
	}
	if p.Overrides {
		if err := s.overrides(o); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *settings) overrides(o *Object) error {
	q := &s.quirks
	sign, err := o.Bool(KeySignAuthnRequests, !q.DontSignAuthnRequests)
	if err != nil {
		return err
	}
	q.DontSignAuthnRequests = !sign
	alg, err := o.String(KeySignatureAlgorithm)
	if err != nil {
		return err
	}
	switch alg {
	case "":
	case "rsa-sha256":
		q.AuthnRequestSigAlg, q.LogoutSigAlg = providers.SigAlgRSASHA256, providers.SigAlgRSASHA256
	case "rsa-sha1":
		q.AuthnRequestSigAlg, q.LogoutSigAlg = providers.SigAlgRSASHA1, providers.SigAlgRSASHA1
	default:
		return &providers.ConfigError{Field: "config." + KeySignatureAlgorithm, Message: fmt.Sprintf("%s must be \"rsa-sha256\" or \"rsa-sha1\", not %q", KeySignatureAlgorithm, alg)}
	}
	if s.ssoBinding, err = o.Binding(KeySSOBinding); err != nil {
		return err
	}
	if s.ssoBinding != "" {
		q.SSOBindings = preferred(s.ssoBinding)
	}
	if s.sloBinding, err = o.Binding(KeySLOBinding); err != nil {
		return err
	}
	if s.sloBinding != "" {
		q.LogoutBindings = preferred(s.sloBinding)
	}
	slo, err := o.Bool(KeySLO, !q.NoSLO)
	if err != nil {
		return err
	}
	q.NoSLO = !slo
	if q.NoSLO && s.sloBinding != "" {
		return &providers.ConfigError{Field: "config." + KeySLOBinding, Message: "slo_binding has no effect when slo is false; remove one of them"}
	}
	if q.AllowUnsignedLogoutRequest, err = o.Bool(KeyAllowUnsignedLogoutRequest, q.AllowUnsignedLogoutRequest); err != nil {
		return err
	}
	return nil
}

// preferred is b first, then the other front-channel binding.
func preferred(b providers.Binding) []providers.Binding {
	if b == providers.BindingPOST {
		return []providers.Binding{providers.BindingPOST, providers.BindingRedirect}
	}
	return []providers.Binding{providers.BindingRedirect, providers.BindingPOST}
}

// Configure decodes the config, fetches the metadata when given by URL, and opens the connection.
func (p *Provider) Configure(ctx context.Context, raw []byte, env providers.Env) (*providers.Upstream, error) {
	s, err := p.decode(raw)
	if err != nil {
		return nil, err
	}
	doc, err := s.md.Load(ctx, env)
	if err != nil {
		return nil, err
	}
	return p.open(s, doc, env)
}

// Load reopens a connection from its stored config and metadata, without network access.
func (p *Provider) Load(raw []byte, doc []byte, env providers.Env) (*providers.Upstream, error) {
	s, err := p.decode(raw)
	if err != nil {
		return nil, err
	}
	return p.open(s, doc, env)
}

func (p *Provider) open(s *settings, doc []byte, env providers.Env) (*providers.Upstream, error) {
	up, err := Open(doc, s.quirks, env)
	if err != nil {
		return nil, MetadataError(s.md.Field(), err)
	}
	if len(p.OnlySLOBindings) > 0 {
		kept := up.SLO[:0:0]
		for _, e := range up.SLO {
			if slices.Contains(p.OnlySLOBindings, e.Binding) {
				kept = append(kept, e)
			}
		}
		if len(kept) < len(up.SLO) {
			up.Notes = append(up.Notes, fmt.Sprintf("%s takes logout by %s only: the metadata's other SingleLogoutService endpoints are not used", p.Name, bindingNames(p.OnlySLOBindings)))
		}
		up.SLO = kept
	}
	if s.ssoBinding != "" && !hasBinding(up.SSO, s.ssoBinding) {
		return nil, &providers.ConfigError{Field: "config." + KeySSOBinding, Message: fmt.Sprintf("the metadata of %q has no SingleSignOnService with the %s binding; it offers %s", up.EntityID, providers.BindingName(s.ssoBinding), bindingList(up.SSO))}
	}
	if s.sloBinding != "" && !hasBinding(up.SLO, s.sloBinding) {
		return nil, &providers.ConfigError{Field: "config." + KeySLOBinding, Message: fmt.Sprintf("the metadata of %q has no SingleLogoutService with the %s binding; it offers %s", up.EntityID, providers.BindingName(s.sloBinding), bindingList(up.SLO))}
	}
	if !up.Quirks.NoSLO && len(up.SLO) == 0 && p.NoSLOHint != "" {
		up.Notes = append(up.Notes, p.NoSLOHint)
	}
	return up, nil
}

// Open reads IdP metadata into an opened connection with the quirks, without network access:
// an entity ID, a signing certificate, a SingleSignOnService the broker can use, safe endpoint
// URLs. Problems are *metadata.Error, worded for the admin.
func Open(doc []byte, q providers.Quirks, env providers.Env) (*providers.Upstream, error) {
	idp, err := metadata.ParseIdP(doc, env.AllowHTTP)
	if err != nil {
		return nil, err
	}
	up := &providers.Upstream{
		EntityID:                idp.EntityID,
		SigningCerts:            idp.SigningCerts,
		WantAuthnRequestsSigned: idp.WantAuthnRequestsSigned,
		Metadata:                doc,
		Quirks:                  q,
	}
	for _, e := range idp.SSO {
		up.SSO = append(up.SSO, providers.Endpoint{Binding: providers.Binding(e.Binding), Location: e.Location, ResponseLocation: e.ResponseLocation})
	}
	for _, e := range idp.SLO {
		up.SLO = append(up.SLO, providers.Endpoint{Binding: providers.Binding(e.Binding), Location: e.Location, ResponseLocation: e.ResponseLocation})
	}
	if _, err := up.SSOEndpoint(); err != nil {
		return nil, &metadata.Error{Message: fmt.Sprintf("metadata of %q has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding", idp.EntityID)}
	}
	return up, nil
}

// CloneQuirks copies q so that an Upstream never shares a preset's slices.
func CloneQuirks(q providers.Quirks) providers.Quirks {
	q.SSOBindings = slices.Clone(q.SSOBindings)
	q.LogoutBindings = slices.Clone(q.LogoutBindings)
	q.Diagnoses = slices.Clone(q.Diagnoses)
	return q
}

func hasBinding(eps []providers.Endpoint, b providers.Binding) bool {
	for _, e := range eps {
		if e.Binding == b {
			return true
		}
	}
	return false
}

func bindingList(eps []providers.Endpoint) string {
	var bs []providers.Binding
	for _, e := range eps {
		if !slices.Contains(bs, e.Binding) {
			bs = append(bs, e.Binding)
		}
	}
	if len(bs) == 0 {
		return "none"
	}
	return bindingNames(bs)
}

func bindingNames(bs []providers.Binding) string {
	out := ""
	for i, b := range bs {
		if i > 0 {
			out += ", "
		}
		out += providers.BindingName(b)
	}
	return out
}
