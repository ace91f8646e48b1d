//! The JWK Set parser of `tessera-verify` (`verify/src/jwk.rs`), as the key cache runs it
//! on every fetched set, for all eight algorithms and for RS256 alone.
//!
//! Besides "no panic": a parsed set only holds `kid`s the document names once among its
//! usable keys; a garbage signature never verifies; and where the document publishes the
//! test key (`keys/test-signing-key.pem`) under a `kid` no other entry uses, a real RS256
//! signature by it verifies.
#![no_main]

mod common;

use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::test_key;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;
use tessera_verify::{fuzzing, Algorithm, VerifyError};

const MESSAGE: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6In0";

fn real_signature() -> &'static [u8] {
    static SIGNATURE: OnceLock<Vec<u8>> = OnceLock::new();
    SIGNATURE.get_or_init(|| test_key().sign(&RSA_PKCS1_SHA256, MESSAGE))
}

/// A Base64urlUInt without its leading zero octets, or `None` when it is not base64url.
fn unsigned(encoded: &Value) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded.as_str()?).ok()?;
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    Some(bytes[zeros..].to_vec())
}

fn check(json: &[u8], allowed: &[Algorithm]) {
    let Ok(set) = fuzzing::parse_jwk_set(json, allowed) else { return };
    let document: Value = serde_json::from_slice(json).expect("a parsed JWK Set is JSON");
    let entries = document["keys"].as_array().expect("a parsed JWK Set has a keys array");
    let key = test_key();
    let (test_n, test_e) = (URL_SAFE_NO_PAD.decode(&key.n).unwrap(), URL_SAFE_NO_PAD.decode(&key.e).unwrap());
    for kid in set.key_ids() {
        let named: Vec<&Value> = entries.iter().filter(|e| e["kid"].as_str() == Some(kid)).collect();
        assert!(!named.is_empty(), "kid {kid:?} is not in the document");
        let is_verifiable = |e: &&Value| matches!(e["kty"].as_str(), Some("RSA" | "EC" | "OKP"));
        assert!(named.iter().any(is_verifiable), "kid {kid:?} is not an RSA, EC or OKP key");
        for alg in allowed {
            let result = set.verify(kid, *alg, MESSAGE, &[0x5a; 256]);
            assert!(matches!(result, Err(VerifyError::BadSignature | VerifyError::UnsupportedAlgorithm)), "{result:?}");
        }
        let [entry] = named[..] else { continue };
        let publishes_test_key =
            unsigned(&entry["n"]).as_deref() == Some(&test_n[..]) && unsigned(&entry["e"]).as_deref() == Some(&test_e[..]);
        let for_rs256 = entry.get("alg").is_none_or(|alg| alg == "RS256") && allowed.contains(&Algorithm::RS256);
        if publishes_test_key && for_rs256 {
            let result = set.verify(kid, Algorithm::RS256, MESSAGE, real_signature());
            assert!(result.is_ok(), "the test key's signature does not verify under {kid:?}: {result:?}");
        }
    }
}

fuzz_target!(|json: &[u8]| {
    check(json, &fuzzing::ALL_ALGORITHMS);
    check(json, &[Algorithm::RS256]);
});
