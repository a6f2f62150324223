// Package providers holds the contract of provider plugins: a provider turns what a tenant admin
// types into an upstream IdP connection, and carries what is special about that IdP product as
// data (Quirks) that the SSO and SLO engines read. The engines never switch on a provider's name.
//
// Providers are registered in an explicit map by cmd/broker, never through init().
package providers

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// Binding is a SAML binding URN.
type Binding string

// The SAML 2.0 bindings the broker speaks (saml-bindings 3.4 Redirect, 3.5 POST, 3.2 SOAP).
const (
	BindingRedirect Binding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	BindingPOST     Binding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	BindingSOAP     Binding = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
)

// Signature algorithms (xmldsig-more).
const (
	SigAlgRSASHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	SigAlgRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
)

// SessionIndexPolicy says how many SessionIndex values a peer keeps.
type SessionIndexPolicy int

const (
	// SessionIndexAll: the SAML default, every SessionIndex is kept and may be sent.
	SessionIndexAll SessionIndexPolicy = iota
	// SessionIndexFirstOnly: the peer keeps only the first SessionIndex it receives.
	SessionIndexFirstOnly
)

// Quirks is what is special about one IdP product. The zero value is the SAML default. Every
// non-default value a provider sets cites its source beside it.
type Quirks struct {
	// DontSignAuthnRequests: send the upstream AuthnRequest unsigned. Default false (signed):
	// IdPs accept a signed request, and some refuse an unsigned one.
	DontSignAuthnRequests bool
	// AuthnRequestSigAlg is the algorithm for AuthnRequests; empty = RSA-SHA256.
	AuthnRequestSigAlg string
	// SSOBindings are the bindings to send AuthnRequests with, most preferred first; empty =
	// Redirect, then POST.
	SSOBindings []Binding

	// SessionIndex is how many SessionIndex values the IdP keeps.
	SessionIndex SessionIndexPolicy
	// MaxSessionIndexLen is the longest SessionIndex the peer accepts; 0 = no limit.
	MaxSessionIndexLen int
	// LogoutSigAlg is the algorithm for logout messages; empty = RSA-SHA256.
	LogoutSigAlg string
	// LogoutBindings are the supported logout bindings, most preferred first; empty = what the
	// metadata says.
	LogoutBindings []Binding
	// FrontChannelOnly: never plan a SOAP back-channel leg to this peer.
	FrontChannelOnly bool
	// NoSLO: the IdP has no SAML Single Logout at all.
	NoSLO bool
	// ForceAuthnAfterLogout: ask for ForceAuthn on the next login after a local-only logout.
	ForceAuthnAfterLogout bool
	// AllowUnsignedLogoutRequest: act on an unsigned LogoutRequest from the IdP. Off by default.
	AllowUnsignedLogoutRequest bool
	// RequireSessionIndex: the peer refuses a LogoutRequest without a SessionIndex, so a leg that
	// has none is recorded as not sent rather than sent to fail.
	RequireSessionIndex bool

	// SPInitiatedSLOOnly: the IdP never starts a logout itself (it sends no LogoutRequests); only
	// the broker's LogoutRequests to it end its session. Read by the connection's API view; the
	// broker still acts on a signed LogoutRequest from it if one comes.
	SPInitiatedSLOOnly bool
	// IdPLogoutBackChannel: the IdP sends its LogoutRequests server to server (SOAP), with no
	// browser, so apps that take logout only through the browser cannot be reached then. Read by
	// the connection's API view.
	IdPLogoutBackChannel bool

	// Diagnoses are the plain-words explanations of the product's known failures, first match
	// wins (see Quirks.Diagnose).
	Diagnoses []Diagnosis
}

// Endpoint is one SAML service endpoint of the IdP.
type Endpoint struct {
	Binding          Binding
	Location         string
	ResponseLocation string
}

// Upstream is an opened connection: everything the SSO and SLO engines need about the IdP.
type Upstream struct {
	// EntityID is the IdP's entity ID.
	EntityID string
	// SSO and SLO are the IdP's endpoints from its metadata (or derived by the provider).
	SSO []Endpoint
	SLO []Endpoint
	// SigningCerts are the certificates the IdP signs with.
	SigningCerts []*x509.Certificate
	// WantAuthnRequestsSigned is the IdP metadata's flag.
	WantAuthnRequestsSigned bool
	// Metadata is the metadata document the connection was opened from.
	Metadata []byte
	// Quirks are the product's differences from the SAML default.
	Quirks Quirks
	// Notes say in plain words what the provider derived or assumed when it opened the
	// connection (e.g. an SLO endpoint derived from a My Domain name), for the admin.
	Notes []string
}

// SSOEndpoint returns the endpoint to send an AuthnRequest to: the first of the preferred
// bindings the IdP offers.
func (u *Upstream) SSOEndpoint() (Endpoint, error) {
	prefs := u.Quirks.SSOBindings
	if len(prefs) == 0 {
		prefs = []Binding{BindingRedirect, BindingPOST}
	}
	for _, b := range prefs {
		for _, e := range u.SSO {
			if e.Binding == b {
				return e, nil
			}
		}
	}
	return Endpoint{}, fmt.Errorf("idp %s has no SingleSignOnService with a supported binding", u.EntityID)
}

// Env is what a provider may use when it configures a connection.
type Env struct {
	// HTTPClient fetches metadata; it has a timeout and a size limit is applied by the caller
	// of FetchMetadata.
	HTTPClient *http.Client
	// AllowHTTP permits http:// endpoints and metadata URLs (local testing only).
	AllowHTTP bool
}

// Provider is one IdP product.
type Provider interface {
	// Configure strictly decodes an admin's JSON config, fetches what it needs (metadata),
	// validates it, and returns the opened connection. Errors that the admin can fix are
	// *ConfigError.
	Configure(ctx context.Context, config []byte, env Env) (*Upstream, error)
	// Load reopens a connection from its stored config and the metadata Configure returned,
	// without network access.
	Load(config []byte, metadata []byte, env Env) (*Upstream, error)
}

// ConfigError is a problem with what the admin typed: it names the field and says what to fix.
type ConfigError struct {
	Field   string
	Message string
	// Unreachable marks a metadata URL that could not be fetched (a 422, not a 400).
	Unreachable bool
	Err         error
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is (or wraps) a *ConfigError and returns it.
func IsConfigError(err error) (*ConfigError, bool) {
	var ce *ConfigError
	ok := errors.As(err, &ce)
	return ce, ok
}
