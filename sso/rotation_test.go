package sso_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/keystest"
	"github.com/sloworks/broker/keys/local"
)

// TestKeyRotationMetadata rotates a tenant's key across the overlap (a fake clock for the key
// ring): both metadata documents list every published certificate, the old key signs until the
// switch and the new one after, and each login's assertion verifies with a certificate the
// metadata lists at that moment.
func TestKeyRotationMetadata(t *testing.T) {
	clock := keystest.NewClock(time.Now().UTC())
	overlap := 7 * 24 * time.Hour
	var ring *keys.Ring
	h := newHarnessWith(t, func(store *sqlite.Store, dir string) keys.Source {
		ls, err := local.New(filepath.Join(dir, "keys"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if ring, err = keys.NewRing(keys.RingOptions{Store: store, Primary: ls, Overlap: overlap, Now: clock.Now}); err != nil {
			t.Fatal(err)
		}
		return ring
	})
	app := h.fx["acme"].apps[0]
	idpCerts := func() []*x509.Certificate {
		return h.metadataCerts("acme", "/idp/metadata", func(ed *saml.EntityDescriptor) []saml.KeyDescriptor { return ed.IDPSSODescriptors[0].KeyDescriptors })
	}
	spCerts := func() []*x509.Certificate {
		return h.metadataCerts("acme", "/sp/metadata", func(ed *saml.EntityDescriptor) []saml.KeyDescriptor { return ed.SPSSODescriptors[0].KeyDescriptors })
	}
	// stage checks both documents list want, and that a login's assertion is signed by signer.
	stage := func(name string, signer *x509.Certificate, want ...*x509.Certificate) {
		t.Helper()
		for doc, got := range map[string][]*x509.Certificate{"idp": idpCerts(), "sp": spCerts()} {
			if len(got) != len(want) {
				t.Fatalf("%s: %s metadata lists %d certificates, want %d", name, doc, len(got), len(want))
			}
			for i := range want {
				if !got[i].Equal(want[i]) {
					t.Fatalf("%s: %s metadata certificate %d differs", name, doc, i)
				}
			}
		}
		r, _ := h.browser().login("acme", app, nil) // a new user session each time
		f := parseForm(t, r.body)
		d := etree.NewDocument()
		if err := d.ReadFromBytes(f.xml); err != nil {
			t.Fatal(err)
		}
		ael := d.Root().SelectElement("Assertion")
		// An app that refreshed the metadata accepts any listed certificate...
		if _, err := binding.VerifyEnveloped(ael.Copy(), idpCerts(), false); err != nil {
			t.Fatalf("%s: assertion does not verify with the metadata's certificates: %v", name, err)
		}
		// ...and it is the expected key that signed.
		if _, err := binding.VerifyEnveloped(ael.Copy(), []*x509.Certificate{signer}, false); err != nil {
			t.Fatalf("%s: assertion not signed by the expected key: %v", name, err)
		}
	}

	old := h.brokerCert("acme")
	stage("before rotation", old, old)

	t0 := clock.Now()
	k, err := ring.Rotate(context.Background(), h.fx["acme"].tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	next, err := x509.ParseCertificate(k.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	stage("next key published", old, old, next)
	clock.Set(t0.Add(overlap - time.Second))
	stage("a second before the switch", old, old, next)
	clock.Set(t0.Add(overlap))
	stage("at the switch", next, next, old)
	clock.Set(t0.Add(2*overlap - time.Second))
	stage("end of the overlap", next, next, old)
	clock.Set(t0.Add(2 * overlap))
	stage("after the overlap", next, next)
	// Beta was never rotated.
	if got := h.brokerCert("beta"); got.Equal(old) || got.Equal(next) {
		t.Error("tenant beta publishes acme's certificate")
	}
}
