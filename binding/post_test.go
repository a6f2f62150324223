package binding_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/binding"
)

func TestDecodePOST(t *testing.T) {
	msg := []byte(authnRequestXML)
	b64 := base64.StdEncoding.EncodeToString(msg)
	var wrapped strings.Builder
	wrapped.WriteString("\r\n  ")
	for i := 0; i < len(b64); i += 76 {
		wrapped.WriteString(b64[i:min(i+76, len(b64))] + "\r\n")
	}
	wrapped.WriteString("\t ")
	tests := []struct {
		name, value string
		want        []byte
		wantErr     string
	}{
		{name: "plain", value: b64, want: msg},
		{name: "wrapped at 76 with CRLF and padding", value: wrapped.String(), want: msg},
		{name: "spaces inside", value: strings.Join(strings.SplitAfter(b64, "A"), " "), want: msg},
		{name: "empty", value: "", wantErr: "no SAMLRequest or SAMLResponse"},
		{name: "not base64", value: "<samlp:Response/>", wantErr: "not base64"},
		{name: "URL-safe base64", value: base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe}), wantErr: "not base64"},
		{name: "too long", value: strings.Repeat("A", binding.MaxEncoded+4), wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := binding.DecodePOST(tt.value)
			if tt.wantErr != "" {
				var be *binding.Error
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("DecodePOST = %q, %v; want a *binding.Error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(tt.want), string(got)); diff != "" {
				t.Errorf("DecodePOST (-want +got):\n%s", diff)
			}
		})
	}
}

var (
	formRe   = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	inputRe  = regexp.MustCompile(`<input\b([^>]*)>`)
	scriptRe = regexp.MustCompile(`(?s)<script\b([^>]*)>(.*?)</script>`)
	attrRe   = regexp.MustCompile(`([a-zA-Z-]+)="([^"]*)"`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

// parsedForm is what a browser sees of a Form page.
type parsedForm struct {
	Method, Action string
	Fields         map[string]string
	ScriptNonces   []string
}

func parseForm(t *testing.T, page string) parsedForm {
	t.Helper()
	forms := formRe.FindAllStringSubmatch(page, -1)
	if len(forms) != 1 {
		t.Fatalf("want one form, got %d:\n%s", len(forms), page)
	}
	fa := attrs(forms[0][1])
	pf := parsedForm{Method: fa["method"], Action: fa["action"], Fields: map[string]string{}}
	for _, in := range inputRe.FindAllStringSubmatch(forms[0][2], -1) {
		a := attrs(in[1])
		pf.Fields[a["name"]] = a["value"]
	}
	for _, s := range scriptRe.FindAllStringSubmatch(page, -1) {
		pf.ScriptNonces = append(pf.ScriptNonces, attrs(s[1])["nonce"])
	}
	return pf
}

func TestFormWrite(t *testing.T) {
	msg := []byte(`<samlp:Response ID="_r1">"quoted" & <b>bold</b></samlp:Response>`)
	tests := []struct {
		name       string
		form       binding.Form
		wantAction string // as a browser reads it
		wantFields map[string]string
	}{
		{
			name:       "response with RelayState",
			form:       binding.Form{Action: "https://app.example/acs?a=1&b=2", Param: "SAMLResponse", Message: msg, RelayState: "https://app.example/x?y=1&z=<2>", Nonce: "bm9uY2UtMTIz"},
			wantAction: "https://app.example/acs?a=1&b=2",
			wantFields: map[string]string{"SAMLResponse": base64.StdEncoding.EncodeToString(msg), "RelayState": "https://app.example/x?y=1&z=<2>"},
		},
		{
			name:       "request without RelayState",
			form:       binding.Form{Action: "https://idp.example/sso", Param: "SAMLRequest", Message: []byte(authnRequestXML), Nonce: "abc"},
			wantAction: "https://idp.example/sso",
			wantFields: map[string]string{"SAMLRequest": base64.StdEncoding.EncodeToString([]byte(authnRequestXML))},
		},
		{
			name:       "RelayState breaking out of the attribute",
			form:       binding.Form{Action: "https://app.example/acs", Param: "SAMLResponse", Message: msg, RelayState: `"><script>alert(1)</script>`, Nonce: "n"},
			wantAction: "https://app.example/acs",
			wantFields: map[string]string{"SAMLResponse": base64.StdEncoding.EncodeToString(msg), "RelayState": `"><script>alert(1)</script>`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.form.Write(&buf); err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			got := parseForm(t, page)
			want := parsedForm{Method: "post", Action: tt.wantAction, Fields: tt.wantFields, ScriptNonces: []string{tt.form.Nonce}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("form (-want +got):\n%s\n%s", diff, page)
			}
			if strings.Contains(page, "<script>alert") {
				t.Errorf("RelayState escaped the attribute:\n%s", page)
			}
			csp := tt.form.CSP()
			for _, part := range []string{"default-src 'none'", "script-src 'nonce-" + tt.form.Nonce + "'", "base-uri 'none'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, part) {
					t.Errorf("CSP %q lacks %q", csp, part)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP allows inline script: %q", csp)
			}
		})
	}

	t.Run("javascript: action is neutralised", func(t *testing.T) {
		var buf bytes.Buffer
		f := binding.Form{Action: "javascript:alert(document.cookie)", Param: "SAMLResponse", Message: msg, Nonce: "n"}
		if err := f.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if a := parseForm(t, buf.String()).Action; strings.HasPrefix(strings.ToLower(a), "javascript:") {
			t.Errorf("form action is %q", a)
		}
	})
}

func FuzzDecodePOST(f *testing.F) {
	f.Add(string(readTestdata(f, "ssp-idp-response.b64")))
	f.Add(base64.StdEncoding.EncodeToString([]byte(authnRequestXML)))
	f.Add(" \r\n")
	f.Add("====")
	kp, err := testKeys()
	if err != nil {
		f.Fatal(err)
	}
	cert := pemCert(f, "ssp-idp-cert.pem")
	f.Fuzz(func(t *testing.T, v string) {
		b, err := binding.DecodePOST(v)
		if err != nil {
			var be *binding.Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v (%T) is not a *binding.Error", err, err)
			}
			return
		}
		// What the SSO code does next: parse and verify. Neither may panic.
		doc := etree.NewDocument()
		if doc.ReadFromBytes(b) != nil || doc.Root() == nil {
			return
		}
		_, _ = binding.VerifyEnveloped(doc.Root(), []*x509.Certificate{cert, kp[0].cert}, false)
	})
}
