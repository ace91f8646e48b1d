-- Browser login (OpenID Connect Core §3.1): sessions, pending authorizations, codes,
-- consents, login throttling, revoked access tokens. Lockstep with postgres/0002.

ALTER TABLE clients ADD COLUMN is_first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

CREATE TABLE sessions (
    id_digest     TEXT PRIMARY KEY NOT NULL,
    -- Public session id (`sid` claim, OIDC Front-Channel Logout §2); not a secret.
    sid           TEXT NOT NULL UNIQUE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE pending_authorizations (
    id_digest              TEXT PRIMARY KEY NOT NULL,
    csrf_digest            TEXT NOT NULL,
    client_id              TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri           TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    state                  TEXT,
    nonce                  TEXT,
    code_challenge         TEXT NOT NULL,
    login_hint             TEXT,
    max_age                INTEGER,
    prompt                 TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL
);

CREATE TABLE authorization_codes (
    code_digest      TEXT PRIMARY KEY NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid              TEXT NOT NULL,
    redirect_uri     TEXT NOT NULL,
    scope            TEXT NOT NULL,
    nonce            TEXT,
    code_challenge   TEXT NOT NULL,
    auth_time        INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER,
    -- What the redemption issued, so a replay can revoke it (RFC 6749 §4.1.2).
    access_token_jti TEXT,
    access_token_expires_at INTEGER
);

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope       TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE TABLE login_throttles (
    subject       TEXT PRIMARY KEY NOT NULL,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER
);

CREATE TABLE revoked_access_tokens (
    jti         TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL
);
