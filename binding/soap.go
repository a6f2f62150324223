package binding

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// The SAML SOAP binding (saml-bindings 3.2) on SOAP 1.1 over HTTP: the back channel of Single
// Logout and Artifact resolution. One SAML protocol message per SOAP Body, nothing else.

const (
	soap11NS = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS = "http://www.w3.org/2003/05/soap-envelope"
	samlpNS  = "urn:oasis:names:tc:SAML:2.0:protocol"
	samlNS   = "urn:oasis:names:tc:SAML:2.0:assertion"

	// soapAction is the SOAPAction a SAML requester may send (saml-bindings 3.2.3.1), quoted as
	// SOAP 1.1 6.1.1 writes it.
	soapAction      = `"http://www.oasis-open.org/committees/security"`
	soapContentType = "text/xml; charset=utf-8"

	soapEnvelopeStart = `<soap-env:Envelope xmlns:soap-env="` + soap11NS + `"><soap-env:Body>`
	soapEnvelopeEnd   = `</soap-env:Body></soap-env:Envelope>`

	// defaultSOAPTimeout bounds a call whose context has no deadline and whose http.Client has
	// no Timeout: a peer that never answers must not hold a logout forever.
	defaultSOAPTimeout = 30 * time.Second

	// snippetLen is how much of a non-SOAP answer SOAPHTTPError keeps.
	snippetLen = 200
	// faultTextLen is how much of a fault's text SOAPFault keeps.
	faultTextLen = 1024
)

// SOAP 1.1 fault codes (SOAP 1.1 4.4.1), for WriteSOAPFault.
const (
	SOAPFaultVersionMismatch = "VersionMismatch"
	SOAPFaultMustUnderstand  = "MustUnderstand"
	SOAPFaultClient          = "Client"
	SOAPFaultServer          = "Server"
)

// ErrNotSOAP is wrapped when an HTTP request is not a SOAP request at all (not a POST, or neither
// a SOAP content type nor a SOAPAction header). A handler may answer it with 405 or 415.
var ErrNotSOAP = errors.New("not a SOAP request")

// ErrSOAPVersion is wrapped when the envelope is not a SOAP 1.1 Envelope (SOAP 1.1 4.4.1
// VersionMismatch); the SAML SOAP binding uses SOAP 1.1 (saml-bindings 3.2).
var ErrSOAPVersion = errors.New("not a SOAP 1.1 envelope")

// ErrSOAPMustUnderstand is wrapped when a SOAP header block carries mustUnderstand="1": the SAML
// SOAP binding defines no headers, so we understand none (SOAP 1.1 4.2.3, saml-bindings 3.2.2.2).
var ErrSOAPMustUnderstand = errors.New("SOAP header block must be understood")

// SOAPFault is a SOAP 1.1 Fault (SOAP 1.1 4.4) found in a SOAP Body. Code is the faultcode with a
// prefix of the SOAP envelope namespace resolved away ("Client", "Server.Busy"); a code in another
// namespace is kept as written. Both fields come from the peer: control characters are removed,
// white space collapsed, and String is cut to 1 KiB.
type SOAPFault struct {
	Code   string
	String string
}

func (f *SOAPFault) Error() string {
	return fmt.Sprintf("SOAP fault %s: %s", f.Code, f.String)
}

// SOAPHTTPError is the answer to a SOAP call that is neither a SOAP message (status 200) nor a
// SOAP fault (status 500): another status, a redirect, or a body that is no SOAP envelope
// (mod_auth_mellon answers lasso errors as an HTML page with status 500; SimpleSAMLphp shows its
// error pages with status 200). It says what the peer answered, for the logout log.
type SOAPHTTPError struct {
	Status      int
	ContentType string
	// Snippet is the start of the body (its first 200 bytes), control characters removed and runs
	// of white space collapsed to one space.
	Snippet string
	// Body is the answer as received, at most MaxErrorBody bytes, for the logout log.
	Body []byte
}

