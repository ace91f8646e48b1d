-- Pushed authorization requests (RFC 9126). Lockstep with sqlite/0010.
-- A pushed request is validated before it is stored, stored under the digest of the
-- random part of its request_uri, and deleted by the /authorize that uses it (§4:
-- single use). The count per client and in total is bounded by the insert itself.

ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE pushed_authorization_requests (
    id_digest              TEXT PRIMARY KEY NOT NULL,
    client_id              TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    -- Unused (the columns are those of pending_authorizations, read by one row type).
    csrf_digest            TEXT NOT NULL DEFAULT '',
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
CREATE INDEX pushed_authorization_requests_client ON pushed_authorization_requests (client_id, expires_at);
CREATE INDEX pushed_authorization_requests_expires ON pushed_authorization_requests (expires_at);
