-- Opaque access tokens, a per-client choice (README, "Choosing a token model"). Lockstep
-- with postgres/0018.
-- 'jwt': RFC 9068 JWTs that resource servers verify with the JWK Set (the default, and
-- every existing client's); 'opaque': random references introspected at Tessera (RFC 7662).
ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'jwt'
    CHECK (access_token_format IN ('jwt', 'opaque'));

-- One row per live opaque access token, keyed by the SHA-256 of the token (the token
-- itself is never stored): what a JWT would carry as claims. Only a client that
-- authenticated (or redeemed a code or a device grant) creates rows, each lives as long as
-- the token (tokens.access_token_ttl, at most a day) and housekeeping deletes it after.
-- Revocation goes by jti through revoked_access_tokens, as for JWTs, so both formats end
-- the same way and report the same Shared Signals events.
CREATE TABLE opaque_access_tokens (
    token_digest  TEXT PRIMARY KEY NOT NULL,
    jti           TEXT NOT NULL,
    client_id     TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,
    scope         TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    sid           TEXT,
    auth_time     INTEGER,
    family_id     TEXT,
    dpop_jkt      TEXT,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX opaque_access_tokens_expires ON opaque_access_tokens (expires_at);