// MaxErrorBody is how much of a non-SOAP answer a SOAPHTTPError keeps.
const MaxErrorBody = 16 << 10

func (e *SOAPHTTPError) Error() string {
	return fmt.Sprintf("peer answered HTTP %d with %q instead of a SOAP message: %q", e.Status, e.ContentType, e.Snippet)
}

// SOAPFaultCode returns the SOAP 1.1 fault code a SOAP endpoint answers err with (SOAP 1.1 4.4.1):
// VersionMismatch and MustUnderstand for those refusals, Client for any other malformed request
// (a *Error), Server for the rest. A SAML processing error (a bad signature, an unknown session)
// is no SOAP fault: it is a SAML response with a status, sent with status 200 (saml-bindings
// 3.2.3.3).
func SOAPFaultCode(err error) string {
	var be *Error
	switch {
	case errors.Is(err, ErrSOAPVersion):
		return SOAPFaultVersionMismatch
	case errors.Is(err, ErrSOAPMustUnderstand):
		return SOAPFaultMustUnderstand
	case errors.As(err, &be):
		return SOAPFaultClient
	}
	return SOAPFaultServer
}

// EncodeSOAP wraps a SAML protocol message in a SOAP 1.1 envelope (saml-bindings 3.2.2.1). msg goes
// in byte for byte, so that its signature still holds; only a leading UTF-8 byte order mark and
// XML declaration (and the white space after it) are removed. msg must be UTF-8.
func EncodeSOAP(msg []byte) []byte {
	msg = stripXMLDeclaration(msg)
	out := make([]byte, 0, len(soapEnvelopeStart)+len(msg)+len(soapEnvelopeEnd))
	out = append(out, soapEnvelopeStart...)
	out = append(out, msg...)
	return append(out, soapEnvelopeEnd...)
}

