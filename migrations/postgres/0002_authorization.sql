-- Browser login (OpenID Connect Core §3.1): sessions, pending authorizations, codes,
-- consents, login throttling, revoked access tokens. Lockstep with sqlite/0002.

ALTER TABLE clients ADD COLUMN is_first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris JSONB NOT NULL DEFAULT '[]';

CREATE TABLE sessions (
    id_digest     TEXT PRIMARY KEY,
    -- Public session id (`sid` claim, OIDC Front-Channel Logout §2); not a secret.
    sid           TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time     TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE pending_authorizations (
    id_digest              TEXT PRIMARY KEY,
    csrf_digest            TEXT NOT NULL,
    client_id              TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri           TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    state                  TEXT,
    nonce                  TEXT,
    code_challenge         TEXT NOT NULL,
    login_hint             TEXT,
    max_age                BIGINT,
    prompt                 TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    expires_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE authorization_codes (
    code_digest      TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid              TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    nonce            TEXT,
    code_challenge   TEXT NOT NULL,
    auth_time        TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ,
    -- What the redemption issued, so a replay can revoke it (RFC 6749 §4.1.2).
    access_token_jti TEXT,
    access_token_expires_at TIMESTAMPTZ
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    granted_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE login_throttles (
    subject       TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    locked_until  TIMESTAMPTZ
);

CREATE TABLE revoked_access_tokens (
    jti         TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);
