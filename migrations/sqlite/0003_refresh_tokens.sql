-- Refresh tokens (RFC 6749 §6; RFC 9700 §4.14): opaque, stored as digests, rotated on
-- every use within a family that is revoked as a whole. Lockstep with postgres/0003.

ALTER TABLE clients ADD COLUMN always_issue_refresh_token BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE authorization_codes ADD COLUMN family_id TEXT;

-- One family per original grant (login at a client); every rotation stays inside it.
CREATE TABLE token_families (
    id                   TEXT PRIMARY KEY NOT NULL,
    client_id            TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid                  TEXT NOT NULL,
    scope                TEXT NOT NULL,
    auth_time            INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    last_used_at         INTEGER NOT NULL,
    absolute_expires_at  INTEGER NOT NULL,
    revoked_at           INTEGER,
    revoked_reason       TEXT
);
CREATE INDEX token_families_user ON token_families (user_id);
CREATE INDEX token_families_sid ON token_families (sid);

CREATE TABLE refresh_tokens (
    token_digest          TEXT PRIMARY KEY NOT NULL,
    family_id             TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    created_at            INTEGER NOT NULL,
    idle_expires_at       INTEGER NOT NULL,
    used_at               INTEGER,
    successor_digest      TEXT,
    -- The successor token itself, sealed with the key-encryption key, kept only for the
    -- idempotent-retry window and wiped after it.
    successor_sealed      BLOB,
    successor_sealed_until INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
