// Package binding implements the SAML 2.0 HTTP bindings the broker speaks, both ways, and the XML
// signatures that go with them: Redirect (DEFLATE, signature over the raw query string), POST
// (base64 form, enveloped XML signature). The SSO and SLO engines build on it.
package binding

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
)

// MaxInflated is the largest message the Redirect binding inflates (a deflate bomb stops here).
const MaxInflated = 256 << 10

// MaxEncoded is the largest encoded message accepted in a query string or form field.
const MaxEncoded = 512 << 10

// Error is a malformed or unverifiable message at the binding layer.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}
func (e *Error) Unwrap() error { return e.Err }

// ErrNoSignature is returned by verification when the message carries no signature.
var ErrNoSignature = errors.New("message is not signed")

// ErrBadSignature is wrapped when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// ErrWeakAlgorithm is wrapped when a signature uses an algorithm not allowed here (RSA-SHA1
// outside the peers whose quirks need it).
var ErrWeakAlgorithm = errors.New("signature algorithm not allowed")

// Redirect is a message received over the HTTP-Redirect binding (saml-bindings 3.4).
type Redirect struct {
	// Param is "SAMLRequest" or "SAMLResponse".
	Param      string
	XML        []byte
	RelayState string
	SigAlg     string
	Signature  []byte
	// signedOctets are the raw query octets the signature covers, exactly as received.
	signedOctets []byte
}

// Signed reports whether the message carries a query signature.
func (r *Redirect) Signed() bool { return r.SigAlg != "" || len(r.Signature) > 0 }

// DecodeRedirect reads a Redirect-binding message from a raw (still URL-encoded) query string.
// Parameters are taken exactly as received: the signature is later checked over the raw octets
// (saml-bindings 3.4.4.1), never over a re-encoding.
func DecodeRedirect(rawQuery string) (*Redirect, error) {
	if len(rawQuery) > MaxEncoded {
		return nil, &Error{Reason: "query string too long"}
	}
	raw := map[string]string{}
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature":
			if _, dup := raw[k]; dup {
				return nil, &Error{Reason: "parameter " + k + " given twice"}
			}
			raw[k] = v
		}
	}
	r := &Redirect{}
	_, hasReq := raw["SAMLRequest"]
	_, hasResp := raw["SAMLResponse"]
	switch {
	case hasReq && hasResp:
		return nil, &Error{Reason: "both SAMLRequest and SAMLResponse given"}
	case hasReq:
		r.Param = "SAMLRequest"
	case hasResp:
		r.Param = "SAMLResponse"
	default:
		return nil, &Error{Reason: "no SAMLRequest or SAMLResponse parameter"}
	}
	value, err := url.QueryUnescape(raw[r.Param])
	if err != nil {
		return nil, &Error{Reason: r.Param + " is not URL-encoded correctly", Err: err}
	}
	deflated, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, &Error{Reason: r.Param + " is not base64", Err: err}
	}
	r.XML, err = Inflate(deflated)
	if err != nil {
		return nil, err
	}
	if v, ok := raw["RelayState"]; ok {
		if r.RelayState, err = url.QueryUnescape(v); err != nil {
			return nil, &Error{Reason: "RelayState is not URL-encoded correctly", Err: err}
		}
	}
	if v, ok := raw["SigAlg"]; ok {
		if r.SigAlg, err = url.QueryUnescape(v); err != nil {
			return nil, &Error{Reason: "SigAlg is not URL-encoded correctly", Err: err}
		}
	}
	if v, ok := raw["Signature"]; ok {
		s, err := url.QueryUnescape(v)
		if err != nil {
			return nil, &Error{Reason: "Signature is not URL-encoded correctly", Err: err}
		}
		if r.Signature, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, &Error{Reason: "Signature is not base64", Err: err}
		}
	}
	// saml-bindings 3.4.4.1: the signed octets are the parameters in this order, as received.
	octets := r.Param + "=" + raw[r.Param]
	if v, ok := raw["RelayState"]; ok {
		octets += "&RelayState=" + v
	}
	octets += "&SigAlg=" + raw["SigAlg"]
	r.signedOctets = []byte(octets)
	return r, nil
}

// Inflate decompresses raw DEFLATE data, refusing more than MaxInflated bytes of output.
func Inflate(deflated []byte) ([]byte, error) {
	var fr io.ReadCloser
	if r, ok := flateReaders.Get().(io.ReadCloser); ok {
		if err := r.(flate.Resetter).Reset(bytes.NewReader(deflated), nil); err == nil {
			fr = r
		}
	}
	if fr == nil {
		fr = flate.NewReader(bytes.NewReader(deflated))
	}
	defer flateReaders.Put(fr)
	out, err := io.ReadAll(io.LimitReader(fr, MaxInflated+1))
	if err != nil {
		return nil, &Error{Reason: "message is not valid DEFLATE data", Err: err}
	}
	if len(out) > MaxInflated {
		return nil, &Error{Reason: fmt.Sprintf("message inflates to more than %d bytes", MaxInflated)}
	}
	return out, nil
}

// Verify checks the query signature against the peer's certificates. allowSHA1 permits
// RSA-SHA1 for peers whose quirks need it.
func (r *Redirect) Verify(certs []*x509.Certificate, allowSHA1 bool) error {
	if !r.Signed() {
		return ErrNoSignature
	}
	if r.SigAlg == "" || len(r.Signature) == 0 {
		return &Error{Reason: "Redirect signature incomplete: SigAlg and Signature must both be given", Err: ErrBadSignature}
	}
	alg, err := x509Algorithm(r.SigAlg, allowSHA1)
	if err != nil {
		return err
	}
	for _, c := range certs {
		if c.CheckSignature(alg, r.signedOctets, r.Signature) == nil {
			return nil
		}
	}
	return &Error{Reason: "Redirect query signature does not verify against the peer's certificates", Err: ErrBadSignature}
}

// flateWriters reuses compressors: a flate.Writer holds about a megabyte of state.
// BestSpeed: SAML messages are a few kilobytes, and its encoder resets far more cheaply.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // cannot fail for a valid level
	return w
}}

// flateReaders reuses decompressors (each holds a 32 KiB window).
var flateReaders sync.Pool

// EncodeRedirect returns the URL that sends msg to dest over the Redirect binding. param is
// "SAMLRequest" or "SAMLResponse". With a signer, the query is signed with sigAlg
// (saml-bindings 3.4.4.1); the XML itself carries no signature.
func EncodeRedirect(dest, param string, msg []byte, relayState string, signer crypto.Signer, sigAlg string) (string, error) {
	var buf bytes.Buffer
	fw := flateWriters.Get().(*flate.Writer)
	fw.Reset(&buf)
	_, err := fw.Write(msg)
	if err == nil {
		err = fw.Close()
	}
	flateWriters.Put(fw)
	if err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	if signer != nil {
		if sigAlg == "" {
			sigAlg = SigAlgRSASHA256
		}
		q += "&SigAlg=" + url.QueryEscape(sigAlg)
		h, err := hashFor(sigAlg)
		if err != nil {
			return "", err
		}
		d := h.New()
		d.Write([]byte(q))
		sig, err := signer.Sign(rand.Reader, d.Sum(nil), h)
		if err != nil {
			return "", fmt.Errorf("sign redirect query: %w", err)
		}
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	return dest + sep + q, nil
}
