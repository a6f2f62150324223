package vault

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Defaults of the Vault settings, applied by WithDefaults when Vault is configured.
const (
	DefaultMount     = "transit"
	DefaultKeyPrefix = "broker-"
	DefaultKeyType   = "rsa-2048"
	DefaultTimeout   = 5 * time.Second
)

// KeyTypes are the Transit key types the broker creates keys with (only on creation: an existing
// key keeps its type).
var KeyTypes = []string{"rsa-2048", "rsa-3072", "rsa-4096"}

// Settings is how the broker reaches Vault. The zero value (no Addr) means Vault is not used.
// TLS, namespace and retries come from Vault's standard environment variables (VAULT_CACERT,
// VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_SKIP_VERIFY, VAULT_TLS_SERVER_NAME,
// VAULT_NAMESPACE, VAULT_MAX_RETRIES), read by api.DefaultConfig.
type Settings struct {
	Addr         string        // Vault's URL; empty = Vault not used
	Token        string        // a Vault token; or AppRole below
	RoleID       string        // AppRole role ID
	SecretIDFile string        // file holding the AppRole secret ID (read at every login)
	Mount        string        // Transit mount path
	KeyPrefix    string        // Transit key name = KeyPrefix + tenant ID
	KeyType      string        // type of new keys: rsa-2048, rsa-3072 or rsa-4096
	Timeout      time.Duration // per Vault request, retries included
}

// Enabled reports whether Vault is configured.
func (s Settings) Enabled() bool { return s.Addr != "" }

// WithDefaults fills the unset settings that have a default.
func (s Settings) WithDefaults() Settings {
	if s.Mount == "" {
		s.Mount = DefaultMount
	}
	if s.KeyPrefix == "" {
		s.KeyPrefix = DefaultKeyPrefix
	}
	if s.KeyType == "" {
		s.KeyType = DefaultKeyType
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	return s
}

var (
	// A Transit key name starts and ends with a word character, dots and dashes between
	// (Vault's framework.GenericNameRegex); the prefix is its start, the tenant ID its end.
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	mountRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
)

// Validate reports every problem at once, each naming the setting (as its flag name). The
// zero Settings are valid (Vault off); otherwise call it on WithDefaults().
func (s Settings) Validate() error {
	if !s.Enabled() {
		var set []string
		for _, f := range []struct{ name, v string }{
			{"vault-token", s.Token}, {"vault-role-id", s.RoleID}, {"vault-secret-id-file", s.SecretIDFile},
			{"vault-transit-mount", s.Mount}, {"vault-key-prefix", s.KeyPrefix}, {"vault-key-type", s.KeyType},
		} {
			if f.v != "" {
				set = append(set, f.name)
			}
		}
		if s.Timeout != 0 {
			set = append(set, "vault-timeout")
		}
		if len(set) > 0 {
			return fmt.Errorf("%s set but vault-addr is empty: set vault-addr to use Vault keys, or unset them to use local keys", strings.Join(set, ", "))
		}
		return nil
	}
	var errs []error
	u, err := url.Parse(s.Addr)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("vault-addr %q: %w", s.Addr, err))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("vault-addr %q: want an absolute http:// or https:// URL", s.Addr))
	}
	appRole := s.RoleID != "" || s.SecretIDFile != ""
	switch {
	case s.Token != "" && appRole:
		errs = append(errs, errors.New("vault-token and AppRole (vault-role-id, vault-secret-id-file) are both set: choose one"))
	case s.RoleID != "" && s.SecretIDFile == "":
		errs = append(errs, errors.New("vault-role-id is set but vault-secret-id-file is not: AppRole needs both"))
	case s.RoleID == "" && s.SecretIDFile != "":
		errs = append(errs, errors.New("vault-secret-id-file is set but vault-role-id is not: AppRole needs both"))
	case s.Token == "" && !appRole:
		errs = append(errs, errors.New("vault-addr is set but no credentials: set vault-token (or VAULT_TOKEN), or vault-role-id and vault-secret-id-file"))
	}
	errs = append(errs, s.transitErrors()...)
	return errors.Join(errs...)
}

// transitErrors checks the settings of the Transit keys themselves.
func (s Settings) transitErrors() []error {
	var errs []error
	if !mountRE.MatchString(s.Mount) {
		errs = append(errs, fmt.Errorf("vault-transit-mount %q: want a mount path such as %q (letters, digits, _ . - and inner /)", s.Mount, DefaultMount))
	}
	if !prefixRE.MatchString(s.KeyPrefix) {
		errs = append(errs, fmt.Errorf("vault-key-prefix %q: want up to 64 letters, digits, _ . - starting with a letter, digit or _", s.KeyPrefix))
	}
	if !validKeyType(s.KeyType) {
		errs = append(errs, fmt.Errorf("vault-key-type %q: want one of %s", s.KeyType, strings.Join(KeyTypes, ", ")))
	}
	if s.Timeout < 100*time.Millisecond || s.Timeout > 2*time.Minute {
		errs = append(errs, fmt.Errorf("vault-timeout %s: from 100ms to 2m", s.Timeout))
	}
	return errs
}

func validKeyType(t string) bool {
	for _, k := range KeyTypes {
		if t == k {
			return true
		}
	}
	return false
}

// Client returns a Vault client for the settings (call Validate first) and, for AppRole, the
// login that (re)authenticates it. The AppRole login is not made here, so the broker starts
// while Vault is down; the Source logs in on first use and again when the token is refused.
func (s Settings) Client() (*api.Client, Login, error) {
	cfg := api.DefaultConfig() // reads VAULT_CACERT, VAULT_SKIP_VERIFY, ... (not VAULT_ADDR: set below)
	if cfg.Error != nil {
		return nil, nil, fmt.Errorf("vault client configuration: %w", cfg.Error)
	}
	cfg.Address = s.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearToken() // api.NewClient takes VAULT_TOKEN; the token is chosen here
	if s.Token != "" {
		c.SetToken(s.Token)
		return c, nil, nil
	}
	// A missing or empty secret ID file is a configuration problem: report it at start.
	if _, err := readSecretID(s.SecretIDFile); err != nil {
		return nil, nil, err
	}
	return c, AppRoleLogin(s.RoleID, s.SecretIDFile), nil
}

// Login authenticates the client (sets its token).
type Login func(ctx context.Context, c *api.Client) error

// AppRoleLogin logs in at auth/approle with the role ID and the secret ID read from the file
// (each time, so a rotated secret ID file is picked up).
func AppRoleLogin(roleID, secretIDFile string) Login {
	return func(ctx context.Context, c *api.Client) error {
		secretID, err := readSecretID(secretIDFile)
		if err != nil {
			return err
		}
		// A clone without the old token: an expired token must not be sent along.
		lc, err := c.Clone()
		if err != nil {
			return fmt.Errorf("vault approle login: %w", err)
		}
		lc.ClearToken()
		sec, err := lc.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
		if err != nil {
			return fmt.Errorf("vault approle login: %w", err)
		}
		if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
			return errors.New("vault approle login: no token in the answer")
		}
		c.SetToken(sec.Auth.ClientToken)
		return nil
	}
}

func readSecretID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vault-secret-id-file: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("vault-secret-id-file %s is empty", path)
	}
	return id, nil
}
