package binding

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ValidateRoundTrip refuses XML that does not survive a round trip through encoding/xml token by
// token: names with several colons, odd namespace declarations and the other shapes on which
// encoding/xml and an XML signature library could read different documents from the same bytes.
//
// It makes the check of github.com/mattermost/xml-roundtrip-validator (Apache License 2.0), whose
// token comparison it follows, with one decoder straight over the bytes and a reused encoder
// buffer instead of a byte-at-a-time reader and a new encoder per token; FuzzRoundTripReference
// checks that both accept and refuse the same documents.
func ValidateRoundTrip(doc []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = false
	dec.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	var rt *roundTripper // taken from the pool at the first token that needs the full round trip
	defer func() {
		if rt != nil {
			rt.release()
		}
	}()
	for {
		offset := dec.InputOffset()
		tok, err := dec.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if survivesRoundTrip(tok) {
			continue
		}
		if rt == nil {
			rt = roundTrippers.Get().(*roundTripper)
		}
		if err := rt.check(tok); err != nil {
			line := bytes.Count(doc[:offset], []byte{'\n'}) + 1
			return fmt.Errorf("xml round trip: in token at line %d, byte %d: %w", line, offset, err)
		}
	}
}

// roundTrippers keeps the encoder buffers of the full round trip for reuse.
var roundTrippers = sync.Pool{New: func() any {
	rt := &roundTripper{}
	rt.w = bufio.NewWriterSize(&rt.buf, 4096)
	return rt
}}

type roundTripper struct {
	buf bytes.Buffer
	w   *bufio.Writer
	r   bytes.Reader
}

// release empties rt, so that nothing of a document stays behind, and gives it back to the pool.
func (rt *roundTripper) release() {
	rt.buf.Reset()
	rt.w.Reset(&rt.buf)
	rt.r.Reset(nil)
	if rt.buf.Cap() <= maxPooledBuffer {
		roundTrippers.Put(rt)
	}
}

// check encodes one token, decodes it again and compares (survivesRoundTrip tells the tokens
// that need not take it).
func (rt *roundTripper) check(before xml.Token) error {
	rt.buf.Reset()
	rt.w.Reset(&rt.buf)
	enc := xml.NewEncoder(rt.w) // reuses rt.w: bufio.NewWriter returns a large-enough *bufio.Writer as is
	if end, ok := before.(xml.EndElement); ok {
		// xml.Encoder wants a StartElement for every EndElement.
		if err := enc.EncodeToken(xml.StartElement{Name: end.Name}); err != nil {
			return err
		}
	}
	if err := enc.EncodeToken(before); err != nil {
		return err
	}
	if err := enc.Flush(); err != nil {
		return err
	}
	encoded := rt.buf.Bytes()
	rt.r.Reset(encoded)
	dec := xml.NewDecoder(&rt.r)
	dec.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	if _, ok := before.(xml.EndElement); ok {
		if _, err := dec.RawToken(); err != nil {
			return err
		}
	}
	after, err := dec.RawToken()
	if err != nil {
		return err
	}
	if !tokenEquals(before, after) {
		return fmt.Errorf("expected %v, observed %v", before, after)
	}
	if off := dec.InputOffset(); off != int64(len(encoded)) {
		return fmt.Errorf("unexpected overflow after token: %s", encoded[off:])
	}
	return nil
}

// survivesRoundTrip reports the tokens that check would give back unchanged without running it:
// most of a SAML message. Text of printable ASCII, tabs and line ends is escaped by the encoder
// and unescaped by the decoder symmetrically (an empty run is left to check: it does not read back
// at all), and a plain ASCII name (plainName) reads back as itself. So an end tag (compared by its
// local name only) survives when its local name is plain, and a start tag when its local name is
// plain, its prefix is such text, and every attribute has a plain local name and such a value
// and is one of:
//
//   - unprefixed, other than xmlns;
//   - a default namespace declaration (xmlns) on an unprefixed element: written and read back
//     as it is;
//   - a namespace declaration (xmlns:p), p not xmlns;
//   - prefixed (p:name), with a plain prefix that neither starts with "_" nor with "xml" in any
//     case; when the token also declares namespaces, all such attributes have one prefix.
//
// The encoder writes the element's prefix as xmlns="prefix", and declares a prefix of its own
// right before the first attribute of each prefix space: "_xmlns" for the declarations
// (xmlns:_xmlns="xmlns" _xmlns:p="..."), the prefix itself for the others (xmlns:p="p" p:name;
// the rules above keep it from being renamed). fixNamespacePrefixes undoes that one declaration at
// a time: it drops the first attribute in the xmlns space that is followed by one in the space it
// names, and renames that space back. Each one it drops is the encoder's: the token's own
// declarations read back in the _xmlns space, so they pair with nothing until the encoder's
// _xmlns declaration (the first of its declarations) is dropped. From then on one of them stands
// right before an attribute of the prefix it declares (xmlns:p p:name) only once the encoder's
// declaration of p, which stood between them, is gone: with a single prefix that was the last
// one to drop and the loop has stopped; with two, the token's own declaration would go next, so
// such a token takes the full round trip.
//
// The rest (comments, directives, processing instructions, other text, names and attributes)
// takes the full round trip. FuzzSurvivesRoundTrip, FuzzSurvivesRoundTripStart and
// FuzzSurvivesRoundTripAttrs check the shortcut against it.
func survivesRoundTrip(tok xml.Token) bool {
	switch t := tok.(type) {
	case xml.CharData:
		return len(t) > 0 && plainText(t)
	case xml.EndElement:
		return plainName(t.Name.Local)
	case xml.StartElement:
		if !plainName(t.Name.Local) || !plainText(t.Name.Space) {
			return false
		}
		declares, prefix, prefixes := false, "", 0
		for _, a := range t.Attr {
			if !plainName(a.Name.Local) || !plainText(a.Value) {
				return false
			}
			switch a.Name.Space {
			case "":
				if a.Name.Local == "xmlns" && t.Name.Space != "" {
					return false
				}
			case "xmlns":
				if a.Name.Local == "xmlns" {
					return false
				}
				declares = true
			default:
				if !plainPrefix(a.Name.Space) {
					return false
				}
				if a.Name.Space != prefix {
					prefix = a.Name.Space
					prefixes++
				}
			}
		}
		return !declares || prefixes <= 1
	}
	return false
}

