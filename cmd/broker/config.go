package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/sloworks/broker/keys"
	"github.com/sloworks/broker/keys/vault"
)

// Config is every setting of the broker; each is a flag and a BROKER_* environment variable.
type Config struct {
	Addr             string
	BaseURL          string
	DataDir          string
	BootstrapToken   string
	AllowHTTP        bool
	SessionLifetime  time.Duration
	LogoutLegTimeout time.Duration
	LogoutRetention  time.Duration
	LogLevel         string
	LogFormat        string
	// KeyRotationOverlap is how long a next key is published before it signs, and how long
	// the previous key stays published after the switch.
	KeyRotationOverlap time.Duration
	// KeyRotationPeriod rotates each tenant's key this long after its current key started
	// signing (the janitor does it); zero: only on demand.
	KeyRotationPeriod time.Duration
	// Vault keeps tenants' signing keys in Vault Transit when Vault.Addr is set; else they
	// are local files in the data directory. Its defaults apply only when Vault is on.
	Vault vault.Settings
}

// setting describes one setting for flags, environment and the README's table.
type setting struct {
	name, env, def, help string
	bind                 func(fs *flag.FlagSet)
}

// settings are the operator contract (DESIGN.md): keep names stable.
func (c *Config) settings() []setting {
	return []setting{
		{"addr", "BROKER_ADDR", "127.0.0.1:8080", "address to listen on", func(fs *flag.FlagSet) { fs.StringVar(&c.Addr, "addr", c.Addr, "") }},
		{"base-url", "BROKER_BASE_URL", "http://BROKER_ADDR", "public URL of the broker; entity IDs and endpoints derive from it", func(fs *flag.FlagSet) { fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "") }},
		{"data-dir", "BROKER_DATA_DIR", "./data", "directory for the SQLite database and local keys", func(fs *flag.FlagSet) { fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "") }},
		{"bootstrap-token", "BROKER_BOOTSTRAP_TOKEN", "generated on first start", "operator API token", func(fs *flag.FlagSet) { fs.StringVar(&c.BootstrapToken, "bootstrap-token", c.BootstrapToken, "") }},
		{"allow-http", "BROKER_ALLOW_HTTP", "false", "accept http:// endpoints in IdP and app metadata (local testing only)", func(fs *flag.FlagSet) { fs.BoolVar(&c.AllowHTTP, "allow-http", c.AllowHTTP, "") }},
		{"session-lifetime", "BROKER_SESSION_LIFETIME", "8h", "how long a broker session lasts", func(fs *flag.FlagSet) { fs.DurationVar(&c.SessionLifetime, "session-lifetime", c.SessionLifetime, "") }},
		{"logout-leg-timeout", "BROKER_LOGOUT_LEG_TIMEOUT", "5s", "how long one logout leg may take before it is recorded as timed out", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.LogoutLegTimeout, "logout-leg-timeout", c.LogoutLegTimeout, "")
		}},
		{"logout-retention", "BROKER_LOGOUT_RETENTION", "720h", "how long the logout log is kept", func(fs *flag.FlagSet) { fs.DurationVar(&c.LogoutRetention, "logout-retention", c.LogoutRetention, "") }},
		{"log-level", "BROKER_LOG_LEVEL", "info", "debug, info, warn or error", func(fs *flag.FlagSet) { fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "") }},
		{"log-format", "BROKER_LOG_FORMAT", "text", "text or json", func(fs *flag.FlagSet) { fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "") }},
		{"key-rotation-overlap", "BROKER_KEY_ROTATION_OVERLAP", "168h", "how long a rotated-in key is published before it signs, and the old one after", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.KeyRotationOverlap, "key-rotation-overlap", c.KeyRotationOverlap, "")
		}},
		{"key-rotation-period", "BROKER_KEY_ROTATION_PERIOD", "0 (off)", "rotate each tenant's key this long after it started signing; 0: only on demand", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.KeyRotationPeriod, "key-rotation-period", c.KeyRotationPeriod, "")
		}},
		// Keys (docs/keys.md). TLS and namespace: Vault's own VAULT_CACERT, VAULT_SKIP_VERIFY, ...
		{"vault-addr", "BROKER_VAULT_ADDR", "empty: local keys", "Vault's URL; when set, tenants' signing keys live in Vault Transit", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.Addr, "vault-addr", c.Vault.Addr, "") }},
		{"vault-token", "BROKER_VAULT_TOKEN", "VAULT_TOKEN", "Vault token (prefer the environment: a flag shows in ps)", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.Token, "vault-token", c.Vault.Token, "") }},
		{"vault-role-id", "BROKER_VAULT_ROLE_ID", "none", "AppRole role ID, with vault-secret-id-file, instead of a token", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.RoleID, "vault-role-id", c.Vault.RoleID, "") }},
		{"vault-secret-id-file", "BROKER_VAULT_SECRET_ID_FILE", "none", "file holding the AppRole secret ID (read at every login)", func(fs *flag.FlagSet) {
			fs.StringVar(&c.Vault.SecretIDFile, "vault-secret-id-file", c.Vault.SecretIDFile, "")
		}},
		{"vault-transit-mount", "BROKER_VAULT_TRANSIT_MOUNT", vault.DefaultMount, "Transit mount path", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.Mount, "vault-transit-mount", c.Vault.Mount, "") }},
		{"vault-key-prefix", "BROKER_VAULT_KEY_PREFIX", vault.DefaultKeyPrefix, "Transit key name = prefix + tenant ID", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.KeyPrefix, "vault-key-prefix", c.Vault.KeyPrefix, "") }},
		{"vault-key-type", "BROKER_VAULT_KEY_TYPE", vault.DefaultKeyType, "type of new tenant keys: rsa-2048, rsa-3072 or rsa-4096", func(fs *flag.FlagSet) { fs.StringVar(&c.Vault.KeyType, "vault-key-type", c.Vault.KeyType, "") }},
		{"vault-timeout", "BROKER_VAULT_TIMEOUT", vault.DefaultTimeout.String(), "how long one Vault request may take, retries included, before signing is unavailable", func(fs *flag.FlagSet) {
			fs.DurationVar(&c.Vault.Timeout, "vault-timeout", c.Vault.Timeout, "")
		}},
	}
}

