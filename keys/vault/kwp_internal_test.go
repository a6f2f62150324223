package vault

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestWrapKWP checks the two examples of RFC 5649 section 6.
func TestWrapKWP(t *testing.T) {
	kek, _ := hex.DecodeString("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, tc := range []struct{ name, key, want string }{
		{"20 octets", "c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"7 octets", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, _ := hex.DecodeString(tc.key)
			want, _ := hex.DecodeString(tc.want)
			got, err := wrapKWP(kek, key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("wrap = %x; want %x", got, want)
			}
		})
	}
	if _, err := wrapKWP(kek, nil); err == nil {
		t.Error("empty plaintext wrapped")
	}
}
