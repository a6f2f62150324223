package main

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadyzReportsVault: with Vault configured but unreachable, the broker still starts, and
// /readyz says signing is unavailable while /healthz stays up.
func TestReadyzReportsVault(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	env := map[string]string{"BROKER_VAULT_ADDR": closed, "BROKER_VAULT_TOKEN": "not-a-real-token", "BROKER_VAULT_TIMEOUT": "1s"}
	cfg, err := loadConfig("serve", []string{"--addr", freeAddr(t), "--data-dir", filepath.Join(t.TempDir(), "data"), "--bootstrap-token", "readyz-test-token-0123"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(context.Background(), cfg, newLogger(cfg, io.Discard), io.Discard)
	if err != nil {
		t.Fatalf("the broker must start while Vault is down: %v", err)
	}
	defer srv.close()
	defer srv.ln.Close()
	for path, want := range map[string]struct {
		status int
		body   string
	}{"/readyz": {503, "signing keys unavailable"}, "/healthz": {200, "ok"}} {
		rec := httptest.NewRecorder()
		srv.echo.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want.status || !strings.Contains(rec.Body.String(), want.body) {
			t.Errorf("%s: %d %q; want %d %q", path, rec.Code, rec.Body.String(), want.status, want.body)
		}
	}
}
