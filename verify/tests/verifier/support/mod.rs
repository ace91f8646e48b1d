//! Test harness: the repository's test key, Tessera-like claims, and the mock issuer of
//! `tessera_verify::test_util`, which downstream crates get with the `test-util` feature.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
#[cfg(feature = "fetch")]
pub use tessera_verify::test_util::MockIssuer;
pub use tessera_verify::test_util::{access_token_header, jwk_set, TestKey};

pub const AUDIENCE: &str = "https://api.example.com";

/// The repository's test key, `keys/test-signing-key.pem`, which Tessera's tests also use.
pub fn tessera_key() -> TestKey {
    TestKey::from_pkcs8_pem(include_str!("../../../../keys/test-signing-key.pem"))
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims like Tessera's for a client_credentials token, valid for five minutes.
pub fn claims(issuer: &str) -> Value {
    tessera_verify::test_util::access_token_payload(issuer, AUDIENCE)
}

/// What the tests add to the mock issuer.
#[cfg(feature = "fetch")]
pub trait MockIssuerExt {
    /// A builder for this issuer and [`AUDIENCE`].
    fn verifier(&self) -> tessera_verify::VerifierBuilder;

    /// Polls until `condition` holds (a background refresh finished); panics after 5 s.
    async fn wait_for(&self, what: &str, condition: impl Fn(&Self) -> bool);
}

#[cfg(feature = "fetch")]
impl MockIssuerExt for MockIssuer {
    fn verifier(&self) -> tessera_verify::VerifierBuilder {
        tessera_verify::Verifier::builder(self.issuer()).audience(AUDIENCE)
    }

    async fn wait_for(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        for _ in 0..500 {
            if condition(self) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }
}
