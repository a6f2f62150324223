package binding_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/keys"
)

const (
	soap11 = "http://schemas.xmlsoap.org/soap/envelope/"
	samlp  = "urn:oasis:names:tc:SAML:2.0:protocol"
	samlA  = "urn:oasis:names:tc:SAML:2.0:assertion"
	dsigNS = "http://www.w3.org/2000/09/xmldsig#"

	logoutRequestXML = `<samlp:LogoutRequest xmlns:samlp="` + samlp + `" xmlns:saml="` + samlA + `" ID="_lr1" Version="2.0" IssueInstant="2026-01-02T03:04:05Z" Destination="https://sp.example/slo/soap"><saml:Issuer>https://broker.example/t/acme/idp</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">alice</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>`

	logoutResponseXML = `<samlp:LogoutResponse xmlns:samlp="` + samlp + `" xmlns:saml="` + samlA + `" ID="_resp1" InResponseTo="_lr1" Version="2.0" IssueInstant="2026-01-02T03:04:06Z"><saml:Issuer>https://sp.example</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`

	// evilRequestXML is an unsigned LogoutRequest for another session, the payload of wrapping attempts.
	evilRequestXML = `<samlp:LogoutRequest xmlns:samlp="` + samlp + `" xmlns:saml="` + samlA + `" ID="_evil" Version="2.0" IssueInstant="2026-01-02T03:04:05Z"><saml:Issuer>https://broker.example/t/acme/idp</saml:Issuer><saml:NameID>bob</saml:NameID><samlp:SessionIndex>_s2</samlp:SessionIndex></samlp:LogoutRequest>`
)

// soapKeys makes the broker's signing key the way the broker does (keys.SelfSignedCertificate),
// once per run, and a second pair that did not sign.
var soapKeys = sync.OnceValues(func() ([2]keyPair, error) {
	var out [2]keyPair
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return out, err
		}
		c, err := keys.SelfSignedCertificate(k, fmt.Sprintf("soap test %d", i), certNow)
		if err != nil {
			return out, err
		}
		out[i] = keyPair{k, c}
	}
	return out, nil
})

func soapPeers(t testing.TB) (signer, other keyPair) {
	t.Helper()
	kp, err := soapKeys()
	if err != nil {
		t.Fatal(err)
	}
	return kp[0], kp[1]
}

// soapEnv wraps body (and header, when given) in a SOAP 1.1 envelope by hand.
func soapEnv(header, body string) string {
	h := ""
	if header != "" {
		h = "<soap-env:Header>" + header + "</soap-env:Header>"
	}
	return `<soap-env:Envelope xmlns:soap-env="` + soap11 + `">` + h + "<soap-env:Body>" + body + "</soap-env:Body></soap-env:Envelope>"
}

func mustReplace(t testing.TB, s, old, new string, n int) string {
	t.Helper()
	out := strings.Replace(s, old, new, n)
	if out == s {
		t.Fatalf("%q not found: the test would prove nothing", old)
	}
	return out
}

// soapVariant is one way a peer may wrap the same signed message.
type soapVariant struct {
	name     string
	envelope string
}

