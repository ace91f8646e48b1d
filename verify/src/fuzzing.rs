//! Entry points for the fuzz targets in `fuzz/` (the `fuzzing` feature), not a public API:
//! hidden from the docs, and exempt from semver.
//!
//! The claims parser and single signature checks are private; the fuzzers need them without
//! the HTTP fetch in front (a fetch per input would be 1000 times slower). The whole token
//! check is fuzzed through the public [`Verifier`](crate::Verifier) instead.

use crate::{Algorithm, Claims, VerifyError};

/// Every algorithm a verifier can be configured with.
pub const ALL_ALGORITHMS: [Algorithm; 8] = Algorithm::ALL;

/// A parsed JWK Set, as the verifier keeps it, with access to single signature checks.
pub struct KeySet(crate::KeySet);

impl KeySet {
    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        self.0.key_ids()
    }

    /// Verifies `signature` over `message` with the key `kid` and `alg`, as the verifier does.
    pub fn verify(&self, kid: &str, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.0.get(kid).ok_or(VerifyError::UnknownKey)?.verify(alg, message, signature)
    }
}

/// Parses a JWK Set document with the verifier's parser, keeping the keys usable with `allowed`.
pub fn parse_jwk_set(json: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
    crate::KeySet::from_jwks_for(json, allowed).map(KeySet).map_err(|e| e.to_string())
}

/// Parses a JWT Claims Set with the verifier's claims parser (presence and types only).
pub fn parse_claims(json: &[u8]) -> Result<Claims, VerifyError> {
    Claims::from_json(json)
}
