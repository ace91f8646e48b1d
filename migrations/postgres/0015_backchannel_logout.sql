-- OpenID Connect Back-Channel Logout 1.0 (§2.2): where a client receives Logout Tokens,
-- and whether it needs the `sid` in them.
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT TRUE;

-- The RPs that took part in an SSO session (§2.3: the OP remembers each RP the user is logged
-- in to): recorded when a code is issued under the session. One row per session and
-- client, so a session has at most as many rows as there are clients; rows of sessions
-- that are gone are purged by housekeeping.
CREATE TABLE backchannel_participants (
    sid         TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX backchannel_participants_user ON backchannel_participants (user_id);

-- The outbox (§2.5): one row per Logout Token owed to an RP, written in the transaction
-- that ends the session, so a crash between the commit and the POST only delays it.
-- Leased by one dispatcher (replica) at a time; deleted once delivered or refused, purged
-- when too old (given up) or beyond the per-client cap.
CREATE TABLE backchannel_logouts (
    jti              TEXT PRIMARY KEY NOT NULL,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    sid              TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    leased_until     TIMESTAMPTZ,
    lease            TEXT,
    last_error       TEXT
);
CREATE INDEX backchannel_logouts_due ON backchannel_logouts (next_attempt_at);
CREATE INDEX backchannel_logouts_client ON backchannel_logouts (client_id, created_at);
CREATE INDEX backchannel_logouts_lease ON backchannel_logouts (lease);
CREATE INDEX backchannel_logouts_created ON backchannel_logouts (created_at);
