//! High-entropy secrets Tessera generates (client secrets, refresh tokens, authorization
//! codes, session ids, CSRF tokens) and the SHA-256 digests it stores instead of them.
//!
//! A fast hash is right here: the input is 256 random bits, so there is nothing to
//! brute-force, and a deliberately slow hash would only cost token-endpoint throughput.
//! Argon2 is for human passwords (`crate::password`).

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;
use subtle::ConstantTimeEq;

/// A freshly generated secret, shown once to whoever receives it.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedSecret(String);

impl GeneratedSecret {
    /// `prefix` + 256 bits from the OS CSPRNG, base64url. The prefix makes leaked
    /// secrets recognisable to secret scanners.
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the OS random number generator failed");
        let mut out = String::with_capacity(prefix.len() + 43);
        out.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
        Self(out)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> SecretDigest {
        SecretDigest::of(&self.0)
    }
}

impl fmt::Debug for GeneratedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedSecret(***)")
    }
}

/// Lower-case hex SHA-256 of a secret (HMAC-SHA256 of a small value): what the database
/// holds.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(String);

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        Self::hex(digest(&SHA256, secret.as_bytes()).as_ref())
    }

    /// HMAC-SHA256 of `value` under `key`, for values too small to hide behind a plain
    /// hash: whoever holds the table could try every user code or every IPv4 address.
    pub fn keyed(key: &hmac::Key, value: &[u8]) -> Self {
        Self::hex(hmac::sign(key, value).as_ref())
    }

    fn hex(bytes: &[u8]) -> Self {
        // Lower-case hex by table: `write!` per byte went through the formatting machinery
        // 32 times, 1 % of an introspection's CPU (bench/README.md finding 26).
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(2 * bytes.len());
        for byte in bytes {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Self(hex)
    }

    /// Wraps a digest read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does `presented` hash to this digest? Compared in constant time, so response
    /// timing says nothing about how much of the digest matched.
    pub fn matches(&self, presented: &str) -> bool {
        let candidate = Self::of(presented);
        candidate.0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigest({}…)", &self.0[..self.0.len().min(8)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_prefix_and_256_bits() {
        let secret = GeneratedSecret::generate("tcs_");
        assert!(secret.expose().starts_with("tcs_"));
        assert_eq!(secret.expose().len(), 4 + 43);
        assert_ne!(secret, GeneratedSecret::generate("tcs_"));
    }

    #[test]
    fn digest_is_sha256_hex() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            SecretDigest::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn digest_matches_only_its_secret() {
        let secret = GeneratedSecret::generate("x_");
        let digest = secret.digest();
        assert!(digest.matches(secret.expose()));
        assert!(!digest.matches("x_wrong"));
        assert!(!digest.matches(""));
    }

    #[test]
    fn debug_hides_secrets() {
        let secret = GeneratedSecret::generate("x_");
        assert!(!format!("{secret:?}").contains(&secret.expose()[2..]));
    }
}
