package vault_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sloworks/broker/keys/vault"
)

func TestSettingsDefaults(t *testing.T) {
	got := vault.Settings{Addr: "https://vault.example.com:8200", Token: "t"}.WithDefaults()
	want := vault.Settings{Addr: "https://vault.example.com:8200", Token: "t", Mount: "transit", KeyPrefix: "broker-", KeyType: "rsa-2048", Timeout: 5 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("defaults with a token: %v", err)
	}
	if err := (vault.Settings{}).Validate(); err != nil {
		t.Errorf("Vault off: %v", err)
	}
	set := vault.Settings{Addr: "http://127.0.0.1:8200", Mount: "secrets/broker-transit", KeyPrefix: "sso.", KeyType: "rsa-4096", RoleID: "r", SecretIDFile: "/run/secrets/sid", Timeout: 2 * time.Minute}
	if err := set.Validate(); err != nil {
		t.Errorf("AppRole, nested mount, rsa-4096: %v", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	on := func(s vault.Settings) vault.Settings {
		s.Addr = "https://vault.example.com"
		return s.WithDefaults()
	}
	tests := []struct {
		name string
		s    vault.Settings
		want []string // every message must be in the one error
	}{
		{"no credentials", on(vault.Settings{}), []string{"no credentials"}},
		{"AppRole without secret ID file", on(vault.Settings{RoleID: "r"}), []string{"vault-secret-id-file is not"}},
		{"AppRole without role ID", on(vault.Settings{SecretIDFile: "/f"}), []string{"vault-role-id is not"}},
		{"token and AppRole", on(vault.Settings{Token: "t", RoleID: "r", SecretIDFile: "/f"}), []string{"choose one"}},
		{"relative address", vault.Settings{Addr: "vault:8200", Token: "t"}.WithDefaults(), []string{`vault-addr "vault:8200"`}},
		{"every problem at once", on(vault.Settings{Token: "t", Mount: "/transit/", KeyPrefix: "-x", KeyType: "ed25519", Timeout: time.Millisecond}),
			[]string{"vault-transit-mount", "vault-key-prefix", `vault-key-type "ed25519"`, "vault-timeout 1ms"}},
		{"prefix with a slash", on(vault.Settings{Token: "t", KeyPrefix: "a/b"}), []string{"vault-key-prefix"}},
		{"Vault settings without an address", vault.Settings{RoleID: "r", KeyType: "rsa-4096"}, []string{"vault-role-id, vault-key-type set but vault-addr is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines < len(tt.want) {
				t.Errorf("%d lines for %d problems:\n%v", lines, len(tt.want), err)
			}
			if strings.Contains(err.Error(), `"t"`) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

func TestSettingsClient(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "from-the-environment")
	t.Setenv("VAULT_ADDR", "http://elsewhere.invalid:1")
	c, login, err := vault.Settings{Addr: "http://127.0.0.1:8200", Token: "chosen"}.WithDefaults().Client()
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != "chosen" || c.Address() != "http://127.0.0.1:8200" || login != nil {
		t.Errorf("token %q address %q login %v; want the settings' token and address, no login", c.Token(), c.Address(), login != nil)
	}

	dir := t.TempDir()
	sid := filepath.Join(dir, "sid")
	approle := vault.Settings{Addr: "http://127.0.0.1:8200", RoleID: "r", SecretIDFile: sid}.WithDefaults()
	if _, _, err := approle.Client(); err == nil || !strings.Contains(err.Error(), "vault-secret-id-file") {
		t.Errorf("missing secret ID file: %v", err)
	}
	os.WriteFile(sid, []byte(" \n"), 0o600)
	if _, _, err := approle.Client(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty secret ID file: %v", err)
	}
	os.WriteFile(sid, []byte("s3cret\n"), 0o600)
	c, login, err = approle.Client()
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() != "" || login == nil {
		t.Errorf("AppRole client: token %q (want none before login; VAULT_TOKEN not taken), login %v", c.Token(), login != nil)
	}
}
