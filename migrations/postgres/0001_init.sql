-- Tessera schema, PostgreSQL flavour. Keep in lockstep with migrations/sqlite/0001_init.sql.

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    token_endpoint_auth_method  TEXT NOT NULL,
    secret_digest               TEXT,
    grant_types                 JSONB NOT NULL,
    scopes                      TEXT NOT NULL,
    audiences                   JSONB NOT NULL,
    redirect_uris               JSONB NOT NULL,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    disabled_at                 TIMESTAMPTZ
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    email           TEXT,
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    name            TEXT,
    password_hash   TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    disabled_at     TIMESTAMPTZ
);

CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY,
    algorithm              TEXT NOT NULL,
    state                  TEXT NOT NULL,
    -- AES-256-GCM(nonce || ciphertext) of the PKCS#8 DER private key, AAD = kid.
    encrypted_private_key  BYTEA NOT NULL,
    -- The public JWK (RFC 7517) as served in the JWKS.
    public_jwk             JSONB NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    activated_at           TIMESTAMPTZ,
    retired_at             TIMESTAMPTZ
);

-- At most one key signs at a time, even when several replicas race to create it.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
