package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// env makes a getenv from pairs.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadConfig(t *testing.T) {
	const token = "0123456789abcdef-token"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want Config
	}{
		{
			name: "defaults",
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "environment only",
			env: map[string]string{
				"BROKER_ADDR": "0.0.0.0:9000", "BROKER_BASE_URL": "https://sso.example.com", "BROKER_DATA_DIR": "/var/lib/broker",
				"BROKER_BOOTSTRAP_TOKEN": token, "BROKER_ALLOW_HTTP": "true", "BROKER_SESSION_LIFETIME": "90m",
				"BROKER_LOG_LEVEL": "debug", "BROKER_LOG_FORMAT": "json",
			},
			want: Config{Addr: "0.0.0.0:9000", BaseURL: "https://sso.example.com", DataDir: "/var/lib/broker", BootstrapToken: token,
				AllowHTTP: true, SessionLifetime: 90 * time.Minute, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "debug", LogFormat: "json"},
		},
		{
			name: "flags only",
			args: []string{"--addr", "127.0.0.1:9001", "--base-url=https://sso.example.com/broker", "-data-dir", "/srv/b",
				"--bootstrap-token", token, "--allow-http", "--session-lifetime", "1h30m", "--log-level", "warn", "--log-format", "json"},
			want: Config{Addr: "127.0.0.1:9001", BaseURL: "https://sso.example.com/broker", DataDir: "/srv/b", BootstrapToken: token,
				AllowHTTP: true, SessionLifetime: 90 * time.Minute, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "warn", LogFormat: "json"},
		},
		{
			name: "flags over environment",
			env:  map[string]string{"BROKER_ADDR": "0.0.0.0:9000", "BROKER_LOG_LEVEL": "debug", "BROKER_ALLOW_HTTP": "true", "BROKER_DATA_DIR": "/env"},
			args: []string{"--addr", "127.0.0.1:9001", "--allow-http=false"},
			want: Config{Addr: "127.0.0.1:9001", BaseURL: "http://127.0.0.1:9001", DataDir: "/env", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "debug", LogFormat: "text"},
		},
		{
			name: "base URL defaults to http://ADDR",
			env:  map[string]string{"BROKER_ADDR": "localhost:7070"},
			want: Config{Addr: "localhost:7070", BaseURL: "http://localhost:7070", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "trailing slash trimmed",
			args: []string{"--base-url", "https://sso.example.com/"},
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "https://sso.example.com", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "trailing slash trimmed from a path",
			env:  map[string]string{"BROKER_BASE_URL": "https://example.com/sso/"},
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "https://example.com/sso", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "BROKER_ALLOW_HTTP=true",
			env:  map[string]string{"BROKER_ALLOW_HTTP": "true"},
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", DataDir: "./data", AllowHTTP: true, SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "BROKER_ALLOW_HTTP=1",
			env:  map[string]string{"BROKER_ALLOW_HTTP": "1"},
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", DataDir: "./data", AllowHTTP: true, SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
		{
			name: "BROKER_ALLOW_HTTP=false",
			env:  map[string]string{"BROKER_ALLOW_HTTP": "false"},
			want: Config{Addr: "127.0.0.1:8080", BaseURL: "http://127.0.0.1:8080", DataDir: "./data", SessionLifetime: 8 * time.Hour, LogoutLegTimeout: 5 * time.Second, LogoutRetention: 720 * time.Hour, LogLevel: "info", LogFormat: "text"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig("serve", tt.args, env(tt.env))
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			want := tt.want
			if want.KeyRotationOverlap == 0 { // every case has the default overlap
				want.KeyRotationOverlap = 7 * 24 * time.Hour
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // every message must be in the one error
	}{
		{
			name: "every problem at once",
			args: []string{"--addr", "no-port", "--log-level", "loud", "--bootstrap-token", "short"},
			want: []string{`addr "no-port"`, `log-level "loud"`, "bootstrap-token must be at least 16 characters"},
		},
		{
			name: "environment and flag problems together",
			env:  map[string]string{"BROKER_SESSION_LIFETIME": "forever", "BROKER_ALLOW_HTTP": "yes please"},
			args: []string{"--log-format", "xml", "--base-url", "ftp://sso.example.com"},
			want: []string{"BROKER_SESSION_LIFETIME", "BROKER_ALLOW_HTTP", `log-format "xml"`, `base-url "ftp://sso.example.com"`},
		},
		{name: "session too short", args: []string{"--session-lifetime", "30s"}, want: []string{"session-lifetime 30s"}},
		{name: "empty data dir", args: []string{"--data-dir", ""}, want: []string{"data-dir is required"}},
		{name: "base URL with a query", args: []string{"--base-url", "https://sso.example.com/?a=1"}, want: []string{"query or fragment"}},
		{name: "base URL with a fragment", args: []string{"--base-url", "https://sso.example.com/#x"}, want: []string{"query or fragment"}},
		{name: "relative base URL", args: []string{"--base-url", "/sso"}, want: []string{"absolute"}},
		{name: "unparsable base URL", env: map[string]string{"BROKER_BASE_URL": "https://sso.example.com/%zz"}, want: []string{"base-url"}},
		{name: "stray arguments", args: []string{"--addr", "127.0.0.1:1", "extra", "words"}, want: []string{"unexpected arguments: extra words"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig("serve", tt.args, env(tt.env))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			// One line per problem, so an operator sees them all.
			if lines := strings.Count(err.Error(), "\n") + 1; lines < len(tt.want) {
				t.Errorf("%d lines for %d problems:\n%v", lines, len(tt.want), err)
			}
		})
	}
}

func TestLoadConfigUnknownFlag(t *testing.T) {
	_, err := loadConfig("serve", []string{"--adress", "127.0.0.1:1"}, env(nil))
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Errorf("loadConfig = %v; want an error naming the unknown flag", err)
	}
	_, err = loadConfig("serve", []string{"-h"}, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v; want flag.ErrHelp", err)
	}
}

func TestRunCommands(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" means nil
		wantOut string
	}{
		{name: "no command", wantErr: "usage: broker serve|demo"},
		{name: "unknown command", args: []string{"start"}, wantErr: `unknown command "start"`},
		{name: "help", args: []string{"help"}, wantOut: "serve  run the broker"},
		{name: "serve -h", args: []string{"serve", "-h"}},
		{name: "bad config stops before anything starts", args: []string{"serve", "--log-level", "loud", "--data-dir", "/nonexistent/dir/never"}, wantErr: "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(tt.args, &out, env(nil))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run = %v; want an error with %q", err, tt.wantErr)
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output %q lacks %q", out.String(), tt.wantOut)
			}
		})
	}
}
