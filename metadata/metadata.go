// Package metadata fetches and reads SAML metadata documents from outside (IdP metadata for
// connections, SP metadata for apps). Every document is hostile until checked: size-limited,
// strictly parsed, and every endpoint URL must be https (or http when allowed) — a
// javascript: or data: URL never gets in.
package metadata

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
)

// MaxSize is the largest metadata document accepted (aggregates with one entity are small).
const MaxSize = 1 << 20

// Error is a problem with a metadata document or URL, worded for the admin who supplied it.
type Error struct {
	Message string
	// Unreachable: the URL could not be fetched.
	Unreachable bool
	Err         error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

func errorf(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...)}
}

// CheckURL checks that raw is an absolute https URL (or http when allowHTTP), with a host and no
// user info. It is applied to metadata URLs and every endpoint in a document.
func CheckURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || !u.IsAbs() {
		return errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return errorf("%q uses http://; only https:// endpoints are accepted (set BROKER_ALLOW_HTTP for local testing)", raw)
		}
	default:
		return errorf("%q has scheme %q; only https:// endpoints are accepted", raw, u.Scheme)
	}
	if u.User != nil {
		return errorf("%q carries user info; remove it", raw)
	}
	return nil
}

// Fetch downloads a metadata document from rawURL.
func Fetch(ctx context.Context, client *http.Client, rawURL string, allowHTTP bool) ([]byte, error) {
	if err := CheckURL(rawURL, allowHTTP); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("metadata URL %q: %v", rawURL, err), Err: err}
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	// Every redirect hop must pass the same URL rules as the first URL.
	c := *client
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		return CheckURL(r.URL.String(), allowHTTP)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("metadata URL %q could not be fetched: %v", rawURL, err), Unreachable: true, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Message: fmt.Sprintf("metadata URL %q answered HTTP %d", rawURL, resp.StatusCode), Unreachable: true}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("metadata URL %q: reading the answer: %v", rawURL, err), Unreachable: true, Err: err}
	}
	if len(body) > MaxSize {
		return nil, errorf("metadata at %q is larger than %d bytes", rawURL, MaxSize)
	}
	return body, nil
}

// entity reads one EntityDescriptor from doc: either the root, or the only entity of an
// EntitiesDescriptor aggregate that has the wanted role.
func entity(doc []byte, hasRole func(*saml.EntityDescriptor) bool, role string) (*saml.EntityDescriptor, error) {
	if len(doc) > MaxSize {
		return nil, errorf("metadata is larger than %d bytes", MaxSize)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, errorf("metadata is empty")
	}
	if err := binding.ValidateRoundTrip(doc); err != nil {
		return nil, &Error{Message: fmt.Sprintf("metadata is not well-formed XML: %v", err), Err: err}
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var root xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, &Error{Message: "metadata is not an XML document", Err: err}
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	const mdNS = "urn:oasis:names:tc:SAML:2.0:metadata"
	if root.Name.Space != mdNS {
		return nil, errorf("metadata root element is {%s}%s; want a SAML 2.0 EntityDescriptor or EntitiesDescriptor", root.Name.Space, root.Name.Local)
	}
	switch root.Name.Local {
	case "EntityDescriptor":
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(doc, &ed); err != nil {
			return nil, &Error{Message: fmt.Sprintf("metadata cannot be read: %v", err), Err: err}
		}
		if !hasRole(&ed) {
			return nil, errorf("metadata of %q has no %s", ed.EntityID, role)
		}
		return &ed, nil
	case "EntitiesDescriptor":
		var agg saml.EntitiesDescriptor
		if err := xml.Unmarshal(doc, &agg); err != nil {
			return nil, &Error{Message: fmt.Sprintf("metadata cannot be read: %v", err), Err: err}
		}
		var found []*saml.EntityDescriptor
		var walk func(*saml.EntitiesDescriptor)
		walk = func(a *saml.EntitiesDescriptor) {
			for i := range a.EntityDescriptors {
				if hasRole(&a.EntityDescriptors[i]) {
					found = append(found, &a.EntityDescriptors[i])
				}
			}
			for i := range a.EntitiesDescriptors {
				walk(&a.EntitiesDescriptors[i])
			}
		}
		walk(&agg)
		switch len(found) {
		case 0:
			return nil, errorf("metadata aggregate has no entity with an %s", role)
		case 1:
			return found[0], nil
		default:
			return nil, errorf("metadata aggregate has %d entities with an %s; give the metadata of exactly one", len(found), role)
		}
	default:
		return nil, errorf("metadata root element is %s; want EntityDescriptor or EntitiesDescriptor", root.Name.Local)
	}
}

// signingCerts returns the certificates of key descriptors for signing (use="signing" or no use).
func signingCerts(kds []saml.KeyDescriptor) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, kd := range kds {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			data := strings.Join(strings.Fields(c.Data), "")
			if data == "" {
				continue
			}
			der, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return nil, &Error{Message: "metadata has a signing certificate that is not valid base64", Err: err}
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, &Error{Message: fmt.Sprintf("metadata has a signing certificate that cannot be parsed: %v", err), Err: err}
			}
			certs = append(certs, cert)
		}
	}
	return certs, nil
}

func checkEndpoints(kind string, eps []saml.Endpoint, allowHTTP bool) error {
	for _, e := range eps {
		if err := CheckURL(e.Location, allowHTTP); err != nil {
			return errorf("%s Location: %v", kind, err)
		}
		if e.ResponseLocation != "" {
			if err := CheckURL(e.ResponseLocation, allowHTTP); err != nil {
				return errorf("%s ResponseLocation: %v", kind, err)
			}
		}
	}
	return nil
}