// plainPrefix: an attribute prefix the encoder declares as itself: a plain name that starts
// neither with "_" (the encoder's own "_xmlns") nor with "xml" in any case (which it prefixes
// with "_").
func plainPrefix(s string) bool {
	return plainName(s) && s[0] != '_' && !(len(s) >= 3 && strings.EqualFold(s[:3], "xml"))
}

// plainName: an ASCII XML name on its own, without a colon: a letter or underscore, then
// letters, digits, '.', '-', '_'. (A local name cut from a prefixed one, "0" from "a:0", need
// not be a name on its own.)
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// plainText: printable ASCII, tabs and line ends only. (Generic so that text is checked where
// it lies, not copied into a string first.)
func plainText[T ~string | ~[]byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c > 0x7e {
			return false
		}
	}
	return true
}

func tokenEquals(before, after xml.Token) bool {
	switch t1 := before.(type) {
	case xml.CharData:
		t2, ok := after.(xml.CharData)
		return ok && bytes.Equal(t1, t2)
	case xml.Comment:
		t2, ok := after.(xml.Comment)
		return ok && bytes.Equal(t1, t2)
	case xml.Directive:
		t2, ok := after.(xml.Directive)
		return ok && bytes.Equal(t1, t2)
	case xml.EndElement:
		t2, ok := after.(xml.EndElement)
		// the local name must survive; namespace prefixes are erased
		return ok && t1.Name.Local == t2.Name.Local && t2.Name.Space == ""
	case xml.ProcInst:
		t2, ok := after.(xml.ProcInst)
		return ok && t1.Target == t2.Target && bytes.Equal(t1.Inst, t2.Inst)
	case xml.StartElement:
		t2, ok := after.(xml.StartElement)
		if !ok {
			return false
		}
		fixNamespacePrefixes(&t1, &t2)
		if t1.Name != t2.Name || len(t1.Attr) != len(t2.Attr) {
			return false
		}
		for i, a := range t1.Attr {
			if a != t2.Attr[i] {
				return false
			}
		}
		return true
	}
	return false
}

// fixNamespacePrefixes undoes the xmlns attributes that encoding/xml adds when it re-encodes
// prefixed names, so that the two tokens can be compared.
func fixNamespacePrefixes(before, after *xml.StartElement) {
	if len(after.Attr) <= len(before.Attr) {
		return
	}
	// An erased tag prefix: its xmlns attribute is always the first one.
	if before.Name.Space != "" && after.Name.Space == "" && after.Attr[0].Name == (xml.Name{Local: "xmlns"}) {
		after.Name.Space = after.Attr[0].Value
		after.Attr = after.Attr[1:]
	}
	// Attribute prefixes: the xmlns attribute comes right before the prefixed attribute.
	for len(after.Attr) > len(before.Attr) && len(after.Attr) > 1 {
		var xmlns *xml.Attr
		i := 1
		for ; i < len(after.Attr); i++ {
			if after.Attr[i-1].Name.Space == "xmlns" && after.Attr[i-1].Name.Local == after.Attr[i].Name.Space {
				xmlns = &after.Attr[i-1]
				break
			}
		}
		if xmlns == nil {
			return
		}
		prefix, space := xmlns.Name.Local, xmlns.Value
		copy(after.Attr[i-1:], after.Attr[i:])
		after.Attr = after.Attr[:len(after.Attr)-1]
		for j := range after.Attr {
			if after.Attr[j].Name.Space == prefix {
				after.Attr[j].Name.Space = space
			}
		}
	}
}
