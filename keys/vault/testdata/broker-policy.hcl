# The broker's Vault policy: read its tenants' public keys, create a tenant's key on first use,
# sign with its own keys. Nothing else: no export, backup, rotation, key configuration, trimming
# or deletion, and no other mount.

# "+" is exactly one path segment: transit/keys/NAME, not transit/keys/NAME/config, /rotate,
# /trim or /import. A write to transit/keys/NAME creates the key, and leaves an existing key
# exactly as it is.
path "transit/keys/+" {
  capabilities = ["read", "update"]
}

# Signing only with keys of the broker's prefix.
path "transit/sign/broker-*" {
  capabilities = ["update"]
}
