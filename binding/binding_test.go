package binding_test

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sloworks/broker/binding"
)

// certNow is when the test certificates are valid.
var certNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// testKeys makes two RSA-2048 key pairs once per run; the same keys serve every test.
var testKeys = sync.OnceValues(func() ([2]keyPair, error) {
	var out [2]keyPair
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return out, err
		}
		c, err := certFor(k, fmt.Sprintf("peer %d", i), certNow.Add(-time.Hour), certNow.Add(365*24*time.Hour))
		if err != nil {
			return out, err
		}
		out[i] = keyPair{k, c}
	}
	return out, nil
})

func certFor(k *rsa.PrivateKey, cn string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(notBefore.Unix()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// peers returns the key pair that signs and another one.
func peers(t testing.TB) (signer, other keyPair) {
	t.Helper()
	kp, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return kp[0], kp[1]
}

// needTool finds a binary for an independent check: skipped when missing, fatal on CI.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing (apt-get install %s)", name, name)
		}
		t.Skipf("%s not installed (apt-get install %s)", name, name)
	}
	return p
}

// The fixture readers of the package's own tests.
var readTestdata, pemCert = binding.ReadTestdata, binding.PEMCert

const authnRequestXML = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1b2c3" Version="2.0" IssueInstant="2026-01-02T03:04:05Z" Destination="https://idp.example/sso" AssertionConsumerServiceURL="https://broker.example/t/acme/sp/acs"><saml:Issuer>https://broker.example/t/acme/sp</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/></samlp:AuthnRequest>`

// param returns the raw (still encoded) value of name in rawQuery.
func param(t *testing.T, rawQuery, name string) string {
	t.Helper()
	for _, p := range strings.Split(rawQuery, "&") {
		if k, v, _ := strings.Cut(p, "="); k == name {
			return v
		}
	}
	t.Fatalf("no %s in %s", name, rawQuery)
	return ""
}

// setParam replaces the raw value of name in rawQuery.
func setParam(rawQuery, name, value string) string {
	parts := strings.Split(rawQuery, "&")
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k == name {
			parts[i] = k + "=" + value
		}
	}
	return strings.Join(parts, "&")
}

