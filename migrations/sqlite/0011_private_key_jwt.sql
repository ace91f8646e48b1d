-- private_key_jwt client authentication (RFC 7523 §2.2, OpenID Connect Core §9).
-- Lockstep with postgres/0011.
-- A client registers either a JWK Set (jwks, JSON text) or the URL of one (jwks_uri).
-- An assertion's jti is recorded until the assertion expires, once its signature
-- verified: a second use of the same assertion finds the row and is refused.

ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;

CREATE TABLE client_assertion_jtis (
    -- SHA-256 of client id and jti: the jti is the client's to choose, and two clients
    -- may pick the same one.
    jti_digest   TEXT PRIMARY KEY NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX client_assertion_jtis_expires ON client_assertion_jtis (expires_at);
