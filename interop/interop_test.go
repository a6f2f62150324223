// Package interop tests the broker against real third-party SAML implementations running on
// 127.0.0.1: SimpleSAMLphp 1.19 (IdP and SP), pysaml2 (SP and IdP) and Apache + mod_auth_mellon
// (SP), with xmlsec1 as an independent signature checker. Prerequisites (Debian 12):
// interop/install.sh. Run: go test ./interop/ (add -v to see the browser traces; INTEROP_KEEP=1
// keeps the configs and logs).
package interop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "broker-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerBinDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// acme is a broker with tenant "acme", the SimpleSAMLphp IdP as its upstream connection, and
// two apps (a SimpleSAMLphp SP and a pysaml2 SP) whose IdP is the broker.
type acme struct {
	*env
	brokerIdP *mdEntity // the broker's IdP metadata (/t/acme/idp/metadata)
}

func setupAcme(t *testing.T) *acme {
	t.Helper()
	return setupAcmeKeys(t, localKeys)
}

// setupAcmeWith is setupAcme with more options for the pysaml2 SP (peers/pysaml2/peer.py).
func setupAcmeWith(t *testing.T, pysaml2Args ...string) *acme {
	t.Helper()
	return setupAcmeKeys(t, localKeys, pysaml2Args...)
}

// setupAcmeKeys is setupAcmeWith with the broker's keys in kb.
func setupAcmeKeys(t *testing.T, kb keyBackend, pysaml2Args ...string) *acme {
	t.Helper()
	return setupAcmeKeysEnv(t, kb, nil, pysaml2Args...)
}

// setupAcmeKeysEnv is setupAcmeKeys with more environment for the broker (KEY=value).
func setupAcmeKeysEnv(t *testing.T, kb keyBackend, brokerEnv []string, pysaml2Args ...string) *acme {
	t.Helper()
	e := newEnvKeysEnv(t, kb, brokerEnv)
	e.startSSPIdP("ssp-idp")

	// Tenant first: its metadata URLs answer only once it exists.
	e.create("/api/v1/tenants", map[string]any{"slug": tenantSlug, "name": "Acme"})
	e.create("/api/v1/tenants/"+tenantSlug+"/connections", map[string]any{
		"provider": "generic", "name": "ssp",
		"config": map[string]any{"metadata_url": e.idpURL + "/saml2/idp/metadata.php"},
	})
	e.trustAtSSP("ssp-idp", "broker.xml", e.tenantURL("/sp/metadata"))

	idpMD := e.tenantURL("/idp/metadata")
	md, _ := e.fetchMetadata(idpMD, "broker-idp-metadata.xml")
	if len(md.IDPSSO) == 0 {
		t.Fatalf("%s has no IDPSSODescriptor", idpMD)
	}
	// The SPs fetch the broker's IdP metadata when they start.
	e.startSSPSP("ssp-sp", idpMD)
	e.startPySAML2SP("pysaml2-sp", idpMD, pysaml2Args...)
	e.create("/api/v1/tenants/"+tenantSlug+"/apps", map[string]any{"name": "ssp-app", "metadata_url": e.sspSPMetadataURL()})
	e.create("/api/v1/tenants/"+tenantSlug+"/apps", map[string]any{"name": "pysaml2-app", "metadata_url": e.pySPURL + "/metadata"})
	return &acme{env: e, brokerIdP: md}
}

// TestSSOTwoApps: one browser signs in at the SimpleSAMLphp SP (password at the upstream IdP),
// then at the pysaml2 SP without seeing a login form again (broker session); every Response the
// broker posts to an app verifies with xmlsec1 against the broker's IdP metadata certificate.
func TestSSOTwoApps(t *testing.T) { withKeyBackends(t, testSSOTwoApps) }