// specOctets builds the signed octets of saml-bindings 3.4.4.1 from a raw query, independently of
// the package: SAMLRequest or SAMLResponse, RelayState if present, SigAlg, as they appear.
func specOctets(t *testing.T, rawQuery string) []byte {
	t.Helper()
	vals := map[string]string{}
	for _, p := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(p, "=")
		vals[k] = v
	}
	var parts []string
	for _, k := range []string{"SAMLRequest", "SAMLResponse", "RelayState", "SigAlg"} {
		if v, ok := vals[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return []byte(strings.Join(parts, "&"))
}

func encode(t *testing.T, dest, p string, msg []byte, relayState string, signer crypto.Signer, sigAlg string) *url.URL {
	t.Helper()
	s, err := binding.EncodeRedirect(dest, p, msg, relayState, signer, sigAlg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("EncodeRedirect made an unparsable URL %q: %v", s, err)
	}
	return u
}

var ignoreUnexported = cmpopts.IgnoreUnexported(binding.Redirect{})

func TestRedirectRoundTrip(t *testing.T) {
	signer, other := peers(t)
	msg := []byte(authnRequestXML)
	const relayState = "https://app.example/page?x=1&y=two words/ü"

	tests := []struct {
		name      string
		dest      string
		param     string
		sigAlg    string // "" with sign: the default, RSA-SHA256
		sign      bool
		relay     string
		certs     []*x509.Certificate
		allowSHA1 bool
		wantAlg   string
		wantErr   error // nil: verifies
	}{
		{name: "RSA-SHA256", param: "SAMLRequest", sigAlg: binding.SigAlgRSASHA256, sign: true, relay: relayState, certs: []*x509.Certificate{signer.cert}, wantAlg: binding.SigAlgRSASHA256},
		{name: "default algorithm is RSA-SHA256", param: "SAMLRequest", sign: true, relay: relayState, certs: []*x509.Certificate{signer.cert}, wantAlg: binding.SigAlgRSASHA256},
		{name: "RSA-SHA512", param: "SAMLResponse", sigAlg: binding.SigAlgRSASHA512, sign: true, certs: []*x509.Certificate{signer.cert}, wantAlg: binding.SigAlgRSASHA512},
		{name: "RSA-SHA1 allowed", param: "SAMLRequest", sigAlg: binding.SigAlgRSASHA1, sign: true, relay: relayState, certs: []*x509.Certificate{signer.cert}, allowSHA1: true, wantAlg: binding.SigAlgRSASHA1},
		{name: "RSA-SHA1 refused", param: "SAMLRequest", sigAlg: binding.SigAlgRSASHA1, sign: true, relay: relayState, certs: []*x509.Certificate{signer.cert}, wantAlg: binding.SigAlgRSASHA1, wantErr: binding.ErrWeakAlgorithm},
		{name: "another key's certificate", param: "SAMLRequest", sign: true, relay: relayState, certs: []*x509.Certificate{other.cert}, wantAlg: binding.SigAlgRSASHA256, wantErr: binding.ErrBadSignature},
		{name: "right certificate second (rollover)", param: "SAMLRequest", sign: true, certs: []*x509.Certificate{other.cert, signer.cert}, wantAlg: binding.SigAlgRSASHA256},
		{name: "no certificate", param: "SAMLRequest", sign: true, wantAlg: binding.SigAlgRSASHA256, wantErr: binding.ErrBadSignature},
		{name: "destination with a query", dest: "https://idp.example/sso?tenant=acme&x=%2F", param: "SAMLRequest", sign: true, relay: relayState, certs: []*x509.Certificate{signer.cert}, wantAlg: binding.SigAlgRSASHA256},
		{name: "unsigned", param: "SAMLRequest", relay: relayState, certs: []*x509.Certificate{signer.cert}, wantErr: binding.ErrNoSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := tt.dest
			if dest == "" {
				dest = "https://idp.example/sso"
			}
			var s crypto.Signer
			if tt.sign {
				s = signer.key
			}
			u := encode(t, dest, tt.param, msg, tt.relay, s, tt.sigAlg)
			if want, _ := url.Parse(dest); u.Host != want.Host || u.Path != want.Path {
				t.Errorf("URL %s does not go to %s", u, dest)
			}
			if tt.dest != "" {
				if q, _ := url.Parse(tt.dest); !strings.HasPrefix(u.RawQuery, q.RawQuery+"&") {
					t.Errorf("the destination's own query %q was not kept first: %s", q.RawQuery, u.RawQuery)
				}
			}
			r, err := binding.DecodeRedirect(u.RawQuery)
			if err != nil {
				t.Fatalf("DecodeRedirect: %v", err)
			}
			want := &binding.Redirect{Param: tt.param, XML: msg, RelayState: tt.relay, SigAlg: tt.wantAlg, Signature: r.Signature}
			if diff := cmp.Diff(want, r, ignoreUnexported); diff != "" {
				t.Errorf("DecodeRedirect (-want +got):\n%s", diff)
			}
			if r.Signed() != tt.sign || (tt.sign && len(r.Signature) != signer.key.Size()) {
				t.Errorf("Signed() = %v with a %d-byte signature; want %v", r.Signed(), len(r.Signature), tt.sign)
			}
			err = r.Verify(tt.certs, tt.allowSHA1)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v; want errors.Is %v", err, tt.wantErr)
			}
		})
	}
}

var escape = regexp.MustCompile(`%[0-9A-F]{2}`)

func lowerEscapes(s string) string { return escape.ReplaceAllStringFunc(s, strings.ToLower) }

