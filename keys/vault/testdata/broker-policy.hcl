# The broker's Vault policy, for a Transit mount of the broker's own: read its tenants' public
# keys, create a tenant's key on first use, sign with its own keys, rotate them, import a local
# key (migration), and delete a deleted tenant's key. Nothing else: no export, backup, trimming,
# no key configuration but allowing deletion, and no other mount.

# "+" is exactly one path segment: transit/keys/NAME. A write to it creates the key and leaves
# an existing key exactly as it is; delete removes a key whose deletion is allowed.
path "transit/keys/+" {
  capabilities = ["read", "update", "delete"]
}

# Rotation: a new version; older versions stay (min_decryption/min_available untouched).
path "transit/keys/+/rotate" {
  capabilities = ["update"]
}

# Only deletion_allowed can be set (tenant deletion), never exportable or the version bounds.
path "transit/keys/+/config" {
  capabilities = ["update"]
  allowed_parameters = {
    "deletion_allowed" = []
  }
}

# Migration from local keys: BYOK import, wrapped with Transit's wrapping key.
path "transit/wrapping_key" {
  capabilities = ["read"]
}
path "transit/keys/+/import" {
  capabilities = ["update"]
}
path "transit/keys/+/import_version" {
  capabilities = ["update"]
}

# Signing only with keys of the broker's prefix.
path "transit/sign/broker-*" {
  capabilities = ["update"]
}
