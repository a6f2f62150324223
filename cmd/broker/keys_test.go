package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/local"
)

// TestKeysCommands runs broker keys list, rotate and migrate on a data directory with local keys.
func TestKeysCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	tn := db.Tenant{Slug: "acme", Name: "Acme"}
	if err := s.CreateTenant(context.Background(), &tn); err != nil {
		t.Fatal(err)
	}
	s.Close()
	keysCmd := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"keys"}, args...), &out, env(map[string]string{"BROKER_DATA_DIR": dir, "BROKER_LOG_LEVEL": "warn", "BROKER_KEY_ROTATION_OVERLAP": "48h"}))
		return out.String(), err
	}
	out, err := keysCmd("list", "acme")
	if err != nil || !strings.Contains(out, "local") || !strings.Contains(out, "current") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = keysCmd("rotate", tn.ID) // by ID as well as by slug
	if err != nil || !strings.Contains(out, "published as next") {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	if _, err := keysCmd("rotate", "acme"); err == nil || !strings.Contains(err.Error(), "pending") {
		t.Errorf("second rotate: %v; want a pending rotation", err)
	}
	out, err = keysCmd("list", "acme")
	if err != nil || !strings.Contains(out, "next") {
		t.Fatalf("list after rotate: %v\n%s", err, out)
	}
	s, err = sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.ListSigningKeys(context.Background(), tn.ID)
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows: %v, %v", rows, err)
	}
	if d := rows[1].ActivatesAt.Sub(rows[1].CreatedAt); d != 48*time.Hour {
		t.Errorf("overlap %s; want the configured 48h", d)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "acme"}, "vault-addr"},
		{[]string{"rotate"}, "usage"},
		{[]string{"rotate", "--all"}, "--all is for keys migrate only"},
		{[]string{"rotate", "nope"}, `no tenant "nope"`},
		{[]string{"spin", "acme"}, "unknown keys command"},
	} {
		if _, err := keysCmd(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("keys %v: %v; want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestRotationSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"BROKER_KEY_ROTATION_OVERLAP": "10s"}, "key-rotation-overlap"},
		{map[string]string{"BROKER_KEY_ROTATION_PERIOD": "240h"}, "key-rotation-period"},
		{map[string]string{"BROKER_KEY_ROTATION_PERIOD": "2160h"}, ""},
	} {
		_, err := loadConfig("serve", nil, env(tc.env))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v; want %q", tc.env, err, tc.want)
		}
	}
}

// TestScheduledRotation: the janitor's rotateDue rotates the tenants whose key is due, once.
func TestScheduledRotation(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(filepath.Join(dir, "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var ids []string
	for _, slug := range []string{"acme", "beta", "idle"} {
		tn := db.Tenant{Slug: slug, Name: slug}
		if err := s.CreateTenant(ctx, &tn); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tn.ID)
	}
	ls, err := local.New(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ring, err := keys.NewRing(keys.RingOptions{Store: s, Primary: ls, Overlap: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ring.KeyPair(ctx, ids[0]); err != nil { // acme used now
		t.Fatal(err)
	}
	now = now.Add(12 * time.Hour)
	if _, err := ring.KeyPair(ctx, ids[1]); err != nil { // beta 12h later; idle never
		t.Fatal(err)
	}
	period := 24 * time.Hour
	count := func(id string) int {
		rows, err := s.ListSigningKeys(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return len(rows)
	}
	logger := slog.New(slog.DiscardHandler)
	now = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	rotateDue(ctx, s, ring, logger, period)
	rotateDue(ctx, s, ring, logger, period) // a second janitor run (or replica): nothing more
	if got := []int{count(ids[0]), count(ids[1]), count(ids[2])}; got[0] != 2 || got[1] != 1 || got[2] != 0 {
		t.Errorf("keys per tenant after the period %v; want [2 1 0]", got)
	}
}