func stripXMLDeclaration(b []byte) []byte {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if len(b) < 6 || !bytes.HasPrefix(b, []byte("<?xml")) || !isXMLSpace(b[5]) {
		return b
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return b
	}
	return bytes.TrimLeft(b[end+2:], " \t\r\n")
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// DecodeSOAP reads a SOAP 1.1 envelope carrying one SAML protocol message and returns that message
// detached from the envelope: a copy that declares every namespace in scope where it stood, so that
// VerifyEnveloped checks it as it was signed (exclusive c14n leaves out the declarations it does
// not use). The caller must still verify the returned element and read only what VerifyEnveloped
// returns.
//
// Refused, as a *Error: more than MaxEncoded bytes, XML that fails ValidateRoundTrip, a DTD or a
// processing instruction (SOAP 1.1 3), a root that is not a SOAP 1.1 Envelope (ErrSOAPVersion), a
// header block with mustUnderstand="1" (ErrSOAPMustUnderstand), a SAML element in the Header,
// anything but an optional Header and one Body in the Envelope, a Body that does not hold exactly
// one element (saml-bindings 3.2.2.1), an element not in the SAML protocol namespace, and an ID
// that appears twice. A SOAP Fault in the Body is returned as a *SOAPFault.
func DecodeSOAP(envelope []byte) (*etree.Element, error) {
	msg, _, err := decodeSOAP(envelope)
	return msg, err
}

// decodeSOAP is DecodeSOAP; isEnvelope reports whether the bytes were a SOAP Envelope at all (of
// either version), so that a client can tell a broken SOAP answer from an HTML error page.
func decodeSOAP(b []byte) (msg *etree.Element, isEnvelope bool, err error) {
	if len(b) > MaxEncoded {
		return nil, false, &Error{Reason: fmt.Sprintf("SOAP message is larger than %d bytes", MaxEncoded)}
	}
	if err := ValidateRoundTrip(b); err != nil {
		return nil, false, &Error{Reason: "SOAP message is XML that parsers may read differently", Err: err}
	}
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveDuplicateAttrs = true // so that checkTree sees and refuses them
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, false, &Error{Reason: "SOAP message is not well-formed XML", Err: err}
	}
	env := doc.Root()
	if env == nil {
		return nil, false, &Error{Reason: "SOAP message has no root element"}
	}
	switch ns := env.NamespaceURI(); {
	case env.Tag != "Envelope":
		return nil, false, &Error{Reason: "root element is " + describe(env) + ", not a SOAP Envelope"}
	case ns == soap12NS:
		return nil, true, &Error{Reason: "SOAP 1.2 envelope; the SAML SOAP binding uses SOAP 1.1 (saml-bindings 3.2)", Err: ErrSOAPVersion}
	case ns != soap11NS:
		return nil, false, &Error{Reason: "root element is " + describe(env) + ", not a SOAP 1.1 Envelope", Err: ErrSOAPVersion}
	}

	// SOAP 1.1 3: no DTD, no processing instructions. Attributes given twice are not well-formed
	// XML (XML 1.0 3.1) and parsers disagree on which one counts.
	ids := map[string]int{}
	for i, tok := range doc.Child {
		switch t := tok.(type) {
		case *etree.Directive:
			return nil, true, &Error{Reason: "SOAP message has a document type declaration (SOAP 1.1 3)"}
		case *etree.ProcInst:
			if t.Target != "xml" || i != 0 {
				return nil, true, &Error{Reason: "SOAP message has a processing instruction (SOAP 1.1 3)"}
			}
		case *etree.CharData:
			if !blank(t.Data) {
				return nil, true, &Error{Reason: "SOAP message has text outside the Envelope"}
			}
		}
	}
	if err := checkTree(env, ids); err != nil {
		return nil, true, err
	}

	// SOAP 1.1 4.1.1 and WS-I Basic Profile 1.1 R1011: an optional Header, then the Body, and
	// nothing after it. A second Body or a message beside it would be a place to hide a message.
	kids := env.ChildElements()
	bodies := 0
	for _, c := range kids {
		if isSOAP(c, "Body") {
			bodies++
		}
	}
	if bodies != 1 {
		return nil, true, &Error{Reason: fmt.Sprintf("SOAP Envelope has %d Body elements; it must have exactly one (SOAP 1.1 4.3)", bodies)}
	}
	var header *etree.Element
	if isSOAP(kids[0], "Header") {
		header = kids[0]
	}
	if n := len(kids); (header == nil && n != 1) || (header != nil && (n != 2 || !isSOAP(kids[1], "Body"))) {
		return nil, true, &Error{Reason: "SOAP Envelope must hold an optional Header and then the Body, nothing else; it holds " + describeAll(kids)}
	}
	body := kids[len(kids)-1]
	for _, el := range []*etree.Element{env, header, body} {
		if el != nil && hasText(el) {
			return nil, true, &Error{Reason: "SOAP " + el.Tag + " has text outside its elements"}
		}
	}
	if header != nil {
		if err := checkHeader(header); err != nil {
			return nil, true, err
		}
	}

	parts := body.ChildElements()
	if len(parts) != 1 {
		return nil, true, &Error{Reason: fmt.Sprintf("SOAP Body holds %d elements (%s); saml-bindings 3.2.2.1 allows exactly one SAML message", len(parts), describeAll(parts))}
	}
	msg = parts[0]
	if isSOAP(msg, "Fault") {
		return nil, true, parseFault(msg)
	}
	if msg.NamespaceURI() != samlpNS {
		return nil, true, &Error{Reason: "SOAP Body holds " + describe(msg) + ", not a SAML protocol message"}
	}
	for _, a := range msg.Attr {
		if a.Key == "ID" && ids[a.Value] > 1 {
			return nil, true, &Error{Reason: fmt.Sprintf("ID %q appears %d times in the SOAP message", a.Value, ids[a.Value])}
		}
	}
	ctx, err := etreeutils.NSBuildParentContext(msg)
	if err != nil {
		return nil, true, &Error{Reason: "SOAP namespace declarations are invalid", Err: err}
	}
	out, err := etreeutils.NSDetatch(ctx, msg)
	if err != nil {
		return nil, true, &Error{Reason: "SAML message cannot be detached from the SOAP envelope", Err: err}
	}
	return out, true, nil
}

