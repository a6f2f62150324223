package sso

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"time"

	"github.com/crewjam/saml"
	"github.com/labstack/echo/v4"
)

// MetadataValidity is how long the metadata documents say they are valid.
const MetadataValidity = 48 * time.Hour

// signingKeyDescriptors has one signing KeyDescriptor per published certificate: during a key
// rotation the current, next and previous keys' (saml-metadata 2.4.1.1: a role may list several
// keys of one use, and a relying party accepts a signature made with any of them).
func signingKeyDescriptors(certs []*x509.Certificate) []saml.KeyDescriptor {
	out := make([]saml.KeyDescriptor, 0, len(certs))
	for _, cert := range certs {
		out = append(out, saml.KeyDescriptor{
			Use: "signing",
			KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
				{Data: base64.StdEncoding.EncodeToString(cert.Raw)},
			}}},
		})
	}
	return out
}

// nameIDFormats the broker issues to apps and accepts from IdPs.
var nameIDFormats = []saml.NameIDFormat{
	saml.PersistentNameIDFormat,
	saml.TransientNameIDFormat,
	saml.EmailAddressNameIDFormat,
	saml.UnspecifiedNameIDFormat,
}

// IdPMetadata is the broker-as-IdP metadata document of a tenant, for its apps, listing the
// published signing certificates (the signing one first).
func (h *Handler) IdPMetadata(slug string, certs []*x509.Certificate, now time.Time) *saml.EntityDescriptor {
	validUntil := now.Add(MetadataValidity).UTC().Truncate(time.Second)
	wantSigned := false
	return &saml.EntityDescriptor{
		EntityID:   h.IdPEntityID(slug),
		ValidUntil: validUntil,
		IDPSSODescriptors: []saml.IDPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{
				RoleDescriptor: saml.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors:             signingKeyDescriptors(certs),
				},
				SingleLogoutServices: sloServices(h.idpSLOURL(slug), h.idpSLOSOAPURL(slug)),
				NameIDFormats:        nameIDFormats,
			},
			WantAuthnRequestsSigned: &wantSigned,
			SingleSignOnServices: []saml.Endpoint{
				{Binding: saml.HTTPRedirectBinding, Location: h.ssoURL(slug)},
				{Binding: saml.HTTPPostBinding, Location: h.ssoURL(slug)},
			},
		}},
	}
}

// SPMetadata is the broker-as-SP metadata document of a tenant, for its IdP, listing the
// published signing certificates (the signing one first).
func (h *Handler) SPMetadata(slug string, certs []*x509.Certificate, now time.Time) *saml.EntityDescriptor {
	validUntil := now.Add(MetadataValidity).UTC().Truncate(time.Second)
	yes := true
	isDefault := true
	return &saml.EntityDescriptor{
		EntityID:   h.SPEntityID(slug),
		ValidUntil: validUntil,
		SPSSODescriptors: []saml.SPSSODescriptor{{
			SSODescriptor: saml.SSODescriptor{
				RoleDescriptor: saml.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors:             signingKeyDescriptors(certs),
				},
				SingleLogoutServices: sloServices(h.spSLOURL(slug), h.spSLOSOAPURL(slug)),
				NameIDFormats:        nameIDFormats,
			},
			AuthnRequestsSigned:  &yes,
			WantAssertionsSigned: &yes,
			AssertionConsumerServices: []saml.IndexedEndpoint{
				{Binding: saml.HTTPPostBinding, Location: h.acsURL(slug), Index: 0, IsDefault: &isDefault},
			},
		}},
	}
}

// sloServices are the broker's SingleLogoutService endpoints: Redirect and POST through the
// browser, SOAP for the back channel.
func sloServices(front, soap string) []saml.Endpoint {
	return []saml.Endpoint{
		{Binding: saml.HTTPRedirectBinding, Location: front},
		{Binding: saml.HTTPPostBinding, Location: front},
		{Binding: saml.SOAPBinding, Location: soap},
	}
}

func (h *Handler) idpMetadata(c echo.Context) error {
	return h.serveMetadata(c, h.IdPMetadata)
}

func (h *Handler) spMetadata(c echo.Context) error {
	return h.serveMetadata(c, h.SPMetadata)
}

func (h *Handler) serveMetadata(c echo.Context, doc func(string, []*x509.Certificate, time.Time) *saml.EntityDescriptor) error {
	t, err := h.tenant(c)
	if err != nil {
		return err
	}
	kp, err := h.keyPair(c.Request().Context(), t)
	if err != nil {
		return err
	}
	out, err := MarshalMetadata(doc(t.Slug, kp.Certificates(), h.now()))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/samlmetadata+xml", out)
}

// MarshalMetadata renders a metadata document with an XML declaration.
func MarshalMetadata(ed *saml.EntityDescriptor) ([]byte, error) {
	out, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}
