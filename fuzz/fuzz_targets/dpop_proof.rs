//! `tessera_verify::dpop::ProofPolicy::verify`: a DPoP proof (RFC 9449 §4.3) checked for a
//! fixed request at a fixed time, and `tessera_verify::Jwk`, the public-key parser it uses.
//!
//! The first byte of the input picks the mode:
//! - 0: the rest is the proof, as sent in the `DPoP` header;
//! - 1: the rest is `header JSON \0 claims JSON`, signed here with a fixed Ed25519 key, so
//!   that the checks after the signature (claims, `htm`, `htu`, `iat`, `ath`) run on
//!   fuzzed input whenever the header carries that key;
//! - 2: the rest is one JWK for `Jwk::from_json`.
//!
//! An accepted proof must have been checked: `typ` `dpop+jwt`, a key whose thumbprint is
//! the signer's (mode 1), a `jti` of 1 to 256 characters, `iat` within the window, `htm`
//! `GET`, and the `ath` of the access token. A parsed JWK never holds a private member, and
//! its thumbprint is 43 base64url characters.
#![no_main]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};
use tessera_verify::dpop::{access_token_hash, DpopError, ProofPolicy, ProofRequest};
use tessera_verify::Jwk;
use url::Url;

const NOW: i64 = 1_800_000_000;
const HTU: &str = "https://api.example.com/invoices";
const ACCESS_TOKEN: &str = "access-token";

struct Signer {
    pair: Ed25519KeyPair,
    jkt: String,
}

/// A fixed key, so that the seeds' headers can carry its `jwk`.
fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[0x42; 32]).expect("an Ed25519 seed");
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) });
        let jkt = Jwk::from_value(&jwk).expect("a public JWK").thumbprint();
        Signer { pair, jkt }
    })
}

fn check_proof(proof: &str, signed_by_signer: bool) {
    let url = Url::parse(HTU).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(NOW as u64);
    let request = ProofRequest::new("GET", &url, now).access_token(ACCESS_TOKEN);
    let result = ProofPolicy::new().verify(proof, &request);
    let Ok(accepted) = result else {
        let error: DpopError = result.unwrap_err();
        assert!(matches!(error.error_code(), "invalid_dpop_proof" | "use_dpop_nonce"));
        assert!(error.error_description().bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
        return;
    };
    if signed_by_signer {
        assert_eq!(accepted.jkt, signer().jkt, "a proof verified with another key than its signer's");
    }
    assert_eq!(accepted.jkt, accepted.jwk.thumbprint());
    assert!((1..=256).contains(&accepted.jti.chars().count()));
    assert!((NOW - 60..=NOW + 5).contains(&accepted.iat), "iat {} outside the window", accepted.iat);
    let mut parts = proof.split('.');
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let typ = header["typ"].as_str().unwrap().to_ascii_lowercase();
    assert!(typ == "dpop+jwt" || typ == "application/dpop+jwt", "typ {typ}");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["ath"], access_token_hash(ACCESS_TOKEN));
}

fn check_jwk(json: &[u8]) {
    let Ok(jwk) = Jwk::from_json(json) else { return };
    let value: Value = serde_json::from_slice(json).expect("a parsed JWK is JSON");
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(value.get(member).is_none(), "a JWK with `{member}` was accepted as a public key");
    }
    let thumbprint = jwk.thumbprint();
    assert_eq!(thumbprint.len(), 43);
    assert!(URL_SAFE_NO_PAD.decode(&thumbprint).is_ok());
    assert!(matches!(jwk.key_type(), "RSA" | "EC" | "OKP"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode {
        0 => {
            if let Ok(proof) = std::str::from_utf8(rest) {
                check_proof(proof, false);
            }
        }
        1 => {
            let mut parts = rest.splitn(2, |&b| b == 0);
            let (Some(header), Some(claims)) = (parts.next(), parts.next()) else { return };
            let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
            let signature = signer().pair.sign(signing_input.as_bytes());
            check_proof(&format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())), true);
        }
        2 => check_jwk(rest),
        _ => {}
    }
});