// checkTree refuses processing instructions, DTDs and attributes given twice anywhere under el,
// and counts the values of ID attributes (by any prefix, as a signature library may look them up).
func checkTree(el *etree.Element, ids map[string]int) error {
	for i := range el.Attr {
		a := &el.Attr[i]
		for j := range i {
			if attrName(&el.Attr[j]) == attrName(a) {
				return &Error{Reason: fmt.Sprintf("attribute %s appears twice on %s", a.FullKey(), el.FullTag())}
			}
		}
		if a.Key == "ID" {
			ids[a.Value]++
		}
	}
	for _, tok := range el.Child {
		switch t := tok.(type) {
		case *etree.Element:
			if err := checkTree(t, ids); err != nil {
				return err
			}
		case *etree.ProcInst:
			return &Error{Reason: "SOAP message has a processing instruction (SOAP 1.1 3)"}
		case *etree.Directive:
			return &Error{Reason: "SOAP message has a document type declaration (SOAP 1.1 3)"}
		}
	}
	return nil
}

// attrName is an attribute's expanded name: namespace declarations by their prefix, others by
// namespace URI and local name.
func attrName(a *etree.Attr) string {
	switch {
	case a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns"):
		return "xmlns " + a.FullKey()
	case a.Space == "":
		return " " + a.Key
	}
	if ns := a.NamespaceURI(); ns != "" {
		return ns + " " + a.Key
	}
	return "undeclared " + a.FullKey()
}

// checkHeader refuses header blocks we are asked to understand (saml-bindings 3.2.2.2: this binding
// defines no headers) and SAML elements in the Header: a message is only ever taken from the Body,
// and one placed beside it is a signature wrapping attempt.
func checkHeader(header *etree.Element) error {
	for _, block := range header.ChildElements() {
		for i := range block.Attr {
			a := &block.Attr[i]
			if a.Key == "mustUnderstand" && a.NamespaceURI() == soap11NS {
				if v := strings.TrimSpace(a.Value); v == "1" || v == "true" {
					return &Error{Reason: "SOAP header block " + describe(block) + " has mustUnderstand=\"1\"; no header is understood here (saml-bindings 3.2.2.2)", Err: ErrSOAPMustUnderstand}
				}
			}
		}
	}
	var found *etree.Element
	var walk func(*etree.Element)
	walk = func(el *etree.Element) {
		for _, c := range el.ChildElements() {
			if found != nil {
				return
			}
			if ns := c.NamespaceURI(); ns == samlpNS || ns == samlNS {
				found = c
				return
			}
			walk(c)
		}
	}
	walk(header)
	if found != nil {
		return &Error{Reason: "SOAP Header holds a SAML element " + describe(found) + "; a SAML message belongs in the Body alone (saml-bindings 3.2.2.1)"}
	}
	return nil
}

func parseFault(f *etree.Element) *SOAPFault {
	// SOAP 1.1 4.4: faultcode and faultstring are unqualified children of Fault. Taken by local
	// name, whatever their namespace: this is an error report, read leniently.
	out := &SOAPFault{}
	var haveCode, haveString bool
	for _, c := range f.ChildElements() {
		switch {
		case c.Tag == "faultcode" && !haveCode:
			haveCode = true
			code := strings.TrimSpace(c.Text())
			if prefix, local, ok := strings.Cut(code, ":"); ok && lookupNamespace(c, prefix) == soap11NS {
				code = local
			}
			out.Code = printable(code, faultTextLen)
		case c.Tag == "faultstring" && !haveString:
			haveString = true
			out.String = printable(c.Text(), faultTextLen)
		}
	}
	return out
}

// lookupNamespace resolves prefix in the scope of el ("" when undeclared).
func lookupNamespace(el *etree.Element, prefix string) string {
	for e := el; e != nil; e = e.Parent() {
		for _, a := range e.Attr {
			if a.Space == "xmlns" && a.Key == prefix {
				return a.Value
			}
		}
	}
	return ""
}

