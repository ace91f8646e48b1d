-- DPoP (RFC 9449), lockstep with sqlite/0009:
-- * a client may be registered to require DPoP-bound access tokens (§5.2's
--   `dpop_bound_access_tokens`);
-- * a public client's refresh-token family is bound to the key of the proof it was
--   created with (§5, end): the JWK SHA-256 thumbprint (RFC 7638), NULL when unbound;
-- * the jti of every accepted proof, so that a proof is accepted once (§11.1), shared by
--   every replica. The key is a digest of the proof's key thumbprint and jti (fixed size,
--   whatever the client sends); a row lives as long as its proof's iat is acceptable.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE token_families ADD COLUMN dpop_jkt TEXT;

CREATE TABLE dpop_proofs (
    proof_digest  TEXT PRIMARY KEY,
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX dpop_proofs_expires ON dpop_proofs (expires_at);
