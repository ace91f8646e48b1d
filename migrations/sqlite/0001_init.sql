-- Tessera schema, SQLite flavour. Keep in lockstep with migrations/postgres/0001_init.sql.
-- Timestamps are INTEGER microseconds since the Unix epoch (see storage/timestamp.rs);
-- lists are JSON arrays in TEXT.

CREATE TABLE clients (
    id                          TEXT PRIMARY KEY NOT NULL,
    name                        TEXT NOT NULL,
    token_endpoint_auth_method  TEXT NOT NULL,
    secret_digest               TEXT,
    grant_types                 TEXT NOT NULL,
    scopes                      TEXT NOT NULL,
    audiences                   TEXT NOT NULL,
    redirect_uris               TEXT NOT NULL,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    disabled_at                 INTEGER
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY NOT NULL,
    username        TEXT NOT NULL UNIQUE,
    email           TEXT,
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    name            TEXT,
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    disabled_at     INTEGER
);

CREATE TABLE signing_keys (
    kid                    TEXT PRIMARY KEY NOT NULL,
    algorithm              TEXT NOT NULL,
    state                  TEXT NOT NULL,
    -- AES-256-GCM(nonce || ciphertext) of the PKCS#8 DER private key, AAD = kid.
    encrypted_private_key  BLOB NOT NULL,
    -- The public JWK (RFC 7517) as served in the JWKS.
    public_jwk             TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    activated_at           INTEGER,
    retired_at             INTEGER
);

-- At most one key signs at a time, even when several replicas race to create it.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