func isSOAP(el *etree.Element, tag string) bool {
	return el.Tag == tag && el.NamespaceURI() == soap11NS
}

func describe(el *etree.Element) string {
	if ns := el.NamespaceURI(); ns != "" {
		return fmt.Sprintf("<%s> (namespace %s)", el.FullTag(), ns)
	}
	return fmt.Sprintf("<%s> (no namespace)", el.FullTag())
}

func describeAll(els []*etree.Element) string {
	if len(els) == 0 {
		return "nothing"
	}
	names := make([]string, len(els))
	for i, el := range els {
		names[i] = "<" + el.FullTag() + ">"
	}
	return strings.Join(names, ", ")
}

func blank(s string) bool { return strings.Trim(s, " \t\r\n") == "" }

func hasText(el *etree.Element) bool {
	for _, tok := range el.Child {
		if cd, ok := tok.(*etree.CharData); ok && !blank(cd.Data) {
			return true
		}
	}
	return false
}

// printable keeps at most the first max bytes of s, drops control and format characters (a
// peer's text must not forge log lines or reorder them with bidi overrides) and invalid UTF-8,
// and collapses white space.
func printable(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f':
			b.WriteByte(' ')
		case r == unicode.ReplacementChar, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
		default:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// ReadSOAPRequest reads the SAML message of a request to a SOAP endpoint (saml-bindings 3.2.3):
// a POST whose Content-Type is text/xml or application/soap+xml (any parameters; pysaml2 sends
// the latter) or that has a SOAPAction header of any value (saml-bindings 3.2.3.1: a responder
// must not depend on it); at most MaxEncoded bytes; then DecodeSOAP. Method and content type
// refusals wrap ErrNotSOAP; SOAPFaultCode gives the fault code for any error.
func ReadSOAPRequest(r *http.Request) (*etree.Element, error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Reason: "a SOAP request must be a POST, not " + printable(r.Method, 20), Err: ErrNotSOAP}
	}
	if !soapRequestHeaders(r.Header) {
		return nil, &Error{Reason: fmt.Sprintf("Content-Type %q and no SOAPAction header: not a SOAP request (send text/xml)", printable(r.Header.Get("Content-Type"), 100)), Err: ErrNotSOAP}
	}
	if r.ContentLength > MaxEncoded {
		return nil, &Error{Reason: fmt.Sprintf("SOAP message is larger than %d bytes", MaxEncoded)}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxEncoded+1))
	if err != nil {
		return nil, &Error{Reason: "SOAP request body could not be read", Err: err}
	}
	return DecodeSOAP(b)
}

