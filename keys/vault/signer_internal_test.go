package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/sloworks/broker/keys"
)

func TestDecodeSignature(t *testing.T) {
	sig := []byte{1, 2, 3, 250}
	b64 := base64.StdEncoding.EncodeToString(sig)
	tests := []struct {
		in      string
		version int
		ok      bool
	}{
		{"vault:v1:" + b64, 1, true},
		{"vault:v12:" + b64, 12, true},
		{"vault:v2:" + b64, 1, false}, // signed by another version than the pinned one
		{"vault:v1:" + b64, 2, false},
		{"vault:vx:" + b64, 1, false},
		{"vault:v1" + b64, 1, false},
		{b64, 1, false},
		{"vault:v1:!!", 1, false},
		{"", 1, false},
	}
	for _, tt := range tests {
		got, err := decodeSignature(tt.in, tt.version)
		if (err == nil) != tt.ok {
			t.Errorf("decodeSignature(%q, %d) = %v; ok want %v", tt.in, tt.version, err, tt.ok)
			continue
		}
		if tt.ok && !bytes.Equal(got, sig) {
			t.Errorf("decodeSignature(%q) = %x; want %x", tt.in, got, sig)
		}
	}
}

// FuzzDecodeSignature: Transit's answer is outside input; decoding never panics, and what it
// accepts is exactly the encoding of what it returns.
func FuzzDecodeSignature(f *testing.F) {
	f.Add("vault:v1:AQID+g==", 1)
	f.Add("vault:v7:", 7)
	f.Add("vault:v-1:AA==", -1)
	f.Fuzz(func(t *testing.T, s string, version int) {
		sig, err := decodeSignature(s, version)
		if err != nil {
			return
		}
		if want := fmt.Sprintf("vault:v%d:%s", version, base64.StdEncoding.EncodeToString(sig)); want != s {
			t.Errorf("accepted %q, which is not the encoding %q of what it returned", s, want)
		}
	})
}

// TestUnavailableReadsPlainly: what the logout log and the broker's log show when Vault cannot
// sign is one line in plain words, and still an ErrUnavailable carrying the client's error.
func TestUnavailableReadsPlainly(t *testing.T) {
	sealed := &api.ResponseError{HTTPMethod: "PUT", URL: "http://127.0.0.1:8200/v1/transit/sign/broker-x", StatusCode: 503, Errors: []string{"Vault is sealed"}}
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:8200/v1/transit/sign/broker-x", Err: errors.New("dial tcp 127.0.0.1:8200: connect: connection refused")}
	for _, c := range []struct {
		err  error
		want string
	}{
		{sealed, "vault sign broker-x: signing unavailable: Vault answered HTTP 503: Vault is sealed"},
		{refused, "vault sign broker-x: signing unavailable: cannot reach Vault: dial tcp 127.0.0.1:8200: connect: connection refused"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "vault sign broker-x: signing unavailable: Vault did not answer in time"},
		{errors.New("something else"), "vault sign broker-x: signing unavailable: something else"},
	} {
		err := unavailable("sign broker-x", c.err)
		if err.Error() != c.want {
			t.Errorf("got  %q\nwant %q", err, c.want)
		}
		if !errors.Is(err, keys.ErrUnavailable) || !errors.Is(err, c.err) {
			t.Errorf("%q does not wrap both keys.ErrUnavailable and the cause", err)
		}
	}
}
