-- OpenID Shared Signals (SSF 1.0): receivers' streams, the events Tessera transmits (an
-- outbox written in the transaction of the revocation it reports), and each stream's
-- undelivered SETs. Lockstep with postgres/0007.

-- SSF §8.1.1. The receiver is a client; `event_mask` is the stream's events_delivered
-- as bits (session-revoked 1, credential-change 2, account-disabled 4, account-enabled 8),
-- so that fanning an event out is one INSERT … SELECT on both backends.
CREATE TABLE ssf_streams (
    id                          TEXT PRIMARY KEY NOT NULL,
    receiver_id                 TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    events_requested            TEXT,
    event_mask                  INTEGER NOT NULL,
    delivery_method             TEXT NOT NULL,
    endpoint_url                TEXT,
    -- The receiver's authorization_header for push, sealed with the key-encryption key.
    authorization_header_sealed BLOB,
    description                 TEXT,
    status                      TEXT NOT NULL,
    status_reason               TEXT,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    last_activity_at            INTEGER NOT NULL,
    last_verification_at        INTEGER
);
CREATE INDEX ssf_streams_receiver ON ssf_streams (receiver_id);
CREATE INDEX ssf_streams_activity ON ssf_streams (last_activity_at);

-- One row per event; `stream_id` set for the events meant for one stream (verification,
-- stream-updated). An event is kept until every token it can affect has expired.
CREATE TABLE ssf_events (
    id           TEXT PRIMARY KEY NOT NULL,
    event_type   TEXT NOT NULL,
    -- The type's bit of `ssf_streams.event_mask`; 0 for an event meant for one stream.
    event_bit    INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    txn          TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    stream_id    TEXT REFERENCES ssf_streams (id) ON DELETE CASCADE
);
CREATE INDEX ssf_events_occurred ON ssf_events (occurred_at);
CREATE INDEX ssf_events_expires ON ssf_events (expires_at);

-- A SET owed to a stream: kept until acknowledged (poll, RFC 8936), accepted (push, RFC
-- 8935) or expired. `jti` is unique per event and stream.
CREATE TABLE ssf_deliveries (
    stream_id        TEXT NOT NULL REFERENCES ssf_streams (id) ON DELETE CASCADE,
    jti              TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES ssf_events (id) ON DELETE CASCADE,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Push: the next attempt, and the dispatcher (replica) holding the delivery until
    -- `leased_until`, so that replicas do not send one SET at once.
    next_attempt_at  INTEGER NOT NULL,
    leased_until     INTEGER,
    lease            TEXT,
    last_error       TEXT,
    PRIMARY KEY (stream_id, jti)
);
CREATE INDEX ssf_deliveries_event ON ssf_deliveries (event_id);
CREATE INDEX ssf_deliveries_expires ON ssf_deliveries (expires_at);
CREATE INDEX ssf_deliveries_due ON ssf_deliveries (next_attempt_at);
CREATE INDEX ssf_deliveries_lease ON ssf_deliveries (lease);
