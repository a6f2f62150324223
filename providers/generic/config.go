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

// Object is an admin's JSON config, strictly decoded: a JSON object whose keys are all known, each
// value read by type with a message that names the field when it is wrong. Provider packages
// that build on generic (salesforce, auth0) decode their configs with it too.
type Object struct {
	fields map[string]json.RawMessage
}

// DecodeObject decodes raw as a JSON object whose keys must all be in known. hint says what a
// config must give, for the message when there is none.
func DecodeObject(raw []byte, known []string, hint string) (*Object, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return nil, &providers.ConfigError{Field: "config", Message: "config is required: " + hint}
	}
	if t[0] != '{' {
		return nil, &providers.ConfigError{Field: "config", Message: "config must be a JSON object: " + hint}
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return nil, &providers.ConfigError{Field: "config", Message: fmt.Sprintf("config is not valid JSON: %v", err), Err: err}
	}
	if dec.More() {
		return nil, &providers.ConfigError{Field: "config", Message: "config has trailing data after the JSON object"}
	}
	for k := range fields {
		if !contains(known, k) {
			return nil, &providers.ConfigError{Field: "config", Message: fmt.Sprintf("config has unknown field %q; known fields: %s", k, strings.Join(known, ", "))}
		}
	}
	return &Object{fields: fields}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Has reports whether the config gives key (a JSON null counts as not given).
func (o *Object) Has(key string) bool {
	v, ok := o.fields[key]
	return ok && string(bytes.TrimSpace(v)) != "null"
}

// String returns the trimmed string value of key, "" when it is not given.
func (o *Object) String(key string) (string, error) {
	if !o.Has(key) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o.fields[key], &s); err != nil {
		return "", &providers.ConfigError{Field: "config." + key, Message: key + " must be a string", Err: err}
	}
	return strings.TrimSpace(s), nil
}

// Bool returns the value of key, def when it is not given.
func (o *Object) Bool(key string, def bool) (bool, error) {
	if !o.Has(key) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(o.fields[key], &b); err != nil {
		return false, &providers.ConfigError{Field: "config." + key, Message: key + " must be true or false", Err: err}
	}
	return b, nil
}

// Binding returns the binding named by key ("redirect" or "post"), "" when it is not given.
func (o *Object) Binding(key string) (providers.Binding, error) {
	s, err := o.String(key)
	if err != nil || s == "" {
		return "", err
	}
	switch strings.ToLower(s) {
	case "redirect":
		return providers.BindingRedirect, nil
	case "post":
		return providers.BindingPOST, nil
	}
	return "", &providers.ConfigError{Field: "config." + key, Message: fmt.Sprintf("%s must be \"redirect\" or \"post\", not %q", key, s)}
}

// MetadataSource is where an IdP's metadata comes from: a URL to fetch, or the document itself.
type MetadataSource struct {
	URL string
	XML string
}

// Metadata reads metadata_url and metadata_xml from the config: exactly one of them.
func (o *Object) Metadata() (MetadataSource, error) {
	u, err := o.String("metadata_url")
	if err != nil {
		return MetadataSource{}, err
	}
	var x string
	if o.Has("metadata_xml") {
		if err := json.Unmarshal(o.fields["metadata_xml"], &x); err != nil {
			return MetadataSource{}, &providers.ConfigError{Field: "config.metadata_xml", Message: "metadata_xml must be a string holding the metadata document", Err: err}
		}
	}
	switch {
	case u == "" && strings.TrimSpace(x) == "":
		return MetadataSource{}, &providers.ConfigError{Field: "config.metadata_url", Message: "give the IdP's metadata_url or its metadata_xml"}
	case u != "" && x != "":
		return MetadataSource{}, &providers.ConfigError{Field: "config.metadata_url", Message: "give metadata_url or metadata_xml, not both"}
	}
	return MetadataSource{URL: u, XML: x}, nil
}

// Field is the config field the metadata came from, for error messages.
func (m MetadataSource) Field() string {
	if m.URL != "" {
		return "config.metadata_url"
	}
	return "config.metadata_xml"
}

// Load returns the metadata document: fetched when given by URL.
func (m MetadataSource) Load(ctx context.Context, env providers.Env) ([]byte, error) {
	if m.URL == "" {
		return []byte(m.XML), nil
	}
	doc, err := metadata.Fetch(ctx, env.HTTPClient, m.URL, env.AllowHTTP)
	if err != nil {
		return nil, MetadataError(m.Field(), err)
	}
	return doc, nil
}

// MetadataError turns a problem with a metadata document or URL into a *ConfigError on field;
// other errors are returned unchanged.
func MetadataError(field string, err error) error {
	var me *metadata.Error
	if errors.As(err, &me) {
		return &providers.ConfigError{Field: field, Message: me.Message, Unreachable: me.Unreachable, Err: err}
	}
	return err
}
