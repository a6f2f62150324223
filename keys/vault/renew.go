package vault

import (
	"context"
	"time"

	"github.com/hashicorp/vault/api"
)

// renewRetry is how long RenewToken waits before looking at the token again after a failure
// (Vault down) or when the token cannot be renewed but AppRole may replace it.
const renewRetry = 30 * time.Second

// RenewToken keeps a renewable token alive until ctx ends: it looks the client's token up
// (auth/token/lookup-self, in Vault's default policy) and, when it is renewable, renews it with
// Vault's LifetimeWatcher (auth/token/renew-self) until the watcher stops (the token reached
// its max TTL, or renewal failed), then starts over with the client's current token. A token
// that is not renewable ends it, unless AppRole logs in again by itself (then the new token is
// watched). Vault being down is retried. It returns when ctx ends, stopping the watcher.
func (s *Source) RenewToken(ctx context.Context) {
	for {
		wait := renewRetry
		switch renewable, err := s.watchToken(ctx); {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.logger.WarnContext(ctx, "vault token renewal failed; retrying", "error", err)
		case !renewable && s.login == nil:
			s.logger.InfoContext(ctx, "vault token is not renewable; it must outlive the broker")
			return
		case renewable && s.login == nil:
			return // the token reached its max TTL: nothing renews it further
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// watchToken renews the client's current token while it can, and says whether it was
// renewable.
func (s *Source) watchToken(ctx context.Context) (bool, error) {
	if err := s.ensureLogin(ctx, ""); err != nil {
		return false, err
	}
	lctx, cancel := context.WithTimeout(ctx, s.timeout)
	sec, err := s.client.Auth().Token().LookupSelfWithContext(lctx)
	cancel()
	if err != nil {
		return false, err
	}
	renewable, _ := sec.TokenIsRenewable()
	ttl, _ := sec.TokenTTL()
	if !renewable || ttl <= 0 {
		return false, nil
	}
	w, err := s.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{
		Secret: &api.Secret{Auth: &api.SecretAuth{ClientToken: s.client.Token(), Renewable: true, LeaseDuration: int(ttl.Seconds())}},
	})
	if err != nil {
		return true, err
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-w.DoneCh():
			if err != nil {
				return true, err
			}
			s.logger.InfoContext(ctx, "vault token can no longer be renewed (max TTL)")
			return true, nil
		case r := <-w.RenewCh():
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				s.logger.DebugContext(ctx, "vault token renewed", "ttl_s", r.Secret.Auth.LeaseDuration)
			}
		}
	}
}
