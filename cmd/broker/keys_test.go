package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
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
