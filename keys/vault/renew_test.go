package vault_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/sloworks/broker/keys"
)

// TestRenewToken: a short-lived renewable token is kept alive while RenewToken runs (the same
// token without renewal expires), and RenewToken returns when its context ends.
func TestRenewToken(t *testing.T) {
	v := startVault(t)
	root := v.Root(t)
	brokerToken(t, root) // writes the policy
	shortToken := func() string {
		yes := true
		sec, err := root.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"broker"}, TTL: "4s", ExplicitMaxTTL: "5m", Renewable: &yes})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Auth.ClientToken
	}
	renewed, unrenewed := newSource(t, v.Client(t, shortToken()), ""), newSource(t, v.Client(t, shortToken()), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); renewed.RenewToken(ctx) }()

	time.Sleep(9 * time.Second) // more than twice the TTL
	sum := sha256.Sum256([]byte("after the TTL"))
	kp := keyPair(t, renewed, tenantA)
	if _, err := kp.Signer.Sign(nil, sum[:], crypto.SHA256); err != nil {
		t.Fatalf("sign with the renewed token: %v", err)
	}
	if _, err := unrenewed.KeyPair(context.Background(), tenantB); !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("the token without renewal still works after its TTL: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RenewToken did not stop with its context")
	}
}