func soapRequestHeaders(h http.Header) bool {
	if len(h.Values("SOAPAction")) > 0 {
		return true
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	return mt == "text/xml" || mt == "application/soap+xml"
}

// WriteSOAP answers a SOAP request with msg (a SAML response, signed as it is) in a SOAP envelope,
// status 200.
func WriteSOAP(w http.ResponseWriter, msg []byte) {
	writeSOAP(w, http.StatusOK, EncodeSOAP(msg))
}

// WriteSOAPFault answers a SOAP request with a SOAP 1.1 Fault, status 500 (SOAP 1.1 6.2,
// saml-bindings 3.2.3.3). code is a fault code of SOAP 1.1 4.4.1 (SOAPFaultClient, ...), with
// optional dotted refinements ("Client.Authentication"); a code that is not such a name becomes
// Server. text is the faultstring; it reaches the peer, so it should not hold internal detail.
func WriteSOAPFault(w http.ResponseWriter, code, text string) {
	code = strings.TrimPrefix(code, "soap-env:")
	if !faultCodeName(code) {
		code = SOAPFaultServer
	}
	var b bytes.Buffer
	b.WriteString(soapEnvelopeStart)
	b.WriteString(`<soap-env:Fault><faultcode>soap-env:`)
	b.WriteString(code)
	b.WriteString(`</faultcode><faultstring>`)
	_ = xml.EscapeText(&b, []byte(text)) // writes to a bytes.Buffer cannot fail
	b.WriteString(`</faultstring></soap-env:Fault>`)
	b.WriteString(soapEnvelopeEnd)
	writeSOAP(w, http.StatusInternalServerError, b.Bytes())
}

func faultCodeName(code string) bool {
	if code == "" {
		return false
	}
	for i, r := range code {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}

func writeSOAP(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", soapContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// saml-bindings 3.2.3.2: proxies must not cache SAML messages.
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the peer is gone; nothing to tell it
}

// SOAPClient sends SAML requests to peers' SOAP endpoints (saml-bindings 3.2.3), e.g. the back
// channel legs of Single Logout.
type SOAPClient struct {
	// HTTP makes the calls; nil means a client on http.DefaultTransport. Its CheckRedirect is not
	// used: redirects are never followed.
	HTTP *http.Client
}

// Call POSTs msg (a signed SAML request) in a SOAP envelope to url and returns the SAML message
// of the answer, detached as DecodeSOAP returns it, for the caller to verify. It gives up when
// ctx is done (after 30 seconds when ctx has no deadline and the client no Timeout) and reads
// at most MaxEncoded bytes of the answer.
//
// Errors: a network failure or timeout wraps the error of net/http, so that
// errors.Is(err, context.DeadlineExceeded) or a net.Error's Timeout tells a timeout and
// errors.Is(err, syscall.ECONNREFUSED) a refused connection; a SOAP Fault (status 500, or 200) is
// a *SOAPFault; any other status, a redirect, or a body that is no SOAP envelope is a
// *SOAPHTTPError; a SOAP answer that DecodeSOAP refuses is its *Error.
func (c *SOAPClient) Call(ctx context.Context, url string, msg []byte) (*etree.Element, error) {
	var hc http.Client
	if c != nil && c.HTTP != nil {
		hc = *c.HTTP
	}
	// A redirect would turn the POST into a GET or resend the message to a place metadata did
	// not name; its status is reported instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if _, ok := ctx.Deadline(); !ok && hc.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultSOAPTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(EncodeSOAP(msg)))
	if err != nil {
		return nil, fmt.Errorf("soap request: %w", err)
	}
	req.Header.Set("Content-Type", soapContentType)
	req.Header["SOAPAction"] = []string{soapAction} // spelled as in SOAP 1.1 6.1.1, for picky servers
	// saml-bindings 3.2.3.2
	req.Header.Set("Cache-Control", "no-cache, no-store")
	req.Header.Set("Pragma", "no-cache")
	// net/http wraps ctx's error (context.DeadlineExceeded) in its own, on both paths.
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("soap call: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxEncoded+1))
	if err != nil {
		return nil, fmt.Errorf("read soap answer: %w", err)
	}
	tooLong := len(body) > MaxEncoded
	var fault *SOAPFault
	switch resp.StatusCode {
	case http.StatusOK:
		if tooLong {
			return nil, &Error{Reason: fmt.Sprintf("SOAP answer is larger than %d bytes", MaxEncoded)}
		}
		el, isEnvelope, err := decodeSOAP(body)
		if err == nil {
			return el, nil
		}
		if isEnvelope || errors.As(err, &fault) {
			return nil, err
		}
	case http.StatusInternalServerError:
		// SOAP 1.1 6.2, saml-bindings 3.2.3.3: a SOAP error comes with status 500 and a Fault.
		if !tooLong {
			if _, _, err := decodeSOAP(body); errors.As(err, &fault) {
				return nil, fault
			}
		}
	}
	return nil, &SOAPHTTPError{
		Status:      resp.StatusCode,
		ContentType: printable(resp.Header.Get("Content-Type"), snippetLen),
		Snippet:     printable(string(body[:min(len(body), snippetLen)]), snippetLen),
		Body:        body[:min(len(body), MaxErrorBody)],
	}
}
