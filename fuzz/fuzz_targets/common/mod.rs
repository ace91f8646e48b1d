//! Shared by `verify_jws` and `jwks`: the repository's test key (`keys/test-signing-key.pem`)
//! and the JWK Set that publishes it.
// Each target that includes this uses only part of it.
#![allow(dead_code)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RsaEncoding, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::sync::OnceLock;

/// The same key as Tessera's tests sign with.
pub const TEST_KEY_PEM: &str = include_str!("../../../keys/test-signing-key.pem");

/// `kid` of the key published for RS256, and of the same key published for PS256.
pub const RS256_KID: &str = "fuzz-rs256";
pub const PS256_KID: &str = "fuzz-ps256";

pub struct TestKey {
    pub pair: RsaKeyPair,
    /// Base64url modulus and exponent, as in a JWK.
    pub n: String,
    pub e: String,
}

pub fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let body: String = TEST_KEY_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).expect("PEM body");
        let pair = RsaKeyPair::from_pkcs8(&der).expect("an RSA PKCS#8 key");
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        TestKey { pair, n, e }
    })
}

impl TestKey {
    /// The JWK Set the mock issuer serves: the key for RS256 and, under another `kid`, for PS256.
    pub fn jwk_set(&self) -> String {
        serde_json::json!({ "keys": [
            { "kty": "RSA", "use": "sig", "alg": "RS256", "kid": RS256_KID, "n": self.n, "e": self.e },
            { "kty": "RSA", "use": "sig", "alg": "PS256", "kid": PS256_KID, "n": self.n, "e": self.e },
        ]})
        .to_string()
    }

    pub fn sign(&self, encoding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(encoding, &SystemRandom::new(), message, &mut signature).expect("RSA signing");
        signature
    }
}
