package vault_test

import (
	"testing"

	"github.com/sloworks/broker/keys/vault/vaulttest"
)

// devServer is a real Vault dev server (keys/vault/vaulttest).
type devServer = vaulttest.Server

func startVault(t testing.TB) *devServer { return vaulttest.Start(t) }
