package sso

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
)

// The AuthnRequest reader must read what encoding/xml reads through crewjam/saml's type, for the
// fields the broker acts on.

const authnRequestSample = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="2026-11-21T12:00:00.123Z" Destination="https://broker.example/t/acme/idp/sso" AssertionConsumerServiceURL="https://app.example/acs" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" ForceAuthn="true" IsPassive="0"><saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">https://app.example/metadata</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient" AllowCreate="1"/></samlp:AuthnRequest>`

// usedFields is what the broker reads of an AuthnRequest.
type usedFields struct {
	ID, Version, Destination, ACSURL, ACSIndex, ProtocolBinding string
	IssueInstant                                                string
	Issuer                                                      *saml.Issuer
	ForceAuthn, IsPassive, AllowCreate                          *bool
	Format                                                      *string
	HasPolicy                                                   bool
}

func used(r *saml.AuthnRequest) usedFields {
	u := usedFields{ID: r.ID, Version: r.Version, Destination: r.Destination, ACSURL: r.AssertionConsumerServiceURL,
		ACSIndex: r.AssertionConsumerServiceIndex, ProtocolBinding: r.ProtocolBinding, IssueInstant: r.IssueInstant.String(),
		ForceAuthn: r.ForceAuthn, IsPassive: r.IsPassive}
	if r.Issuer != nil {
		is := *r.Issuer
		is.XMLName = xml.Name{}
		u.Issuer = &is
	}
	if r.NameIDPolicy != nil {
		u.HasPolicy, u.Format, u.AllowCreate = true, r.NameIDPolicy.Format, r.NameIDPolicy.AllowCreate
	}
	return u
}

// compareAuthnRequest reads doc both ways; when encoding/xml reads it, the reader must read the
// same fields, or refuse (it refuses a repeated Issuer or NameIDPolicy, which encoding/xml takes).
func compareAuthnRequest(t *testing.T, doc string) {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromString(doc); err != nil || d.Root() == nil {
		return
	}
	// A namespace declaration is no attribute to the reader (xmlns:ID="x" is not an ID), while
	// encoding/xml matches it by its local name: such documents differ by design.
	for _, el := range append([]*etree.Element{d.Root()}, d.Root().ChildElements()...) {
		for _, a := range el.Attr {
			if a.Space == "xmlns" {
				switch a.Key {
				case "ID", "Version", "Destination", "IssueInstant", "AssertionConsumerServiceURL", "AssertionConsumerServiceIndex",
					"ProtocolBinding", "ForceAuthn", "IsPassive", "Format", "AllowCreate", "SPNameQualifier", "NameQualifier", "SPProvidedID":
					return
				}
			}
		}
	}
	var want saml.AuthnRequest
	werr := xml.Unmarshal(binding.Serialize(d.Root()), &want)
	var got saml.AuthnRequest
	gerr := readAuthnRequest(d.Root(), &got)
	if werr != nil {
		return // encoding/xml refuses: the handler refused it before too
	}
	if gerr != nil {
		if len(children(d.Root(), nsAssertion, "Issuer")) > 1 || len(children(d.Root(), nsProtocol, "NameIDPolicy")) > 1 {
			return
		}
		t.Fatalf("reader refuses what encoding/xml reads: %v\n%s", gerr, doc)
	}
	if g, w := used(&got), used(&want); !reflect.DeepEqual(g, w) {
		t.Fatalf("reader and encoding/xml differ:\nreader %+v\nxml    %+v\n%s", g, w, doc)
	}
}

func TestReadAuthnRequestMatchesEncodingXML(t *testing.T) {
	docs := []string{
		authnRequestSample,
		strings.Replace(authnRequestSample, ` ForceAuthn="true" IsPassive="0"`, "", 1),
		strings.Replace(authnRequestSample, `<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient" AllowCreate="1"/>`, "", 1),
		strings.Replace(authnRequestSample, `https://app.example/metadata</saml:Issuer>`, `https://app.example<!-- x -->/metadata</saml:Issuer>`, 1),
		strings.Replace(authnRequestSample, `AssertionConsumerServiceURL="https://app.example/acs"`, `AssertionConsumerServiceIndex="2"`, 1),
		strings.Replace(authnRequestSample, `IssueInstant="2026-11-21T12:00:00.123Z"`, `IssueInstant="2026-11-21T12:00:00Z"`, 1),
		strings.Replace(authnRequestSample, `<saml:Issuer `, `<saml:Issuer xmlns:saml="urn:other" `, 1),
		strings.Replace(authnRequestSample, `ForceAuthn="true"`, `ForceAuthn=" TRUE "`, 1),
	}
	for _, doc := range docs {
		compareAuthnRequest(t, doc)
	}
	// A repeated Issuer is refused (encoding/xml would silently keep one).
	twice := strings.Replace(authnRequestSample, `<samlp:NameIDPolicy`, `<saml:Issuer>https://evil.example</saml:Issuer><samlp:NameIDPolicy`, 1)
	d := etree.NewDocument()
	if err := d.ReadFromString(twice); err != nil {
		t.Fatal(err)
	}
	var r saml.AuthnRequest
	if err := readAuthnRequest(d.Root(), &r); err == nil {
		t.Errorf("two Issuers accepted: %+v", r.Issuer)
	}
	// Bad booleans and times are refused.
	for _, bad := range []string{
		strings.Replace(authnRequestSample, `ForceAuthn="true"`, `ForceAuthn="yes"`, 1),
		strings.Replace(authnRequestSample, `IssueInstant="2026-11-21T12:00:00.123Z"`, `IssueInstant="yesterday"`, 1),
	} {
		d := etree.NewDocument()
		if err := d.ReadFromString(bad); err != nil {
			t.Fatal(err)
		}
		if err := readAuthnRequest(d.Root(), &r); err == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}

func FuzzReadAuthnRequest(f *testing.F) {
	f.Add(authnRequestSample)
	f.Add(strings.Replace(authnRequestSample, `ForceAuthn="true"`, `ForceAuthn="1" saml:IsPassive="true"`, 1))
	f.Fuzz(func(t *testing.T, doc string) {
		compareAuthnRequest(t, doc)
	})
}
