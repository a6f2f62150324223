package providers

import "fmt"

// Capabilities is what a connection can do, as its API view shows it. It is derived from the
// connection's quirks and endpoints (Upstream.Capabilities); providers never set it by hand.
type Capabilities struct {
	// SLO: the broker can end the user's session at the IdP with a LogoutRequest.
	SLO bool `json:"slo"`
	// SLOBindings are the bindings the broker may use toward the IdP's SingleLogoutService,
	// most preferred first ("redirect", "post", "soap").
	SLOBindings []string `json:"slo_bindings"`
	// BackChannelSLO: the broker can reach the IdP with no browser (SOAP), e.g. when a session
	// expires or an operator ends it.
	BackChannelSLO bool `json:"back_channel_slo"`
	// IdPInitiatedSLO: the IdP may itself start a logout.
	IdPInitiatedSLO bool `json:"idp_initiated_slo"`
	// IdPLogoutChannel is how the IdP's own LogoutRequests arrive: "front" (through the
	// browser), "back" (server to server), or "" when it does not send any.
	IdPLogoutChannel string `json:"idp_logout_channel,omitempty"`
	// SignedAuthnRequests: the broker signs its AuthnRequests to the IdP.
	SignedAuthnRequests bool `json:"signed_authn_requests"`
	// AuthnRequestSigAlg and LogoutSigAlg are the algorithms the broker signs with ("rsa-sha256",
	// "rsa-sha1").
	AuthnRequestSigAlg string `json:"authn_request_signature_algorithm"`
	LogoutSigAlg       string `json:"logout_signature_algorithm"`
	// ForceAuthnAfterLogout: after a local-only logout, the next sign-in asks the IdP to
	// authenticate the user again.
	ForceAuthnAfterLogout bool `json:"force_authn_after_logout"`
}

// SigAlgName is the short name of a signature algorithm URI ("rsa-sha256" for the default "").
func SigAlgName(uri string) string {
	switch uri {
	case "", SigAlgRSASHA256:
		return "rsa-sha256"
	case SigAlgRSASHA1:
		return "rsa-sha1"
	}
	return uri
}

// BindingName is the short name of a binding URN ("redirect", "post", "soap").
func BindingName(b Binding) string {
	switch b {
	case BindingRedirect:
		return "redirect"
	case BindingPOST:
		return "post"
	case BindingSOAP:
		return "soap"
	}
	return string(b)
}

// Capabilities derives what the connection can do from its quirks and endpoints, the way the SSO
// and SLO engines read them.
func (u *Upstream) Capabilities() Capabilities {
	q := &u.Quirks
	c := Capabilities{
		SLOBindings:           []string{},
		SignedAuthnRequests:   !q.DontSignAuthnRequests || u.WantAuthnRequestsSigned,
		AuthnRequestSigAlg:    SigAlgName(q.AuthnRequestSigAlg),
		LogoutSigAlg:          SigAlgName(q.LogoutSigAlg),
		ForceAuthnAfterLogout: q.ForceAuthnAfterLogout,
	}
	if q.NoSLO || len(u.SLO) == 0 {
		return c
	}
	c.SLO = true
	// The order slo.MakePlan follows: SOAP unless front channel only, then the preferred
	// bindings, then Redirect, then POST.
	has := func(b Binding) bool {
		for _, e := range u.SLO {
			if e.Binding == b {
				return true
			}
		}
		return false
	}
	seen := map[Binding]bool{}
	add := func(b Binding) {
		if !seen[b] && has(b) {
			seen[b] = true
			c.SLOBindings = append(c.SLOBindings, BindingName(b))
		}
	}
	if !q.FrontChannelOnly && has(BindingSOAP) {
		c.BackChannelSLO = true
		add(BindingSOAP)
	}
	for _, b := range append(append([]Binding{}, q.LogoutBindings...), BindingRedirect, BindingPOST) {
		if b != BindingSOAP {
			add(b)
		}
	}
	if !q.SPInitiatedSLOOnly {
		c.IdPInitiatedSLO = true
		c.IdPLogoutChannel = "front"
		if q.IdPLogoutBackChannel {
			c.IdPLogoutChannel = "back"
		}
	}
	return c
}

// Warnings are what the admin should know is weaker or missing on this connection, in plain
// words, derived from its quirks and endpoints.
func (u *Upstream) Warnings() []string {
	q := &u.Quirks
	out := []string{}
	if q.AllowUnsignedLogoutRequest {
		out = append(out, "unsigned IdP LogoutRequests are accepted: anyone who can reach the browser can end its sessions")
	}
	if q.DontSignAuthnRequests && !u.WantAuthnRequestsSigned {
		out = append(out, "AuthnRequests are sent unsigned")
	}
	if q.AuthnRequestSigAlg == SigAlgRSASHA1 || q.LogoutSigAlg == SigAlgRSASHA1 {
		out = append(out, "RSA-SHA1 is used with this IdP, and accepted from it for logout messages")
	}
	switch {
	case q.NoSLO:
		out = append(out, fmt.Sprintf("%s does not support SAML Single Logout: signing out ends the broker session and the apps' sessions, not the IdP's", u.EntityID))
	case len(u.SLO) == 0:
		out = append(out, fmt.Sprintf("the metadata of %s has no SingleLogoutService: signing out ends the broker session and the apps' sessions, not the IdP's", u.EntityID))
	}
	if q.IdPLogoutBackChannel {
		out = append(out, "the IdP logs users out server to server: apps that take logout only through the browser are recorded as unreachable then")
	}
	return out
}
