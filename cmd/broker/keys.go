package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/db/sqlite"
	"github.com/sloworks/broker/keys"
)

const keysUsage = "rotate [flags] TENANT | migrate [flags] TENANT|--all | list [flags] TENANT   (TENANT: slug or ID; the same settings as serve)"

// runKeys runs "broker keys ...": rotate a tenant's key, migrate tenants' keys into Vault, or
// list a tenant's keys, on the data directory and Vault the settings name (the same as serve).
func runKeys(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return errors.New("usage: broker keys " + keysUsage)
	}
	sub := args[0]
	switch sub {
	case "rotate", "migrate", "list":
	default:
		return fmt.Errorf("unknown keys command %q: usage: broker keys %s", sub, keysUsage)
	}
	all := false
	var rest []string
	for _, a := range args[1:] {
		if a == "--all" || a == "-all" {
			all = true
			continue
		}
		rest = append(rest, a)
	}
	cfg, pos, err := loadConfigArgs("keys "+sub, rest, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case all && sub != "migrate":
		return errors.New("--all is for keys migrate only")
	case all && len(pos) > 0, !all && len(pos) != 1:
		return fmt.Errorf("usage: broker keys %s", keysUsage)
	case sub == "migrate" && !cfg.Vault.Enabled():
		return errors.New("keys migrate moves local keys into Vault: set vault-addr (BROKER_VAULT_ADDR) and its credentials")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := newLogger(cfg, os.Stderr)
	store, err := sqlite.Open(filepath.Join(cfg.DataDir, "broker.db"), sqlite.WithLogger(logger))
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer store.Close()
	ks, err := openKeys(ctx, cfg, store, logger)
	if err != nil {
		return err
	}
	var ts []db.Tenant
	if all {
		if ts, err = store.ListTenants(ctx); err != nil {
			return err
		}
	} else {
		t, err := store.GetTenantBySlug(ctx, pos[0])
		if errors.Is(err, db.ErrNotFound) {
			t, err = store.GetTenant(ctx, pos[0])
		}
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("there is no tenant %q", pos[0])
		}
		if err != nil {
			return err
		}
		ts = []db.Tenant{*t}
	}
	var errs []error
	for _, t := range ts {
		if err := keysCommand(ctx, sub, ks.ring, &t, stdout); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Slug, err))
		}
	}
	return errors.Join(errs...)
}

func keysCommand(ctx context.Context, sub string, ring *keys.Ring, t *db.Tenant, stdout io.Writer) error {
	switch sub {
	case "rotate":
		k, err := ring.Rotate(ctx, t.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: new %s key version %d (sha256 %s) published as next; it signs from %s, and the keys it replaces leave the metadata at %s\n",
			t.Slug, k.Backend, k.Version, keys.Fingerprint(k.Certificate), k.ActivatesAt.Format(time.RFC3339), k.ActivatesAt.Add(ring.Overlap()).Format(time.RFC3339))
	case "migrate":
		k, imported, err := ring.Migrate(ctx, t.ID)
		if err != nil {
			return err
		}
		switch {
		case imported:
			fmt.Fprintf(stdout, "%s: key imported into %s as version %d; it signs now, with the same certificate (sha256 %s)\n", t.Slug, k.Backend, k.Version, keys.Fingerprint(k.Certificate))
		case k.ActivatesAt.After(time.Now()):
			fmt.Fprintf(stdout, "%s: import not possible; new %s key version %d published as next, signing from %s (apps and IdPs must fetch the metadata before then)\n", t.Slug, k.Backend, k.Version, k.ActivatesAt.Format(time.RFC3339))
		default:
			fmt.Fprintf(stdout, "%s: already signing with %s key version %d\n", t.Slug, k.Backend, k.Version)
		}
	case "list":
		infos, err := ring.List(ctx, t.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BACKEND\tVERSION\tSTATE\tACTIVATES\tRETIRES\tSHA256")
		for _, k := range infos {
			retires := "-"
			if k.RetiresAt != nil {
				retires = k.RetiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", k.Backend, k.Version, k.State, k.ActivatesAt.Format(time.RFC3339), retires, k.SHA256)
		}
		return tw.Flush()
	}
	return nil
}
