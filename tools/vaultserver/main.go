// Command vault builds the MPL-2.0 HashiCorp Vault v1.14.1 server/CLI from the
// Go module proxy. Vault's own go.mod has replace directives, so
// `go install github.com/hashicorp/vault@v1.14.1` is refused. Vault's in-tree
// sdk is not in the module zip, so this wrapper module replaces
// github.com/hashicorp/vault/sdk with ./sdk, a copy of the published sdk
// v0.9.2 with one init-time panic removed (build.sh creates it).

// gosnowflake (pulled in by Vault's builtin DB plugins) ships a CA cert with a
// negative serial number; Go >= 1.23 rejects those unless this is set.
//
//go:debug x509negativeserial=1
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