func testSSOTwoApps(t *testing.T, kb keyBackend) {
	a := setupAcmeKeys(t, kb)
	signs := a.signMark()
	broker := a.tenantURL("")
	sspACS := a.sspSPURL + "/module.php/saml/sp/saml2-acs.php/default-sp"
	pyACS := a.pySPURL + "/acs"

	res := a.browse("student", "studentpass",
		flowStepArg{"ssp-sp", a.sspSPURL + "/app/login", a.sspSPURL + "/app/status"},
		flowStepArg{"pysaml2-sp", a.pySPURL + "/login", a.pySPURL + "/status"},
	)
	if len(res.Steps) != 2 {
		t.Fatalf("browse.py returned %d steps, want 2", len(res.Steps))
	}

	// ---- 1. SimpleSAMLphp SP: SP -> broker IdP SSO -> upstream IdP login -> broker ACS -> SP ACS
	s1 := &res.Steps[0]
	if s1.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s1.Name, s1.Error, s1.finalPage())
	}
	s1.requireHops(t,
		hop{"GET", a.sspSPURL + "/app/login"},
		hop{"", broker + "/idp/sso"},
		hop{"GET", a.idpURL + "/saml2/idp/SSOService.php"},
		hop{"POST", a.idpURL + "/module.php/core/loginuserpass.php"},
		hop{"POST", broker + "/sp/acs"},
		hop{"POST", sspACS},
	)
	if n := len(s1.PasswordForms); n != 1 || !strings.HasPrefix(s1.PasswordForms[0].URL, a.idpURL+"/") {
		t.Errorf("step %q: want exactly one password form, at the IdP %s; got %d:\n%s", s1.Name, a.idpURL, n, s1.describe())
	}
	var sspStatus struct {
		Authenticated bool   `json:"authenticated"`
		NameID        string `json:"nameid"`
		IdP           string `json:"idp"`
	}
	if s1.Status == nil || json.Unmarshal(s1.Status.JSON, &sspStatus) != nil {
		t.Fatalf("step %q: no JSON from /app/status; last page: %s", s1.Name, s1.finalPage())
	}
	if !sspStatus.Authenticated || sspStatus.NameID == "" {
		t.Errorf("SimpleSAMLphp SP /app/status: want authenticated with a NameID, got %s\nlast page: %s",
			s1.Status.Body, s1.finalPage())
	} else if sspStatus.IdP != a.brokerIdP.EntityID {
		t.Errorf("SimpleSAMLphp SP session is from IdP %q, want the broker %q", sspStatus.IdP, a.brokerIdP.EntityID)
	} else {
		t.Logf("SimpleSAMLphp SP: authenticated, NameID %s", sspStatus.NameID)
	}

	// ---- 2. pysaml2 SP, same browser: the broker session is reused, no password form
	s2 := &res.Steps[1]
	if s2.Error != "" {
		t.Fatalf("step %q failed: %s\nlast page: %s", s2.Name, s2.Error, s2.finalPage())
	}
	s2.requireHops(t,
		hop{"GET", a.pySPURL + "/login"},
		hop{"", broker + "/idp/sso"},
		hop{"POST", pyACS},
	)
	if len(s2.PasswordForms) != 0 {
		t.Errorf("step %q: a login form was shown again (broker SSO session not reused):\n%s", s2.Name, s2.describe())
	}
	upstream := false
	for _, r := range s2.Requests {
		if strings.HasPrefix(r.URL, a.idpURL+"/module.php/core/loginuserpass.php") {
			t.Errorf("step %q: the browser was sent to the IdP's login page %s", s2.Name, r.URL)
		}
		upstream = upstream || strings.HasPrefix(r.URL, a.idpURL+"/")
	}
	if upstream {
		t.Logf("note: step %q went back to the upstream IdP (silently, no login form)", s2.Name)
	}
	var pyStatus struct {
		Authenticated bool `json:"authenticated"`
		Session       *struct {
			NameID string `json:"name_id"`
			IdP    string `json:"idp"`
		} `json:"session"`
	}
	if s2.Status == nil || json.Unmarshal(s2.Status.JSON, &pyStatus) != nil {
		t.Fatalf("step %q: no JSON from /status; last page: %s", s2.Name, s2.finalPage())
	}
	if !pyStatus.Authenticated || pyStatus.Session == nil || pyStatus.Session.NameID == "" {
		t.Errorf("pysaml2 SP /status: want authenticated with a NameID, got %s\nlast page: %s",
			s2.Status.Body, s2.finalPage())
	} else if pyStatus.Session.IdP != a.brokerIdP.EntityID {
		t.Errorf("pysaml2 SP session is from IdP %q, want the broker %q", pyStatus.Session.IdP, a.brokerIdP.EntityID)
	} else {
		t.Logf("pysaml2 SP: authenticated, NameID %s", pyStatus.Session.NameID)
	}

	// ---- 3. every Response the broker posted to an app: signature valid with the broker's
	// IdP metadata certificate (xmlsec1), and a tampered copy must fail.
	certs, err := a.brokerIdP.IDPSSO[0].signingCertsPEM()
	if err != nil {
		t.Fatalf("broker IdP metadata: %v", err)
	}
	var certFiles []string
	for i, c := range certs {
		f := filepath.Join(a.state, fmt.Sprintf("broker-idp-signing-%d.crt", i))
		if err := os.WriteFile(f, c, 0o644); err != nil {
			t.Fatal(err)
		}
		certFiles = append(certFiles, f)
	}
	dir := filepath.Join(a.state, "responses")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	perApp := map[string]int{}
	n := 0
	for _, s := range res.Steps {
		for _, m := range s.SAML {
			if m.Binding != "post" || m.Param != "SAMLResponse" || !strings.HasPrefix(m.From, broker+"/") {
				continue
			}
			n++
			switch {
			case strings.HasPrefix(m.URL, sspACS):
				perApp["ssp-sp"]++
			case strings.HasPrefix(m.URL, pyACS):
				perApp["pysaml2-sp"]++
			default:
				t.Errorf("the broker posted a SAMLResponse to %s, which is no app's ACS", m.URL)
			}
			xmlBytes, err := base64.StdEncoding.DecodeString(m.Raw)
			if err != nil {
				t.Errorf("SAMLResponse to %s is not base64: %v", m.URL, err)
				continue
			}
			f := filepath.Join(dir, fmt.Sprintf("%d-%s.xml", n, s.Name))
			if err := os.WriteFile(f, xmlBytes, 0o644); err != nil {
				t.Fatal(err)
			}
			ok, out := false, ""
			for _, c := range certFiles {
				if ok, out = a.xmlsecVerify(c, f); ok {
					break
				}
			}
			if !ok {
				t.Errorf("xmlsec1 rejects the Response the broker posted to %s:\n%s\nResponse:\n%s", m.URL, out, xmlBytes)
				continue
			}
			t.Logf("xmlsec1: Response to %s verifies with the broker's IdP certificate", m.URL)

			tampered, orig, ok := tamperNameID(xmlBytes)
			if !ok {
				t.Errorf("Response to %s has no plaintext NameID to tamper with (encrypted assertion?):\n%s", m.URL, xmlBytes)
				continue
			}
			tf := filepath.Join(dir, fmt.Sprintf("%d-%s-tampered.xml", n, s.Name))
			if err := os.WriteFile(tf, tampered, 0o644); err != nil {
				t.Fatal(err)
			}
			rejected := true
			for _, c := range certFiles {
				if bad, out := a.xmlsecVerify(c, tf); bad {
					rejected = false
					t.Errorf("xmlsec1 accepts a Response whose NameID %q was changed (signature does not cover it?): %s\n%s", orig, tf, out)
				}
			}
			if rejected {
				t.Logf("xmlsec1: the copy with a changed NameID is rejected, as it must be")
			}
		}
	}
	if perApp["ssp-sp"] == 0 || perApp["pysaml2-sp"] == 0 {
		t.Errorf("want at least one broker Response per app in the browser trace, got %v", perApp)
	}
	a.requireSignedBy(signs, tenantSlug, 2)
}

var nameIDRe = regexp.MustCompile(`(<(?:[A-Za-z_][\w.-]*:)?NameID\b[^>]*>)([^<]+)(</)`)

// tamperNameID changes the text of the first NameID element; it returns the new document and the
// original NameID.
func tamperNameID(doc []byte) ([]byte, string, bool) {
	loc := nameIDRe.FindSubmatchIndex(doc)
	if loc == nil {
		return nil, "", false
	}
	orig := string(doc[loc[4]:loc[5]])
	out := append([]byte{}, doc[:loc[4]]...)
	out = append(out, "tampered-"+orig...)
	out = append(out, doc[loc[5]:]...)
	return out, orig, true
}