// soapVariants wraps the signed message sm the ways real SOAP stacks do, and worse: every one
// carries the signed bytes unchanged, so the signature must hold in all of them.
func soapVariants(t testing.TB, sm string) []soapVariant {
	t.Helper()
	// The message with every namespace declaration it uses moved up to the Envelope.
	hoisted := mustReplace(t, sm, ` xmlns:samlp="`+samlp+`"`, "", 1)
	hoisted = mustReplace(t, hoisted, ` xmlns:saml="`+samlA+`"`, "", -1)
	hoisted = mustReplace(t, hoisted, ` xmlns:ds="`+dsigNS+`"`, "", -1)
	return []soapVariant{
		{"EncodeSOAP", string(binding.EncodeSOAP([]byte(sm)))},
		{"EncodeSOAP of a message with an XML declaration", string(binding.EncodeSOAP([]byte("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + sm)))},
		{"pysaml2: ns0 prefix, XML declaration", "<?xml version='1.0' encoding='UTF-8'?>\n<ns0:Envelope xmlns:ns0=\"" + soap11 + "\" ><ns0:Body>" + sm + "</ns0:Body></ns0:Envelope>"},
		{"SOAP-ENV prefix", `<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + soap11 + `"><SOAP-ENV:Body>` + sm + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`},
		{"SOAP as the default namespace", `<Envelope xmlns="` + soap11 + `"><Body>` + sm + `</Body></Envelope>`},
		{"samlp prefix bound to the SOAP namespace", `<samlp:Envelope xmlns:samlp="` + soap11 + `"><samlp:Body>` + sm + `</samlp:Body></samlp:Envelope>`},
		{
			"extra and conflicting namespaces, a header block, comments, white space",
			`<S:Envelope xmlns:S="` + soap11 + `" xmlns="urn:example:default" xmlns:ds="urn:example:not-xmldsig" xmlns:saml="urn:example:not-saml" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" S:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
  <!-- relayed -->
  <S:Header><h:Trace xmlns:h="urn:example:trace" S:mustUnderstand="0" S:actor="http://schemas.xmlsoap.org/soap/actor/next">hop 1</h:Trace></S:Header>
  <S:Body xmlns:x="urn:example:x" xml:lang="en">
    ` + sm + `
  </S:Body>
</S:Envelope>
`,
		},
		{"namespace declarations only on the Envelope", `<soap-env:Envelope xmlns:soap-env="` + soap11 + `" xmlns:samlp="` + samlp + `" xmlns:saml="` + samlA + `" xmlns:ds="` + dsigNS + `"><soap-env:Body>` + hoisted + `</soap-env:Body></soap-env:Envelope>`},
	}
}

// signedRequest is the LogoutRequest signed by the broker's key, as the bytes it sends.
func signedRequest(t testing.TB) string {
	signer, _ := soapPeers(t)
	return string(signed(t, logoutRequestXML, signer, ""))
}

func TestEncodeSOAP(t *testing.T) {
	sm := signedRequest(t)
	const start = `<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Body>`
	const end = `</soap-env:Body></soap-env:Envelope>`
	tests := []struct {
		name, msg, want string
	}{
		{"bare message", sm, start + sm + end},
		{"XML declaration", `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + sm, start + sm + end},
		{"single-quoted declaration, CRLF", "<?xml version='1.0'?>\r\n" + sm, start + sm + end},
		{"byte order mark and declaration", "\xef\xbb\xbf<?xml version=\"1.0\"?>" + sm, start + sm + end},
		{"a processing instruction that is no declaration is kept", `<?xml-stylesheet href="x"?>` + sm, start + `<?xml-stylesheet href="x"?>` + sm + end},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(binding.EncodeSOAP([]byte(tt.msg)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EncodeSOAP (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSOAPSignatureSurvives: a message signed with exclusive c14n verifies after DecodeSOAP takes
// it out of any envelope, whatever prefixes and extra namespaces the envelope uses; a tampered
// copy does not. pysaml2 fails here: it re-serialises the Body with ElementTree (samlp: becomes
// ns0:) before verifying.
func TestSOAPSignatureSurvives(t *testing.T) {
	signer, other := soapPeers(t)
	sm := signedRequest(t)
	certs := []*x509.Certificate{signer.cert}
	for _, v := range soapVariants(t, sm) {
		t.Run(v.name, func(t *testing.T) {
			el, err := binding.DecodeSOAP([]byte(v.envelope))
			if err != nil {
				t.Fatalf("DecodeSOAP: %v\n%s", err, v.envelope)
			}
			if el.Parent() != nil || el.Tag != "LogoutRequest" || el.NamespaceURI() != samlp {
				t.Fatalf("DecodeSOAP returned %s in %q (parent %v)", el.Tag, el.NamespaceURI(), el.Parent())
			}
			verified, err := binding.VerifyEnveloped(el, certs, false)
			if err != nil {
				t.Fatalf("VerifyEnveloped: %v\ndetached: %s", err, serialize(t, el))
			}
			got := []string{verified.FindElement("./Issuer").Text(), verified.FindElement("./NameID").Text(), verified.FindElement("./SessionIndex").Text()}
			if diff := cmp.Diff([]string{"https://broker.example/t/acme/idp", "alice", "_s1"}, got); diff != "" {
				t.Errorf("verified message (-want +got):\n%s", diff)
			}
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{other.cert}, false); !errors.Is(err, binding.ErrBadSignature) {
				t.Errorf("another key's certificate: %v", err)
			}

			tampered := mustReplace(t, v.envelope, ">_s1<", ">_s9<", 1)
			el, err = binding.DecodeSOAP([]byte(tampered))
			if err != nil {
				t.Fatalf("DecodeSOAP of the tampered envelope: %v", err)
			}
			if _, err := binding.VerifyEnveloped(el, certs, false); !errors.Is(err, binding.ErrBadSignature) {
				t.Errorf("tampered SessionIndex: VerifyEnveloped = %v; want ErrBadSignature", err)
			}
		})
	}

	// Controls: the tests above would notice a decoder that re-serialises or copies naively.
	t.Run("control: prefixes rewritten as ElementTree does", func(t *testing.T) {
		rewritten := mustReplace(t, sm, "samlp:", "ns1:", -1)
		rewritten = mustReplace(t, rewritten, "xmlns:samlp=", "xmlns:ns1=", 1)
		el, err := binding.DecodeSOAP(binding.EncodeSOAP([]byte(rewritten)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := binding.VerifyEnveloped(el, certs, false); !errors.Is(err, binding.ErrBadSignature) {
			t.Errorf("VerifyEnveloped = %v; want ErrBadSignature", err)
		}
	})
	t.Run("control: a plain copy of a message whose namespaces are on the Envelope", func(t *testing.T) {
		vs := soapVariants(t, sm)
		doc := etree.NewDocument()
		if err := doc.ReadFromString(vs[len(vs)-1].envelope); err != nil {
			t.Fatal(err)
		}
		plain := doc.FindElement("//LogoutRequest").Copy()
		if _, err := binding.VerifyEnveloped(plain, certs, false); err == nil {
			t.Error("a copy without the in-scope namespaces verified; the detach test proves nothing")
		}
	})
}

// TestDecodeSOAPPysaml2 reads a real pysaml2 envelope around a LogoutRequest signed by xmlsec1.
func TestDecodeSOAPPysaml2(t *testing.T) {
	env := readTestdata(t, "pysaml2-soap-logoutrequest.xml")
	cert := pemCert(t, "pysaml2-soap-cert.pem")
	_, other := soapPeers(t)
	el, err := binding.DecodeSOAP(env)
	if err != nil {
		t.Fatal(err)
	}
	verified, err := binding.VerifyEnveloped(el, []*x509.Certificate{cert}, false)
	if err != nil {
		t.Fatalf("VerifyEnveloped: %v", err)
	}
	got := []string{verified.SelectAttrValue("ID", ""), verified.FindElement("./Issuer").Text(), verified.FindElement("./NameID").Text(), verified.FindElement("./SessionIndex").Text()}
	want := []string{"_5e2c0a1f9b7d4e63a8f1", "http://127.0.0.1:8084/metadata", "alice", "id-7fQm2xK9pL0aZ3vR"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("verified message (-want +got):\n%s", diff)
	}
	if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{other.cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("another certificate: %v", err)
	}
	el, err = binding.DecodeSOAP([]byte(mustReplace(t, string(env), ">alice<", ">mallory<", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("tampered NameID: %v", err)
	}
}

// TestSOAPXmlsec1 checks with xmlsec1, an independent implementation, that the whole envelope of
// every variant carries a valid signature and a tampered one does not.
func TestSOAPXmlsec1(t *testing.T) {
	xmlsec := needTool(t, "xmlsec1")
	signer, _ := soapPeers(t)
	dir := t.TempDir()
	certPath := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: signer.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pysaml2Cert := filepath.Join(dir, "pysaml2.pem")
	if err := os.WriteFile(pysaml2Cert, readTestdata(t, "pysaml2-soap-cert.pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	type variant struct {
		name, envelope, cert, tamperFrom, tamperTo string
	}
	var vs []variant
	for _, v := range soapVariants(t, signedRequest(t)) {
		vs = append(vs, variant{v.name, v.envelope, certPath, ">_s1<", ">_s9<"})
	}
	vs = append(vs, variant{"testdata pysaml2 envelope", string(readTestdata(t, "pysaml2-soap-logoutrequest.xml")), pysaml2Cert, ">alice<", ">mallory<"})
	for _, v := range vs {
		for _, tampered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tampered=%v", v.name, tampered), func(t *testing.T) {
				d := v.envelope
				if tampered {
					d = mustReplace(t, d, v.tamperFrom, v.tamperTo, 1)
				}
				f := filepath.Join(dir, "envelope.xml")
				if err := os.WriteFile(f, []byte(d), 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(xmlsec, "--verify", "--pubkey-cert-pem", v.cert,
					"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest", f).CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("xmlsec1: %v\n%s", err, out)
				}
				if (err == nil) == tampered {
					t.Errorf("xmlsec1 ok=%v; want %v\n%s\n%s", err == nil, !tampered, out, d)
				}
			})
		}
	}
}

func TestDecodeSOAPRefusals(t *testing.T) {
	sm := signedRequest(t)
	// The signed message wrapped inside an unsigned one with the same ID: the classic wrapping.
	sameID := mustReplace(t, evilRequestXML, `ID="_evil"`, `ID="_lr1"`, 1)
	sameID = mustReplace(t, sameID, "</samlp:LogoutRequest>", "<samlp:Extensions>"+sm+"</samlp:Extensions></samlp:LogoutRequest>", 1)
	fault := `<soap-env:Fault><faultcode>soap-env:Server</faultcode><faultstring>x</faultstring></soap-env:Fault>`
	tests := []struct {
		name    string
		doc     string
		wantErr error // also errors.Is, when set
		wantMsg string
	}{
		{name: "empty", doc: "", wantMsg: "SOAP message"},
		{name: "not XML", doc: "logout please", wantMsg: "SOAP message"},
		{name: "unclosed Body", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Body>` + sm + `</soap-env:Envelope>`, wantMsg: "not well-formed"},
		{name: "a name encoding/xml misreads", doc: soapEnv("", `<a:b:c xmlns:a="urn:x"/>`), wantMsg: "parsers may read differently"},
		{name: "too long", doc: soapEnv("", sm+strings.Repeat(" ", binding.MaxEncoded)), wantMsg: fmt.Sprint(binding.MaxEncoded)},
		{name: "bare LogoutRequest without an envelope", doc: sm, wantMsg: "not a SOAP Envelope"},
		{name: "SOAP 1.2 envelope", doc: `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` + sm + `</env:Body></env:Envelope>`, wantErr: binding.ErrSOAPVersion, wantMsg: "SOAP 1.2"},
		{name: "Envelope in another namespace", doc: `<e:Envelope xmlns:e="urn:example:soap"><e:Body>` + sm + `</e:Body></e:Envelope>`, wantErr: binding.ErrSOAPVersion, wantMsg: "not a SOAP 1.1 Envelope"},
		{name: "Envelope with an undeclared prefix", doc: `<soap-env:Envelope><soap-env:Body>` + sm + `</soap-env:Body></soap-env:Envelope>`, wantErr: binding.ErrSOAPVersion, wantMsg: "not a SOAP 1.1 Envelope"},
		{name: "no Body", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Header/></soap-env:Envelope>`, wantMsg: "0 Body elements"},
		{name: "two Body elements", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Body>` + sm + `</soap-env:Body><soap-env:Body>` + evilRequestXML + `</soap-env:Body></soap-env:Envelope>`, wantMsg: "2 Body elements"},
		{name: "two messages in the Body", doc: soapEnv("", sm+evilRequestXML), wantMsg: "holds 2 elements"},
		{name: "unsigned message before the signed one in the Body", doc: soapEnv("", evilRequestXML+sm), wantMsg: "holds 2 elements"},
		{name: "a Fault beside a message", doc: soapEnv("", sm+fault), wantMsg: "holds 2 elements"},
		{name: "empty Body", doc: soapEnv("", " "), wantMsg: "holds 0 elements"},
		{name: "element of another namespace in the Body", doc: soapEnv("", `<x:Ping xmlns:x="urn:example:ping"/>`), wantMsg: "not a SAML protocol message"},
		{name: "unqualified LogoutRequest in the Body", doc: soapEnv("", `<LogoutRequest ID="_x"/>`), wantMsg: "not a SAML protocol message"},
		{name: "SAML Assertion in the Body", doc: soapEnv("", `<saml:Assertion xmlns:saml="`+samlA+`" ID="_a"/>`), wantMsg: "not a SAML protocol message"},
		{name: "Header after the Body", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Body>` + sm + `</soap-env:Body><soap-env:Header/></soap-env:Envelope>`, wantMsg: "optional Header and then the Body"},
		{name: "two Headers", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Header/><soap-env:Header/><soap-env:Body>` + sm + `</soap-env:Body></soap-env:Envelope>`, wantMsg: "optional Header and then the Body"},
		{name: "unsigned LogoutRequest after the Body (wrapping)", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `"><soap-env:Body>` + sm + `</soap-env:Body>` + evilRequestXML + `</soap-env:Envelope>`, wantMsg: "optional Header and then the Body"},
		{name: "unsigned LogoutRequest in the Header (wrapping)", doc: soapEnv(evilRequestXML, sm), wantMsg: "Header holds a SAML element"},
		{name: "signed one in the Header, unsigned one in the Body (wrapping)", doc: soapEnv(sm, evilRequestXML), wantMsg: "Header holds a SAML element"},
		{name: "SAML element deep in a header block", doc: soapEnv(`<h:Wrap xmlns:h="urn:example:h"><h:In>`+evilRequestXML+`</h:In></h:Wrap>`, sm), wantMsg: "Header holds a SAML element"},
		{name: "unsigned wrapper with the signed message's ID (wrapping)", doc: soapEnv("", sameID), wantMsg: `ID "_lr1" appears 2 times`},
		{name: "the message's ID on a header block", doc: soapEnv(`<h:Ref xmlns:h="urn:example:h" ID="_lr1"/>`, sm), wantMsg: `ID "_lr1" appears 2 times`},
		{name: "mustUnderstand=1 header", doc: soapEnv(`<h:Tx xmlns:h="urn:example:tx" soap-env:mustUnderstand="1">t</h:Tx>`, sm), wantErr: binding.ErrSOAPMustUnderstand, wantMsg: "mustUnderstand"},
		{name: "mustUnderstand=true header", doc: soapEnv(`<h:Tx xmlns:h="urn:example:tx" soap-env:mustUnderstand=" true ">t</h:Tx>`, sm), wantErr: binding.ErrSOAPMustUnderstand, wantMsg: "mustUnderstand"},
		{name: "mustUnderstand under another prefix", doc: soapEnv(`<h:Tx xmlns:h="urn:example:tx" xmlns:e="`+soap11+`" e:mustUnderstand="1"/>`, sm), wantErr: binding.ErrSOAPMustUnderstand, wantMsg: "<h:Tx>"},
		{name: "text in the Body", doc: soapEnv("", "logout "+sm), wantMsg: "Body has text"},
		{name: "text in the Envelope", doc: `<soap-env:Envelope xmlns:soap-env="` + soap11 + `">x<soap-env:Body>` + sm + `</soap-env:Body></soap-env:Envelope>`, wantMsg: "Envelope has text"},
		{name: "text in the Header", doc: soapEnv("x", sm), wantMsg: "Header has text"},
		{name: "document type declaration", doc: `<!DOCTYPE soap-env:Envelope [<!ELEMENT soap-env:Envelope ANY>]>` + soapEnv("", sm), wantMsg: "document type declaration"},
		{name: "processing instruction in the Body", doc: soapEnv("", `<?php echo 1 ?>`+sm), wantMsg: "processing instruction"},
		{name: "processing instruction in the message", doc: soapEnv("", mustReplace(t, sm, "<saml:Issuer", "<?x y?><saml:Issuer", 1)), wantMsg: "processing instruction"},
		{name: "XML declaration not first", doc: "<!-- c --><?xml version=\"1.0\"?>" + soapEnv("", sm), wantMsg: "SOAP message"},
		{name: "ID given twice on the message", doc: soapEnv("", mustReplace(t, sm, `ID="_lr1"`, `ID="_evil" ID="_lr1"`, 1)), wantMsg: "attribute ID appears twice"},
		{name: "one attribute through two prefixes", doc: soapEnv(`<h:A xmlns:h="urn:example:h" xmlns:p="urn:example:p" xmlns:q="urn:example:p" p:x="1" q:x="2"/>`, sm), wantMsg: "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := binding.DecodeSOAP([]byte(tt.doc))
			var be *binding.Error
			if !errors.As(err, &be) {
				t.Fatalf("DecodeSOAP = %v, %v; want a *binding.Error", el, err)
			}
			if el != nil {
				t.Error("refused, but returned an element too")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v; want errors.Is %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// TestSOAPWrappingInsideMessage: wrapping inside the one Body element passes the envelope checks
// and is VerifyEnveloped's to refuse.
func TestSOAPWrappingInsideMessage(t *testing.T) {
	signer, _ := soapPeers(t)
	sm := signedRequest(t)
	sig := signatureOf(t, parseXML(t, []byte(sm)))
	tests := []struct {
		name    string
		build   func(t *testing.T) string
		wantErr error
	}{
		{"unsigned message wraps the signed one", func(t *testing.T) string {
			return mustReplace(t, evilRequestXML, "</samlp:LogoutRequest>", "<samlp:Extensions>"+sm+"</samlp:Extensions></samlp:LogoutRequest>", 1)
		}, binding.ErrNoSignature},
		{"signature moved to the unsigned wrapper", func(t *testing.T) string {
			evil := parseXML(t, []byte(evilRequestXML))
			evil.InsertChildAt(1, sig.Copy())
			ext := evil.CreateElement("samlp:Extensions")
			orig := parseXML(t, []byte(sm))
			orig.RemoveChild(signatureOf(t, orig))
			ext.AddChild(orig)
			return string(serialize(t, evil))
		}, binding.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := binding.DecodeSOAP(binding.EncodeSOAP([]byte(tt.build(t))))
			if err != nil {
				t.Fatalf("DecodeSOAP: %v", err)
			}
			if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{signer.cert}, false); !errors.Is(err, tt.wantErr) {
				t.Errorf("VerifyEnveloped = %v; want errors.Is %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeSOAPSizeLimit(t *testing.T) {
	env := string(binding.EncodeSOAP([]byte(signedRequest(t))))
	pad := func(n int) []byte {
		return []byte(strings.Replace(env, "</soap-env:Body>", strings.Repeat(" ", n)+"</soap-env:Body>", 1))
	}
	atLimit := pad(binding.MaxEncoded - len(env))
	if len(atLimit) != binding.MaxEncoded {
		t.Fatalf("padded to %d bytes", len(atLimit))
	}
	if _, err := binding.DecodeSOAP(atLimit); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	_, err := binding.DecodeSOAP(pad(binding.MaxEncoded - len(env) + 1))
	var be *binding.Error
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("one byte over: %v", err)
	}
}

func TestDecodeSOAPFault(t *testing.T) {
	tests := []struct {
		name, doc string
		want      binding.SOAPFault
	}{
		{"Client", soapEnv("", `<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>bad request</faultstring></soap-env:Fault>`), binding.SOAPFault{Code: "Client", String: "bad request"}},
		{
			"SOAP-ENV prefix, refined code, actor and detail",
			`<SOAP-ENV:Envelope xmlns:SOAP-ENV="` + soap11 + `"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode> SOAP-ENV:Server.Busy </faultcode><faultstring>try later</faultstring><faultactor>https://sp.example</faultactor><detail><x:Why xmlns:x="urn:example:x">load</x:Why></detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
			binding.SOAPFault{Code: "Server.Busy", String: "try later"},
		},
		{"code in another namespace", soapEnv("", `<soap-env:Fault xmlns:lasso="http://www.entrouvert.org/namespaces/lasso/0.0"><faultcode>lasso:UnknownPrincipal</faultcode><faultstring>x</faultstring></soap-env:Fault>`), binding.SOAPFault{Code: "lasso:UnknownPrincipal", String: "x"}},
		{"code with an undeclared prefix", soapEnv("", `<soap-env:Fault><faultcode>env:Client</faultcode><faultstring>x</faultstring></soap-env:Fault>`), binding.SOAPFault{Code: "env:Client", String: "x"}},
		{"SOAP as the default namespace", `<Envelope xmlns="` + soap11 + `"><Body><Fault><faultcode xmlns="">Client</faultcode><faultstring xmlns="">no</faultstring></Fault></Body></Envelope>`, binding.SOAPFault{Code: "Client", String: "no"}},
		{"no faultstring", soapEnv("", `<soap-env:Fault><faultcode>soap-env:Server</faultcode></soap-env:Fault>`), binding.SOAPFault{Code: "Server"}},
		{"line breaks, a bidi override, a zero-width space", soapEnv("", "<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>line one\n\tline two \u202eevil\u200b!</faultstring></soap-env:Fault>"), binding.SOAPFault{Code: "Client", String: "line one line two evil!"}},
		{"long faultstring", soapEnv("", `<soap-env:Fault><faultcode>soap-env:Server</faultcode><faultstring>`+strings.Repeat("x", 5000)+`</faultstring></soap-env:Fault>`), binding.SOAPFault{Code: "Server", String: strings.Repeat("x", 1024)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := binding.DecodeSOAP([]byte(tt.doc))
			var f *binding.SOAPFault
			if !errors.As(err, &f) {
				t.Fatalf("DecodeSOAP = %v, %v; want a *SOAPFault", el, err)
			}
			if diff := cmp.Diff(tt.want, *f); diff != "" {
				t.Errorf("fault (-want +got):\n%s", diff)
			}
			if want := "SOAP fault " + tt.want.Code; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestWriteSOAP(t *testing.T) {
	signer, _ := soapPeers(t)
	msg := signed(t, logoutResponseXML, signer, "")
	rec := httptest.NewRecorder()
	binding.WriteSOAP(rec, msg)
	res := rec.Result()
	wantHeaders := map[string]string{"Content-Type": "text/xml; charset=utf-8", "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache", "Content-Length": fmt.Sprint(rec.Body.Len())}
	gotHeaders := map[string]string{}
	for k := range wantHeaders {
		gotHeaders[k] = res.Header.Get(k)
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" || res.StatusCode != http.StatusOK {
		t.Errorf("status %d; headers (-want +got):\n%s", res.StatusCode, diff)
	}
	if !bytes.Equal(rec.Body.Bytes(), binding.EncodeSOAP(msg)) {
		t.Errorf("body is not EncodeSOAP(msg):\n%s", rec.Body)
	}
	el, err := binding.DecodeSOAP(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{signer.cert}, false); err != nil {
		t.Error(err)
	}
}

func TestWriteSOAPFault(t *testing.T) {
	tests := []struct {
		name, code, text string
		want             binding.SOAPFault
	}{
		{"Client, text to escape", binding.SOAPFaultClient, `bad <request> & "quotes" ]]>`, binding.SOAPFault{Code: "Client", String: `bad <request> & "quotes" ]]>`}},
		{"prefixed code", "soap-env:MustUnderstand", "x", binding.SOAPFault{Code: "MustUnderstand", String: "x"}},
		{"refined code", "Client.Authentication", "x", binding.SOAPFault{Code: "Client.Authentication", String: "x"}},
		{"empty code", "", "x", binding.SOAPFault{Code: "Server", String: "x"}},
		{"code that would break the XML", `Client</faultcode><faultcode>Server`, "x", binding.SOAPFault{Code: "Server", String: "x"}},
		{"code with a foreign prefix", "x:Client", "x", binding.SOAPFault{Code: "Server", String: "x"}},
		{"text with a character XML cannot hold", binding.SOAPFaultServer, "nul\x00here", binding.SOAPFault{Code: "Server", String: "nulhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			binding.WriteSOAPFault(rec, tt.code, tt.text)
			if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "text/xml; charset=utf-8" || rec.Header().Get("Pragma") != "no-cache" {
				t.Errorf("status %d, headers %v", rec.Code, rec.Header())
			}
			_, err := binding.DecodeSOAP(rec.Body.Bytes())
			var f *binding.SOAPFault
			if !errors.As(err, &f) {
				t.Fatalf("DecodeSOAP of the fault = %v\n%s", err, rec.Body)
			}
			if diff := cmp.Diff(tt.want, *f); diff != "" {
				t.Errorf("fault (-want +got):\n%s\n%s", diff, rec.Body)
			}
		})
	}
}

func TestSOAPFaultCode(t *testing.T) {
	decodeErr := func(doc string) error {
		_, err := binding.DecodeSOAP([]byte(doc))
		return err
	}
	sm := signedRequest(t)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"SOAP 1.2", decodeErr(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`), binding.SOAPFaultVersionMismatch},
		{"mustUnderstand", decodeErr(soapEnv(`<h:T xmlns:h="urn:h" soap-env:mustUnderstand="1"/>`, sm)), binding.SOAPFaultMustUnderstand},
		{"wrapped mustUnderstand", fmt.Errorf("slo: %w", decodeErr(soapEnv(`<h:T xmlns:h="urn:h" soap-env:mustUnderstand="1"/>`, sm))), binding.SOAPFaultMustUnderstand},
		{"two Bodies", decodeErr(soapEnv("", sm+sm)), binding.SOAPFaultClient},
		{"not XML", decodeErr("x"), binding.SOAPFaultClient},
		{"anything else", errors.New("database is down"), binding.SOAPFaultServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("no error to classify")
			}
			if got := binding.SOAPFaultCode(tt.err); got != tt.want {
				t.Errorf("SOAPFaultCode(%v) = %q; want %q", tt.err, got, tt.want)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadSOAPRequest(t *testing.T) {
	env := string(binding.EncodeSOAP([]byte(signedRequest(t))))
	big := soapEnv("", strings.Repeat(" ", binding.MaxEncoded)+signedRequest(t))
	tests := []struct {
		name        string
		method      string
		headers     map[string]string
		body        string
		chunked     bool // unknown Content-Length
		broken      bool // the body fails while read
		wantNotSOAP bool
		wantMsg     string // "" = accepted
	}{
		{name: "text/xml", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, body: env},
		{name: "text/xml with charset", method: "POST", headers: map[string]string{"Content-Type": "text/xml; charset=utf-8"}, body: env},
		{name: "odd case and quoted charset", method: "POST", headers: map[string]string{"Content-Type": `Text/XML; Charset="UTF-8"`}, body: env},
		{name: "another charset", method: "POST", headers: map[string]string{"Content-Type": "text/xml; charset=iso-8859-1"}, body: env},
		{name: "broken parameter", method: "POST", headers: map[string]string{"Content-Type": "text/xml; charset"}, body: env},
		{name: "application/soap+xml (pysaml2)", method: "POST", headers: map[string]string{"Content-Type": "application/soap+xml"}, body: env},
		{name: "application/soap+xml with action", method: "POST", headers: map[string]string{"Content-Type": `application/soap+xml; charset=utf-8; action="http://www.oasis-open.org/committees/security"`}, body: env},
		{name: "form content type with SOAPAction", method: "POST", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "SOAPAction": `"http://www.oasis-open.org/committees/security"`}, body: env},
		{name: "only an empty SOAPAction", method: "POST", headers: map[string]string{"soapaction": ""}, body: env},
		{name: "chunked", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, body: env, chunked: true},
		{name: "GET", method: "GET", headers: map[string]string{"Content-Type": "text/xml"}, wantNotSOAP: true, wantMsg: "must be a POST, not GET"},
		{name: "PUT", method: "PUT", headers: map[string]string{"Content-Type": "text/xml"}, body: env, wantNotSOAP: true, wantMsg: "must be a POST"},
		{name: "application/xml", method: "POST", headers: map[string]string{"Content-Type": "application/xml"}, body: env, wantNotSOAP: true, wantMsg: `"application/xml"`},
		{name: "POST-binding form", method: "POST", headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "SAMLRequest=x", wantNotSOAP: true, wantMsg: "not a SOAP request"},
		{name: "text/html", method: "POST", headers: map[string]string{"Content-Type": "text/html"}, body: env, wantNotSOAP: true, wantMsg: "not a SOAP request"},
		{name: "no content type, no SOAPAction", method: "POST", body: env, wantNotSOAP: true, wantMsg: "not a SOAP request"},
		{name: "too long", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, body: big, wantMsg: "larger than"},
		{name: "too long, chunked", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, body: big, chunked: true, wantMsg: "larger than"},
		{name: "body read fails", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, broken: true, wantMsg: "could not be read"},
		{name: "envelope refused", method: "POST", headers: map[string]string{"Content-Type": "text/xml"}, body: soapEnv("", signedRequest(t)+evilRequestXML), wantMsg: "holds 2 elements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.broken {
				body = failingReader{}
			}
			r := httptest.NewRequest(tt.method, "/t/acme/idp/slo/soap", body)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if tt.chunked || tt.broken {
				r.ContentLength = -1
			}
			el, err := binding.ReadSOAPRequest(r)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ReadSOAPRequest: %v", err)
				}
				if el.Tag != "LogoutRequest" {
					t.Errorf("got %s", el.Tag)
				}
				return
			}
			var be *binding.Error
			if !errors.As(err, &be) || el != nil {
				t.Fatalf("ReadSOAPRequest = %v, %v; want a *binding.Error", el, err)
			}
			if errors.Is(err, binding.ErrNotSOAP) != tt.wantNotSOAP {
				t.Errorf("errors.Is(%v, ErrNotSOAP) = %v", err, !tt.wantNotSOAP)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

// seenRequest is what a test SOAP endpoint received.
type seenRequest struct {
	Method, ContentType, SOAPAction, CacheControl, Pragma string
	Body                                                  string
}

// TestSOAPRoundTrip: SOAPClient.Call → a server that uses ReadSOAPRequest, VerifyEnveloped and
// WriteSOAP or WriteSOAPFault → the answer back at the client.
func TestSOAPRoundTrip(t *testing.T) {
	signer, _ := soapPeers(t)
	certs := []*x509.Certificate{signer.cert}
	response := signed(t, logoutResponseXML, signer, "")
	seen := make(chan seenRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var raw bytes.Buffer
		r.Body = io.NopCloser(io.TeeReader(r.Body, &raw))
		el, err := binding.ReadSOAPRequest(r)
		seen <- seenRequest{r.Method, r.Header.Get("Content-Type"), r.Header.Get("SOAPAction"), r.Header.Get("Cache-Control"), r.Header.Get("Pragma"), raw.String()}
		if err != nil {
			binding.WriteSOAPFault(w, binding.SOAPFaultCode(err), "malformed SOAP request")
			return
		}
		verified, err := binding.VerifyEnveloped(el, certs, false)
		if err != nil {
			// A real endpoint answers a LogoutResponse with a Requester status; a fault is enough here.
			binding.WriteSOAPFault(w, binding.SOAPFaultClient, "signature: "+err.Error())
			return
		}
		if verified.FindElement("./SessionIndex").Text() != "_s1" {
			binding.WriteSOAPFault(w, binding.SOAPFaultServer, "wrong session")
			return
		}
		binding.WriteSOAP(w, response)
	}))
	defer srv.Close()
	client := &binding.SOAPClient{HTTP: srv.Client()}

	tests := []struct {
		name      string
		msg       string
		wantFault *binding.SOAPFault
	}{
		{name: "signed LogoutRequest", msg: signedRequest(t)},
		{name: "with an XML declaration", msg: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + signedRequest(t)},
		{name: "unsigned LogoutRequest", msg: logoutRequestXML, wantFault: &binding.SOAPFault{Code: "Client", String: "signature: message is not signed"}},
		{name: "two messages", msg: signedRequest(t) + evilRequestXML, wantFault: &binding.SOAPFault{Code: "Client", String: "malformed SOAP request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			el, err := client.Call(ctx, srv.URL+"/slo/soap", []byte(tt.msg))
			req := <-seen
			want := seenRequest{"POST", "text/xml; charset=utf-8", `"http://www.oasis-open.org/committees/security"`, "no-cache, no-store", "no-cache", string(binding.EncodeSOAP([]byte(tt.msg)))}
			if diff := cmp.Diff(want, req); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if tt.wantFault != nil {
				var f *binding.SOAPFault
				if !errors.As(err, &f) {
					t.Fatalf("Call = %v, %v; want a *SOAPFault", el, err)
				}
				if diff := cmp.Diff(tt.wantFault, f); diff != "" {
					t.Errorf("fault (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			verified, err := binding.VerifyEnveloped(el, certs, false)
			if err != nil {
				t.Fatalf("the answer does not verify: %v", err)
			}
			if got := verified.SelectAttrValue("InResponseTo", ""); got != "_lr1" {
				t.Errorf("InResponseTo %q", got)
			}
		})
	}
}

const mellonError500 = "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n<p>The server encountered an internal error or\nmisconfiguration and was unable to complete\nyour request.</p>\n<p>Please contact the server administrator at \n webmaster@localhost to inform them of the time this error occurred,\n and the actions you performed just before this error.</p>\n<p>More information about this error may be available\nin the server error log.</p>\n<hr>\n<address>Apache/2.4.62 (Debian) Server at 127.0.0.1 Port 8087</address>\n</body></html>\n"

func TestSOAPClientAnswers(t *testing.T) {
	signer, _ := soapPeers(t)
	response := signed(t, logoutResponseXML, signer, "")
	answer := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantTag   string
		wantFault *binding.SOAPFault
		wantHTTP  *binding.SOAPHTTPError
		wantErr   error  // errors.Is, with a *binding.Error
		wantMsg   string // in a *binding.Error
	}{
		{name: "200 with a LogoutResponse", handler: func(w http.ResponseWriter, r *http.Request) { binding.WriteSOAP(w, response) }, wantTag: "LogoutResponse"},
		{name: "500 with a SOAP fault", handler: func(w http.ResponseWriter, r *http.Request) {
			binding.WriteSOAPFault(w, binding.SOAPFaultServer, "unknown principal")
		}, wantFault: &binding.SOAPFault{Code: "Server", String: "unknown principal"}},
		{name: "200 with a SOAP fault", handler: answer(200, "text/xml", soapEnv("", `<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>no</faultstring></soap-env:Fault>`)), wantFault: &binding.SOAPFault{Code: "Client", String: "no"}},
		{
			name:    "mod_auth_mellon: HTML page with status 500",
			handler: answer(500, "text/html; charset=iso-8859-1", mellonError500),
			wantHTTP: &binding.SOAPHTTPError{Status: 500, ContentType: "text/html; charset=iso-8859-1",
				Snippet: `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN"> <html><head> <title>500 Internal Server Error</title> </head><body> <h1>Internal Server Error</h1> <p>The server encountered an internal error or mis`},
		},
		{
			name:     "SimpleSAMLphp: error page with status 200",
			handler:  answer(200, "text/html; charset=utf-8", "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>SimpleSAMLphp</title></head><body><h2>Unhandled exception</h2></body></html>"),
			wantHTTP: &binding.SOAPHTTPError{Status: 200, ContentType: "text/html; charset=utf-8", Snippet: `<!DOCTYPE html> <html lang="en"> <head><title>SimpleSAMLphp</title></head><body><h2>Unhandled exception</h2></body></html>`},
		},
		{name: "403 without a body", handler: answer(403, "", ""), wantHTTP: &binding.SOAPHTTPError{Status: 403}},
		{name: "404", handler: http.NotFound, wantHTTP: &binding.SOAPHTTPError{Status: 404, ContentType: "text/plain; charset=utf-8", Snippet: "404 page not found"}},
		{name: "redirect is not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, wantHTTP: &binding.SOAPHTTPError{Status: 302}},
		{name: "500 with a SOAP envelope but no fault", handler: answer(500, "text/xml", soapEnv("", logoutResponseXML)), wantHTTP: &binding.SOAPHTTPError{Status: 500, ContentType: "text/xml", Snippet: soapEnv("", logoutResponseXML)[:200]}},
		{
			name:     "control characters, bidi override, invalid UTF-8",
			handler:  answer(502, "text/plain", "\x1b[31mERROR\x1b[0m\r\nforged: line\x00\u202eevil caf\xe9!"),
			wantHTTP: &binding.SOAPHTTPError{Status: 502, ContentType: "text/plain", Snippet: "[31mERROR[0m forged: lineevil caf!"},
		},
		{name: "200 with a broken envelope", handler: answer(200, "text/xml", soapEnv("", logoutResponseXML+logoutResponseXML)), wantMsg: "holds 2 elements"},
		{name: "200 with a SOAP 1.2 envelope", handler: answer(200, "application/soap+xml", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>`+logoutResponseXML+`</e:Body></e:Envelope>`), wantErr: binding.ErrSOAPVersion, wantMsg: "SOAP 1.2"},
		{name: "200 larger than MaxEncoded", handler: answer(200, "text/xml", soapEnv("", strings.Repeat(" ", binding.MaxEncoded)+logoutResponseXML)), wantMsg: "larger than"},
		{
			name:     "500 larger than MaxEncoded",
			handler:  answer(500, "text/html", "<html>"+strings.Repeat("x", binding.MaxEncoded*2)),
			wantHTTP: &binding.SOAPHTTPError{Status: 500, ContentType: "text/html", Snippet: "<html>" + strings.Repeat("x", 194)},
		},
	}
	mux := http.NewServeMux()
	var current http.HandlerFunc
	var mu sync.Mutex
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the client followed a redirect: %s %s", r.Method, r.URL)
		binding.WriteSOAP(w, response)
	})
	mux.HandleFunc("/slo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		h := current
		mu.Unlock()
		h(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &binding.SOAPClient{HTTP: srv.Client()}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			current = tt.handler
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			el, err := client.Call(ctx, srv.URL+"/slo", []byte(signedRequest(t)))
			switch {
			case tt.wantTag != "":
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if el.Tag != tt.wantTag {
					t.Errorf("got %s; want %s", el.Tag, tt.wantTag)
				}
				if _, err := binding.VerifyEnveloped(el, []*x509.Certificate{signer.cert}, false); err != nil {
					t.Errorf("the answer does not verify: %v", err)
				}
			case tt.wantFault != nil:
				var f *binding.SOAPFault
				if !errors.As(err, &f) {
					t.Fatalf("Call = %v, %v; want a *SOAPFault", el, err)
				}
				if diff := cmp.Diff(tt.wantFault, f); diff != "" {
					t.Errorf("fault (-want +got):\n%s", diff)
				}
			case tt.wantHTTP != nil:
				var he *binding.SOAPHTTPError
				if !errors.As(err, &he) {
					t.Fatalf("Call = %v, %v; want a *SOAPHTTPError", el, err)
				}
				// Body is the answer as the server wrote it (checked here against what it wrote).
				if diff := cmp.Diff(tt.wantHTTP, he, cmpopts.IgnoreFields(binding.SOAPHTTPError{}, "Body")); diff != "" {
					t.Errorf("SOAPHTTPError (-want +got):\n%s", diff)
				}
				if tt.wantHTTP.Snippet != "" && len(he.Body) == 0 {
					t.Errorf("SOAPHTTPError.Body %q is not the answer the server wrote", he.Body)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tt.wantHTTP.Status)) {
					t.Errorf("error %q does not give the status", err)
				}
			default:
				var be *binding.Error
				if !errors.As(err, &be) || el != nil {
					t.Fatalf("Call = %v, %v; want a *binding.Error", el, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v; want errors.Is %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not mention %q", err, tt.wantMsg)
				}
			}
		})
	}
}

// isTimeout is how a caller tells a timeout: the context's deadline or a net.Error's Timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// waitGoroutines waits until no more than want goroutines run, and fails with their stacks after
// a few seconds.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left; %d before the call:\n%s", n, want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stallServer accepts SOAP calls and never finishes answering them.
type stallServer struct {
	url        string
	closeConns func() // closes the server side of every connection and lets handlers return
	shutdown   func()
}

func stallHTTP(t *testing.T, sendHeaders bool) stallServer {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices the client hanging up
		if sendHeaders {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `<soap-env:Envelope xmlns:soap-env="`+soap11+`">`)
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	return stallServer{
		url:        srv.URL + "/slo",
		closeConns: func() { close(release); srv.CloseClientConnections() },
		shutdown:   srv.Close,
	}
}

func stallTCP(t *testing.T) stallServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // accepted, never read, never answered
			mu.Unlock()
		}
	}()
	// Like httptest.Server, the accept loop lives until shutdown, after the goroutine count.
	return stallServer{
		url: "http://" + ln.Addr().String() + "/slo",
		closeConns: func() {
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		},
		shutdown: func() {
			ln.Close()
			wg.Wait()
		},
	}
}

func TestSOAPClientTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const slack = 2 * time.Second // -race on a busy machine
	tests := []struct {
		name          string
		server        func(t *testing.T) stallServer
		clientTimeout bool // the http.Client's Timeout instead of a context deadline
	}{
		{name: "handler never answers", server: func(t *testing.T) stallServer { return stallHTTP(t, false) }},
		{name: "headers sent, body never ends", server: func(t *testing.T) stallServer { return stallHTTP(t, true) }},
		{name: "TCP accepted, never read", server: stallTCP},
		{name: "http.Client Timeout, no deadline", server: func(t *testing.T) stallServer { return stallHTTP(t, false) }, clientTimeout: true},
	}
	msg := []byte(signedRequest(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.server(t)
			defer s.shutdown()
			tr := &http.Transport{}
			hc := &http.Client{Transport: tr}
			ctx := context.Background()
			if tt.clientTimeout {
				hc.Timeout = timeout
			} else {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			client := &binding.SOAPClient{HTTP: hc}
			before := runtime.NumGoroutine()

			start := time.Now()
			el, err := client.Call(ctx, s.url, msg)
			elapsed := time.Since(start)

			if err == nil {
				t.Fatalf("Call = %v; want a timeout", el)
			}
			if !isTimeout(err) {
				t.Errorf("Call error %v (%T) is not recognisable as a timeout", err, err)
			}
			if !tt.clientTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Call error %v is not errors.Is context.DeadlineExceeded", err)
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("a timeout looks like a refused connection: %v", err)
			}
			if elapsed < timeout-50*time.Millisecond || elapsed > timeout+slack {
				t.Errorf("Call returned after %v; timeout %v", elapsed, timeout)
			}

			s.closeConns()
			tr.CloseIdleConnections()
			waitGoroutines(t, before)
		})
	}
}

func TestSOAPClientConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = (&binding.SOAPClient{}).Call(ctx, "http://"+addr+"/slo", []byte(signedRequest(t)))
	if err == nil {
		t.Fatal("Call to a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Call error %v is not errors.Is ECONNREFUSED", err)
	}
	if isTimeout(err) {
		t.Errorf("a refused connection looks like a timeout: %v", err)
	}
	var he *binding.SOAPHTTPError
	if errors.As(err, &he) {
		t.Errorf("a network error is a SOAPHTTPError: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func FuzzDecodeSOAP(f *testing.F) {
	sm := signedRequest(f)
	for _, v := range soapVariants(f, sm) {
		f.Add([]byte(v.envelope))
	}
	f.Add(readTestdata(f, "pysaml2-soap-logoutrequest.xml"))
	f.Add([]byte(soapEnv(`<h:T xmlns:h="urn:h" soap-env:mustUnderstand="1"/>`, sm)))
	f.Add([]byte(soapEnv(evilRequestXML, sm)))
	f.Add([]byte(soapEnv("", `<soap-env:Fault><faultcode>soap-env:Client</faultcode><faultstring>x</faultstring></soap-env:Fault>`)))
	f.Add([]byte(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`))
	signer, other := soapPeers(f)
	certs := []*x509.Certificate{signer.cert, other.cert, pemCert(f, "pysaml2-soap-cert.pem")}
	f.Fuzz(func(t *testing.T, b []byte) {
		el, err := binding.DecodeSOAP(b)
		if err != nil {
			var be *binding.Error
			var sf *binding.SOAPFault
			if !errors.As(err, &be) && !errors.As(err, &sf) {
				t.Fatalf("error %v (%T) is neither a *binding.Error nor a *SOAPFault", err, err)
			}
			if el != nil {
				t.Fatal("an error and an element")
			}
			return
		}
		if el.Parent() != nil || el.NamespaceURI() != samlp {
			t.Fatalf("returned %s in %q with parent %v", el.Tag, el.NamespaceURI(), el.Parent())
		}
		// What the SLO engine does next; it must not panic.
		_, _ = binding.VerifyEnveloped(el, certs, true)
	})
}