// TestRedirectVerifiesRawOctets: a query carrying the same values with another percent-encoding
// must not verify (the signature covers the octets as sent), and a query signed by a sender that
// encodes differently from Go must verify.
func TestRedirectVerifiesRawOctets(t *testing.T) {
	signer, _ := peers(t)
	msg := []byte(authnRequestXML)
	const relayState = "back to https://app.example/page 2"
	u := encode(t, "https://idp.example/sso", "SAMLRequest", msg, relayState, signer.key, binding.SigAlgRSASHA256)
	orig := u.RawQuery
	if r, err := binding.DecodeRedirect(orig); err != nil || r.Verify([]*x509.Certificate{signer.cert}, false) != nil {
		t.Fatalf("the original query does not verify: %v", err)
	}

	tests := []struct {
		name     string
		reencode func(q string) string
	}{
		{"lowercase hex escapes in RelayState", func(q string) string {
			return setParam(q, "RelayState", lowerEscapes(param(t, q, "RelayState")))
		}},
		{"lowercase hex escapes in SigAlg", func(q string) string {
			return setParam(q, "SigAlg", lowerEscapes(param(t, q, "SigAlg")))
		}},
		{"%20 instead of + in RelayState", func(q string) string {
			return setParam(q, "RelayState", strings.ReplaceAll(param(t, q, "RelayState"), "+", "%20"))
		}},
		{"an unreserved character escaped in RelayState", func(q string) string {
			v := param(t, q, "RelayState")
			return setParam(q, "RelayState", "%"+fmt.Sprintf("%02X", v[0])+v[1:])
		}},
		{"base64 characters escaped differently in SAMLRequest", func(q string) string {
			v := param(t, q, "SAMLRequest")
			// Escape every base64 letter 'A' (unreserved, so never escaped by Go): same value.
			return setParam(q, "SAMLRequest", strings.ReplaceAll(v, "A", "%41"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.reencode(orig)
			if q == orig {
				t.Fatal("re-encoding changed nothing; the test proves nothing")
			}
			r, err := binding.DecodeRedirect(q)
			if err != nil {
				t.Fatalf("the re-encoded query does not decode: %v", err)
			}
			// Same values, different octets.
			if !bytes.Equal(r.XML, msg) || r.RelayState != relayState || r.SigAlg != binding.SigAlgRSASHA256 {
				t.Fatalf("re-encoding changed the values: %q %q", r.RelayState, r.SigAlg)
			}
			if err := r.Verify([]*x509.Certificate{signer.cert}, false); !errors.Is(err, binding.ErrBadSignature) {
				t.Errorf("Verify of a re-encoded query = %v; want ErrBadSignature", err)
			}
		})
	}

	t.Run("signed by a sender that encodes differently", func(t *testing.T) {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		fw.Write(msg)
		fw.Close()
		enc := lowerEscapes(url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes())))
		relay := strings.ReplaceAll(lowerEscapes(url.QueryEscape(relayState)), "+", "%20")
		octets := "SAMLRequest=" + enc + "&RelayState=" + relay + "&SigAlg=" + lowerEscapes(url.QueryEscape(binding.SigAlgRSASHA256))
		sum := sha256.Sum256([]byte(octets))
		sig, err := rsa.SignPKCS1v15(rand.Reader, signer.key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		// Signature first and an extra parameter: neither is part of the signed octets.
		q := "Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig)) + "&lang=en&" + octets
		r, err := binding.DecodeRedirect(q)
		if err != nil {
			t.Fatal(err)
		}
		if r.RelayState != relayState || !bytes.Equal(r.XML, msg) {
			t.Errorf("decoded RelayState %q", r.RelayState)
		}
		if err := r.Verify([]*x509.Certificate{signer.cert}, false); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestRedirectParameters(t *testing.T) {
	signer, _ := peers(t)
	u := encode(t, "https://idp.example/sso", "SAMLRequest", []byte(authnRequestXML), "rs", signer.key, "")
	parts := strings.Split(u.RawQuery, "&")
	if len(parts) != 4 {
		t.Fatalf("want SAMLRequest, RelayState, SigAlg, Signature; got %q", u.RawQuery)
	}
	certs := []*x509.Certificate{signer.cert}

	t.Run("order and extra parameters do not matter", func(t *testing.T) {
		all := append([]string{"foo=bar", "foo=baz", "SAMLEncoding=urn%3Aoasis%3Anames%3Atc%3ASAML%3A2.0%3Abindings%3AURL-Encoding%3ADEFLATE"}, parts...)
		for i := range all {
			// Every rotation of the parameter list.
			rot := append(append([]string{}, all[i:]...), all[:i]...)
			q := strings.Join(rot, "&")
			r, err := binding.DecodeRedirect(q)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if err := r.Verify(certs, false); err != nil {
				t.Errorf("%s: Verify: %v", q, err)
			}
			// Reversed as well.
			rev := make([]string, len(rot))
			for j := range rot {
				rev[j] = rot[len(rot)-1-j]
			}
			if r, err := binding.DecodeRedirect(strings.Join(rev, "&")); err != nil || r.Verify(certs, false) != nil {
				t.Errorf("reversed %v: %v", rev, err)
			}
		}
	})

	for _, name := range []string{"SAMLRequest", "RelayState", "SigAlg", "Signature"} {
		t.Run(name+" twice", func(t *testing.T) {
			// The same value twice is refused as well: a second value is never silently ignored.
			q := u.RawQuery + "&" + name + "=" + param(t, u.RawQuery, name)
			_, err := binding.DecodeRedirect(q)
			var be *binding.Error
			if !errors.As(err, &be) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "twice") {
				t.Errorf("DecodeRedirect = %v; want a *binding.Error naming %s given twice", err, name)
			}
		})
	}
	t.Run("SAMLResponse twice", func(t *testing.T) {
		u := encode(t, "https://sp.example/slo", "SAMLResponse", []byte("<x/>"), "", nil, "")
		_, err := binding.DecodeRedirect(u.RawQuery + "&" + u.RawQuery)
		if err == nil || !strings.Contains(err.Error(), "SAMLResponse given twice") {
			t.Errorf("DecodeRedirect = %v", err)
		}
	})
}

func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(b)
	fw.Close()
	return buf.Bytes()
}

func queryOf(deflated []byte) string {
	return "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflated))
}

func TestRedirectDeflateBomb(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		refused bool
	}{
		{"at the limit", binding.MaxInflated, false},
		{"one byte over", binding.MaxInflated + 1, true},
		{"10 MB of zeros", 10 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := queryOf(deflate(t, make([]byte, tt.size)))
			if len(q) > binding.MaxEncoded {
				t.Fatalf("the bomb is %d bytes encoded; it should fit under MaxEncoded to test inflation", len(q))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			r, err := binding.DecodeRedirect(q)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if elapsed > 2*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if !tt.refused {
				if err != nil || len(r.XML) != tt.size {
					t.Fatalf("DecodeRedirect = %v; want the %d bytes", err, tt.size)
				}
				return
			}
			var be *binding.Error
			if !errors.As(err, &be) || !strings.Contains(err.Error(), fmt.Sprint(binding.MaxInflated)) {
				t.Errorf("DecodeRedirect = %v; want a *binding.Error that names the limit %d", err, binding.MaxInflated)
			}
		})
	}
}

func TestRedirectMalformed(t *testing.T) {
	signer, _ := peers(t)
	good := encode(t, "https://idp.example/sso", "SAMLRequest", []byte(authnRequestXML), "rs", signer.key, "").RawQuery
	valid := queryOf(deflate(t, []byte(authnRequestXML)))
	truncated := deflate(t, []byte(strings.Repeat(authnRequestXML, 20)))
	tests := []struct {
		name, query, want string
	}{
		{"empty", "", "no SAMLRequest or SAMLResponse"},
		{"only RelayState", "RelayState=x", "no SAMLRequest or SAMLResponse"},
		{"both request and response", valid + "&" + strings.Replace(valid, "SAMLRequest", "SAMLResponse", 1), "both"},
		{"bad percent-encoding", "SAMLRequest=abc%zz", "not URL-encoded"},
		{"not base64", "SAMLRequest=%21%21%21%21", "not base64"},
		{"empty message", "SAMLRequest=", "DEFLATE"},
		{"base64 but not DEFLATE", "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("not deflate at all"))), "DEFLATE"},
		{"truncated DEFLATE", queryOf(truncated[:len(truncated)/2]), "DEFLATE"},
		{"zlib instead of raw DEFLATE", "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(append([]byte{0x78, 0x9c}, deflate(t, []byte("<x/>"))...))), "DEFLATE"},
		{"bad RelayState encoding", valid + "&RelayState=%G0", "RelayState"},
		{"bad SigAlg encoding", valid + "&SigAlg=%", "SigAlg"},
		{"Signature not base64", setParam(good, "Signature", "%24%24%24"), "Signature is not base64"},
		{"bad Signature encoding", setParam(good, "Signature", "%x"), "Signature"},
		{"too long", valid + "&RelayState=" + strings.Repeat("a", binding.MaxEncoded), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := binding.DecodeRedirect(tt.query)
			var be *binding.Error
			if !errors.As(err, &be) {
				t.Fatalf("DecodeRedirect = %+v, %v; want a *binding.Error", r, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestRedirectVerifyIncomplete(t *testing.T) {
	signer, _ := peers(t)
	q := encode(t, "https://idp.example/sso", "SAMLRequest", []byte(authnRequestXML), "rs", signer.key, "").RawQuery
	certs := []*x509.Certificate{signer.cert}
	drop := func(q, name string) string {
		var keep []string
		for _, p := range strings.Split(q, "&") {
			if !strings.HasPrefix(p, name+"=") {
				keep = append(keep, p)
			}
		}
		return strings.Join(keep, "&")
	}
	tests := []struct {
		name    string
		query   string
		wantErr error
	}{
		{"no Signature", drop(q, "Signature"), binding.ErrBadSignature},
		{"no SigAlg", drop(q, "SigAlg"), binding.ErrBadSignature},
		{"neither", drop(drop(q, "SigAlg"), "Signature"), binding.ErrNoSignature},
		{"unknown SigAlg", setParam(q, "SigAlg", url.QueryEscape("http://www.w3.org/2000/09/xmldsig#dsa-sha1")), binding.ErrWeakAlgorithm},
		{"SigAlg none", setParam(q, "SigAlg", "none"), binding.ErrWeakAlgorithm},
		{"RelayState changed", setParam(q, "RelayState", "https%3A%2F%2Fevil.example"), binding.ErrBadSignature},
		{"RelayState dropped", drop(q, "RelayState"), binding.ErrBadSignature},
		{"SAMLRequest swapped", setParam(q, "SAMLRequest", param(t, queryOf(deflate(t, []byte(strings.Replace(authnRequestXML, "_a1b2c3", "_evil", 1)))), "SAMLRequest")), binding.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := binding.DecodeRedirect(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Verify(certs, true); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify = %v; want errors.Is %v", err, tt.wantErr)
			}
		})
	}
}

// TestRedirectOpenSSL checks an EncodeRedirect signature with openssl, an independent
// implementation, over the octets saml-bindings 3.4.4.1 defines.
func TestRedirectOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	signer, _ := peers(t)
	pub, err := x509.MarshalPKIXPublicKey(&signer.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pubPath := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sigAlg, dgst string
	}{
		{binding.SigAlgRSASHA256, "-sha256"},
		{binding.SigAlgRSASHA1, "-sha1"},
		{binding.SigAlgRSASHA512, "-sha512"},
	} {
		t.Run(tt.dgst, func(t *testing.T) {
			u := encode(t, "https://idp.example/sso", "SAMLRequest", []byte(authnRequestXML), "relay state ü", signer.key, tt.sigAlg)
			octets := specOctets(t, u.RawQuery)
			s, err := url.QueryUnescape(param(t, u.RawQuery, "Signature"))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, tampered := range []bool{false, true} {
				o := octets
				if tampered {
					o = bytes.Replace(octets, []byte("RelayState=relay"), []byte("RelayState=Relay"), 1)
				}
				octetsPath, sigPath := filepath.Join(dir, "octets"), filepath.Join(dir, "sig.bin")
				os.WriteFile(octetsPath, o, 0o600)
				os.WriteFile(sigPath, sig, 0o600)
				out, err := exec.Command(openssl, "dgst", tt.dgst, "-verify", pubPath, "-signature", sigPath, octetsPath).CombinedOutput()
				if ok := err == nil && strings.Contains(string(out), "Verified OK"); ok == tampered {
					t.Errorf("tampered=%v: openssl verified=%v\n%s\noctets: %s", tampered, ok, out, o)
				}
			}
		})
	}
}

// TestRedirectSimpleSAMLphp verifies a signed AuthnRequest made by SimpleSAMLphp (PHP's
// urlencode, not Go's) against its certificate.
func TestRedirectSimpleSAMLphp(t *testing.T) {
	q := strings.TrimSpace(string(readTestdata(t, "ssp-sp-authnrequest.query")))
	cert := pemCert(t, "ssp-sp-cert.pem")
	_, other := peers(t)
	r, err := binding.DecodeRedirect(q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Param != "SAMLRequest" || r.SigAlg != binding.SigAlgRSASHA256 || r.RelayState != "http://127.0.0.1:18182/app/status" {
		t.Errorf("decoded %s SigAlg=%q RelayState=%q", r.Param, r.SigAlg, r.RelayState)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(r.XML); err != nil || doc.Root() == nil || doc.Root().Tag != "AuthnRequest" {
		t.Fatalf("not an AuthnRequest (%v): %s", err, r.XML)
	}
	if err := r.Verify([]*x509.Certificate{cert}, false); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := r.Verify([]*x509.Certificate{other.cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("Verify with another certificate = %v", err)
	}
	r2, err := binding.DecodeRedirect(lowerEscapes(q))
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Verify([]*x509.Certificate{cert}, false); !errors.Is(err, binding.ErrBadSignature) {
		t.Errorf("Verify of the query with lowercase escapes = %v; want ErrBadSignature", err)
	}
}

func FuzzDecodeRedirect(f *testing.F) {
	f.Add(strings.TrimSpace(string(readTestdata(f, "ssp-sp-authnrequest.query"))))
	kp, err := testKeys()
	if err != nil {
		f.Fatal(err)
	}
	for _, alg := range []string{binding.SigAlgRSASHA256, binding.SigAlgRSASHA1} {
		s, err := binding.EncodeRedirect("https://idp.example/sso", "SAMLRequest", []byte(authnRequestXML), "a b&c", kp[0].key, alg)
		if err != nil {
			f.Fatal(err)
		}
		u, _ := url.Parse(s)
		f.Add(u.RawQuery)
	}
	f.Add("SAMLResponse=&RelayState=&SigAlg=&Signature=")
	f.Add("SAMLRequest=%zz&&&=")
	f.Fuzz(func(t *testing.T, q string) {
		r, err := binding.DecodeRedirect(q)
		if err != nil {
			var be *binding.Error
			if !errors.As(err, &be) {
				t.Fatalf("error %v (%T) is not a *binding.Error", err, err)
			}
			return
		}
		if len(r.XML) > binding.MaxInflated {
			t.Fatalf("inflated to %d bytes", len(r.XML))
		}
		// A fuzzed query never carries a valid signature by the test key... except the seeds.
		_ = r.Verify([]*x509.Certificate{kp[0].cert, kp[1].cert}, true)
		if err := r.Verify(nil, false); err == nil {
			t.Fatal("verified against no certificate")
		}
	})
}
