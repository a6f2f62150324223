package metadata

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strconv"

	"github.com/crewjam/saml"
)

// IdP is what the broker needs from an identity provider's metadata.
type IdP struct {
	EntityID                string
	SSO                     []saml.Endpoint
	SLO                     []saml.Endpoint
	SigningCerts            []*x509.Certificate
	WantAuthnRequestsSigned bool
}

// ParseIdP reads IdP metadata (an EntityDescriptor, or an aggregate with one IdP) and checks it:
// an entity ID, at least one SingleSignOnService, a signing certificate, safe endpoint URLs.
func ParseIdP(doc []byte, allowHTTP bool) (*IdP, error) {
	ed, err := entity(doc, func(e *saml.EntityDescriptor) bool { return len(e.IDPSSODescriptors) > 0 }, "IDPSSODescriptor")
	if err != nil {
		return nil, err
	}
	if ed.EntityID == "" {
		return nil, errorf("metadata has no entityID")
	}
	d := ed.IDPSSODescriptors[0]
	idp := &IdP{EntityID: ed.EntityID, SSO: usable(d.SingleSignOnServices), SLO: usable(d.SingleLogoutServices)}
	if d.WantAuthnRequestsSigned != nil {
		idp.WantAuthnRequestsSigned = *d.WantAuthnRequestsSigned
	}
	if len(idp.SSO) == 0 {
		return nil, errorf("metadata of %q has no SingleSignOnService", ed.EntityID)
	}
	if err := checkEndpoints("SingleSignOnService", idp.SSO, allowHTTP); err != nil {
		return nil, err
	}
	if err := checkEndpoints("SingleLogoutService", idp.SLO, allowHTTP); err != nil {
		return nil, err
	}
	idp.SigningCerts, err = signingCerts(d.KeyDescriptors)
	if err != nil {
		return nil, err
	}
	if len(idp.SigningCerts) == 0 {
		return nil, errorf("metadata of %q has no signing certificate; the broker cannot verify its assertions without one", ed.EntityID)
	}
	return idp, nil
}

// ACS is one AssertionConsumerService of an app.
type ACS struct {
	Binding   string
	Location  string
	Index     int
	IsDefault bool
}

// SP is what the broker needs from a service provider's metadata.
type SP struct {
	EntityID string
	// ACS are the app's HTTP-POST assertion consumer services, the default first.
	ACS                  []ACS
	SLO                  []saml.Endpoint
	SigningCerts         []*x509.Certificate
	AuthnRequestsSigned  bool
	WantAssertionsSigned bool
}

// ParseSP reads SP metadata (an EntityDescriptor, or an aggregate with one SP) and checks it: an
// entity ID, at least one HTTP-POST AssertionConsumerService, safe endpoint URLs.
func ParseSP(doc []byte, allowHTTP bool) (*SP, error) {
	ed, err := entity(doc, func(e *saml.EntityDescriptor) bool { return len(e.SPSSODescriptors) > 0 }, "SPSSODescriptor")
	if err != nil {
		return nil, err
	}
	if ed.EntityID == "" {
		return nil, errorf("metadata has no entityID")
	}
	d := ed.SPSSODescriptors[0]
	sp := &SP{EntityID: ed.EntityID, SLO: usable(d.SingleLogoutServices)}
	if d.AuthnRequestsSigned != nil {
		sp.AuthnRequestsSigned = *d.AuthnRequestsSigned
	}
	if d.WantAssertionsSigned != nil {
		sp.WantAssertionsSigned = *d.WantAssertionsSigned
	}
	type rankedACS struct {
		ACS
		rank int // 0 isDefault="true", 1 unspecified, 2 isDefault="false"
	}
	var ranked []rankedACS
	for _, a := range d.AssertionConsumerServices {
		// The broker answers over HTTP-POST only; SAML 1 and Artifact ACSs (SimpleSAMLphp lists
		// both) are not for it, and crewjam/saml blanks the Location of bindings it does not know.
		if a.Binding != saml.HTTPPostBinding {
			continue
		}
		if err := CheckURL(a.Location, allowHTTP); err != nil {
			return nil, errorf("AssertionConsumerService Location: %v", err)
		}
		rank := 1
		if a.IsDefault != nil {
			if *a.IsDefault {
				rank = 0
			} else {
				rank = 2
			}
		}
		ranked = append(ranked, rankedACS{ACS{Binding: a.Binding, Location: a.Location, Index: a.Index, IsDefault: rank == 0}, rank})
	}
	// saml-metadata 2.2.3: the default endpoint is the first with isDefault="true", else the
	// first without isDefault, else the first; document order otherwise.
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].rank < ranked[j].rank })
	for _, r := range ranked {
		sp.ACS = append(sp.ACS, r.ACS)
	}
	if sp.postACS() == 0 {
		return nil, errorf("metadata of %q has no AssertionConsumerService with the HTTP-POST binding", ed.EntityID)
	}
	if err := checkEndpoints("SingleLogoutService", sp.SLO, allowHTTP); err != nil {
		return nil, err
	}
	sp.SigningCerts, err = signingCerts(d.KeyDescriptors)
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// usable keeps the endpoints whose binding the broker speaks (Redirect, POST, SOAP); the rest
// (Artifact, SAML 1, PAOS) are ignored rather than refused.
func usable(eps []saml.Endpoint) []saml.Endpoint {
	var out []saml.Endpoint
	for _, e := range eps {
		switch e.Binding {
		case saml.HTTPRedirectBinding, saml.HTTPPostBinding, saml.SOAPBinding:
			out = append(out, e)
		}
	}
	return out
}

func (sp *SP) postACS() int {
	n := 0
	for _, a := range sp.ACS {
		if a.Binding == saml.HTTPPostBinding {
			n++
		}
	}
	return n
}

// ResolveACS picks the ACS URL for an AuthnRequest: the URL the request names, which must be an
// HTTP-POST ACS in the metadata; or the index it names; or the default. The URL always comes
// from the metadata, never from the request alone.
func (sp *SP) ResolveACS(requestedURL string, requestedIndex string) (string, error) {
	var index *int
	if requestedIndex != "" && requestedURL == "" {
		i, err := strconv.Atoi(requestedIndex)
		if err != nil || i < 0 {
			return "", fmt.Errorf("AssertionConsumerServiceIndex %q is not a number", requestedIndex)
		}
		index = &i
	}
	for _, a := range sp.ACS {
		if a.Binding != saml.HTTPPostBinding {
			continue
		}
		switch {
		case requestedURL != "":
			if a.Location == requestedURL {
				return a.Location, nil
			}
		case index != nil:
			if a.Index == *index {
				return a.Location, nil
			}
		default:
			return a.Location, nil
		}
	}
	if requestedURL != "" {
		return "", fmt.Errorf("AssertionConsumerServiceURL %q is not an HTTP-POST ACS in the app's metadata", requestedURL)
	}
	if index != nil {
		return "", fmt.Errorf("AssertionConsumerServiceIndex %d is not an HTTP-POST ACS in the app's metadata", *index)
	}
	return "", fmt.Errorf("the app's metadata has no HTTP-POST ACS")
}
