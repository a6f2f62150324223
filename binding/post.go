package binding

import (
	"encoding/base64"
	"html/template"
	"io"
	"strings"
)

// DecodePOST decodes the base64 value of a SAMLRequest or SAMLResponse form field
// (saml-bindings 3.5.4).
func DecodePOST(value string) ([]byte, error) {
	if value == "" {
		return nil, &Error{Reason: "no SAMLRequest or SAMLResponse form field"}
	}
	if len(value) > MaxEncoded {
		return nil, &Error{Reason: "form field too long"}
	}
	// Some senders wrap the base64 text; whitespace is not part of it.
	value = strings.Join(strings.Fields(value), "")
	out, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, &Error{Reason: "form field is not base64", Err: err}
	}
	return out, nil
}

// Form is an auto-submitting HTML form that carries a message over the POST binding.
type Form struct {
	Action     string
	Param      string // SAMLRequest or SAMLResponse
	Message    []byte // the XML, base64-encoded in the form
	RelayState string
	// Nonce is the CSP nonce of the submitting script.
	Nonce string
}

var formTemplate = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Continuing…</title>
<meta name="referrer" content="no-referrer"></head>
<body>
<form method="post" action="{{.Action}}" id="saml-post">
<input type="hidden" name="{{.Param}}" value="{{.Encoded}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">
{{- end}}
<noscript><p>JavaScript is off: press Continue to go on.</p></noscript>
<button type="submit">Continue</button>
</form>
<script nonce="{{.Nonce}}">document.getElementById("saml-post").submit();</script>
</body></html>
`))

// Write renders the form.
func (f *Form) Write(w io.Writer) error {
	return formTemplate.Execute(w, struct {
		Action, Param, Encoded, RelayState, Nonce string
	}{f.Action, f.Param, base64.StdEncoding.EncodeToString(f.Message), f.RelayState, f.Nonce})
}

// CSP is the Content-Security-Policy for a page that carries Form: only its own script runs, and
// the form may post anywhere (the target was checked against metadata before).
func (f *Form) CSP() string {
	return "default-src 'none'; script-src 'nonce-" + f.Nonce + "'; form-action *; base-uri 'none'; frame-ancestors 'none'"
}