// defaults returns the configuration with every default set.
func defaults() *Config {
	return &Config{Addr: "127.0.0.1:8080", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 30 * 24 * time.Hour, LogLevel: "info", LogFormat: "text",
		KeyRotationOverlap: keys.DefaultOverlap}
}

// loadConfig applies the environment, then flags (flags win), then validates.
func loadConfig(name string, args []string, getenv func(string) string) (*Config, error) {
	c, rest, err := loadConfigArgs(name, args, getenv)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))
	}
	return c, err
}

// loadConfigArgs is loadConfig that returns the arguments after the flags.
func loadConfigArgs(name string, args []string, getenv func(string) string) (*Config, []string, error) {
	c := defaults()
	var errs []error
	for _, s := range c.settings() {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		fs := flag.NewFlagSet("env", flag.ContinueOnError)
		fs.SetOutput(discard{})
		s.bind(fs)
		if err := fs.Set(s.name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", s.env, v, err))
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	for _, s := range c.settings() {
		s.bind(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: broker %s [flags]\n\n", name)
		for _, s := range c.settings() {
			fmt.Fprintf(fs.Output(), "  --%-20s %-27s %s (default %s)\n", s.name, s.env, s.help, s.def)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	// Vault's standard VAULT_TOKEN when the broker is given no credential of its own.
	if v := &c.Vault; v.Addr != "" && v.Token == "" && v.RoleID == "" && v.SecretIDFile == "" {
		v.Token = getenv("VAULT_TOKEN")
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, fs.Args(), errors.Join(errs...)
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Addr
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("base-url %q: %w", c.BaseURL, err))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("base-url %q: want an absolute http:// or https:// URL", c.BaseURL))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("base-url %q: must not have a query or fragment", c.BaseURL))
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir is required"))
	}
	if c.BootstrapToken != "" && len(c.BootstrapToken) < 16 {
		errs = append(errs, errors.New("bootstrap-token must be at least 16 characters"))
	}
	if c.SessionLifetime < time.Minute {
		errs = append(errs, fmt.Errorf("session-lifetime %s: at least 1m", c.SessionLifetime))
	}
	if c.LogoutLegTimeout < 100*time.Millisecond || c.LogoutLegTimeout > 2*time.Minute {
		errs = append(errs, fmt.Errorf("logout-leg-timeout %s: from 100ms to 2m", c.LogoutLegTimeout))
	}
	if c.LogoutRetention < time.Hour {
		errs = append(errs, fmt.Errorf("logout-retention %s: at least 1h", c.LogoutRetention))
	}
	if c.KeyRotationOverlap < time.Minute {
		errs = append(errs, fmt.Errorf("key-rotation-overlap %s: at least 1m (apps and IdPs must fetch the metadata within it)", c.KeyRotationOverlap))
	}
	if c.KeyRotationPeriod != 0 && c.KeyRotationPeriod < 2*c.KeyRotationOverlap {
		errs = append(errs, fmt.Errorf("key-rotation-period %s: 0 (off) or at least twice key-rotation-overlap (%s), so a rotation ends before the next", c.KeyRotationPeriod, 2*c.KeyRotationOverlap))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format %q: want text or json", c.LogFormat))
	}
	if c.Vault.Enabled() {
		c.Vault = c.Vault.WithDefaults()
	}
	if err := c.Vault.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
