// Package generic is the provider for any SAML 2.0 IdP: a connection from its metadata, given as a
// URL or as XML. Presets for products that differ in a few quirks embed it.
package generic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
)

// Config is a generic connection's configuration, as the admin gives it.
type Config struct {
	// MetadataURL is where the IdP publishes its metadata.
	MetadataURL string `json:"metadata_url,omitempty"`
	// MetadataXML is the IdP's metadata document itself.
	MetadataXML string `json:"metadata_xml,omitempty"`
}

// Provider is the generic SAML 2.0 provider. Quirks are the product's differences from the SAML
// default; the zero value is plain SAML.
type Provider struct {
	Quirks providers.Quirks
}

var _ providers.Provider = (*Provider)(nil)

// New returns the generic provider with the SAML defaults.
func New() *Provider { return &Provider{} }

// DecodeConfig strictly decodes a generic config: unknown keys are errors, and exactly one of
// metadata_url and metadata_xml must be given.
func DecodeConfig(raw []byte) (*Config, error) {
	var c Config
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return nil, &providers.ConfigError{Field: "config", Message: "config is required: give metadata_url or metadata_xml"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, &providers.ConfigError{Field: "config", Message: fmt.Sprintf("config is not valid: %v", err), Err: err}
	}
	if dec.More() {
		return nil, &providers.ConfigError{Field: "config", Message: "config has trailing data after the JSON object"}
	}
	c.MetadataURL = strings.TrimSpace(c.MetadataURL)
	switch {
	case c.MetadataURL == "" && strings.TrimSpace(c.MetadataXML) == "":
		return nil, &providers.ConfigError{Field: "config.metadata_url", Message: "give the IdP's metadata_url or its metadata_xml"}
	case c.MetadataURL != "" && c.MetadataXML != "":
		return nil, &providers.ConfigError{Field: "config.metadata_url", Message: "give metadata_url or metadata_xml, not both"}
	}
	return &c, nil
}

// Configure decodes the config, fetches the metadata when given by URL, and opens the connection.
func (p *Provider) Configure(ctx context.Context, raw []byte, env providers.Env) (*providers.Upstream, error) {
	c, err := DecodeConfig(raw)
	if err != nil {
		return nil, err
	}
	doc := []byte(c.MetadataXML)
	field := "config.metadata_xml"
	if c.MetadataURL != "" {
		field = "config.metadata_url"
		doc, err = metadata.Fetch(ctx, env.HTTPClient, c.MetadataURL, env.AllowHTTP)
		if err != nil {
			return nil, metadataError(field, err)
		}
	}
	up, err := p.open(doc, env)
	if err != nil {
		return nil, metadataError(field, err)
	}
	return up, nil
}

// Load reopens a connection from its stored metadata.
func (p *Provider) Load(raw []byte, doc []byte, env providers.Env) (*providers.Upstream, error) {
	if _, err := DecodeConfig(raw); err != nil {
		return nil, err
	}
	return p.open(doc, env)
}

func (p *Provider) open(doc []byte, env providers.Env) (*providers.Upstream, error) {
	idp, err := metadata.ParseIdP(doc, env.AllowHTTP)
	if err != nil {
		return nil, err
	}
	up := &providers.Upstream{
		EntityID:                idp.EntityID,
		SigningCerts:            idp.SigningCerts,
		WantAuthnRequestsSigned: idp.WantAuthnRequestsSigned,
		Metadata:                doc,
		Quirks:                  p.Quirks,
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

func metadataError(field string, err error) error {
	var me *metadata.Error
	if errors.As(err, &me) {
		return &providers.ConfigError{Field: field, Message: me.Message, Unreachable: me.Unreachable, Err: err}
	}
	return err
}
