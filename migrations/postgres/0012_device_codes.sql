-- Device authorization grant (RFC 8628). Lockstep with sqlite/0012.
-- A row per device authorization request: stored under the SHA-256 digest of its
-- device_code and under an HMAC of its user code (the key derives from the key-encryption
-- key, so a copy of the database alone cannot turn the short user codes back into ones a
-- person could type). Bounded per client and in total by the insert itself; redeemed by a
-- DELETE … RETURNING (single use); purged by housekeeping once expired.

CREATE TABLE device_codes (
    device_code_digest     TEXT PRIMARY KEY NOT NULL,
    user_code_digest       TEXT NOT NULL UNIQUE,
    client_id              TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope                  TEXT NOT NULL,
    -- pending, approved or denied.
    status                 TEXT NOT NULL,
    -- Set on approval: who approved, in which SSO session, signed in when.
    user_id                TEXT REFERENCES users (id) ON DELETE CASCADE,
    sid                    TEXT,
    auth_time              TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    expires_at             TIMESTAMPTZ NOT NULL,
    -- RFC 8628 §3.5: the polling interval in seconds (raised by 5 on every slow_down)
    -- and the earliest time the next poll is welcome.
    interval_seconds       BIGINT NOT NULL,
    next_poll_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX device_codes_client ON device_codes (client_id, expires_at);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
