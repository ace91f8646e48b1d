//! Access-token signing cost, on one thread: `cargo bench --bench signing`.
//!
//! Three cases with the same 2048-bit key (`keys/test-signing-key.pem`):
//!
//! - (a) raw RSA: `RsaKeyPair::sign` with the key parsed once. The baseline: no JWT
//!   code can be faster than the RSA operation it wraps.
//! - (b) Tessera: `keys::jws::sign` over a cached `SigningKey` (claims to JSON, base64url,
//!   RSA, base64url).
//! - (c) `jsonwebtoken::encode`, which parses the DER key inside every call.
//!
//! The machine may be shared and noisy, so absolute numbers drift between runs. The cases
//! are interleaved in rounds and each is reported as a ratio to (a) from the same run.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tessera::keys::jws;
use tessera::keys::signing_keys::JwsType;
use tessera::keys::SigningKey;

/// Timed iterations per case, split into interleaved rounds.
const ITERATIONS: usize = 2_000;
const ROUNDS: usize = 40;
const WARM_UP: usize = 200;

/// What Tessera itself should achieve relative to raw RSA.
const EXPECTED_TESSERA_RATIO: f64 = 0.95;

struct Case {
    name: &'static str,
    run: Box<dyn FnMut() -> usize>,
    /// Mean time per call in each round.
    rounds: Vec<Duration>,
}

fn main() {
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem"))
        .expect("keys/test-signing-key.pem is readable");
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 PEM RSA key");
    let pkcs8 = private.to_pkcs8_der().expect("PKCS#8 DER").as_bytes().to_vec();
    // jsonwebtoken's aws-lc backend calls `RsaKeyPair::from_der`, which takes the bare
    // RFC 8017 `RSAPrivateKey` (PKCS#1), not PKCS#8.
    let pkcs1 = private.to_pkcs1_der().expect("PKCS#1 DER").as_bytes().to_vec();

    let key = SigningKey::from_pkcs8(&pkcs8).expect("Tessera accepts the key");
    let now = 1_767_225_600_i64; // fixed, so every run signs the same bytes
    let claims = serde_json::json!({
        "iss": "https://id.example.com",
        "sub": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "aud": "https://api.example.com",
        "client_id": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "scope": "invoices:read invoices:write",
        "iat": now,
        "exp": now + 300,
        "jti": "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90",
    });

    // Every case must produce a token (or signature) that verifies with the public key.
    let jwk = key.public_jwk();
    let n = URL_SAFE_NO_PAD.decode(&jwk.n).unwrap();
    let e = URL_SAFE_NO_PAD.decode(&jwk.e).unwrap();
    let public = RsaPublicKeyComponents { n: &n, e: &e };
    let verify_jws = |token: &str| {
        let (input, signature) = token.rsplit_once('.').expect("a compact JWS");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url signature");
        public.verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &signature).expect("the signature verifies");
        input.len()
    };

    let tessera_token = jws::sign(&key, JwsType::AccessToken, &claims).unwrap();
    let signing_input_len = verify_jws(&tessera_token);

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid.clone());
    let encoding_key = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1);
    verify_jws(&jsonwebtoken::encode(&header, &claims, &encoding_key).expect("jsonwebtoken accepts the key"));

    // The baseline signs Tessera's own signing input, so all three hash the same amount.
    let message = tessera_token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let key_pair = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let rng = SystemRandom::new();
    let mut signature = vec![0u8; key_pair.public_modulus_len()];
    key_pair.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature).unwrap();
    public.verify(&RSA_PKCS1_2048_8192_SHA256, &message, &signature).expect("the raw signature verifies");

    let mut cases = [
        Case {
            name: "(a) raw RSA, key parsed once",
            run: Box::new(move || {
                key_pair.sign(&RSA_PKCS1_SHA256, &rng, black_box(&message), &mut signature).unwrap();
                black_box(&signature).len()
            }),
            rounds: Vec::new(),
        },
        Case {
            name: "(b) tessera::keys::jws::sign",
            run: Box::new({
                let claims = claims.clone();
                move || black_box(jws::sign(&key, JwsType::AccessToken, black_box(&claims)).unwrap()).len()
            }),
            rounds: Vec::new(),
        },
        Case {
            name: "(c) jsonwebtoken::encode",
            run: Box::new(move || {
                black_box(jsonwebtoken::encode(&header, black_box(&claims), &encoding_key).unwrap()).len()
            }),
            rounds: Vec::new(),
        },
    ];

    for case in cases.iter_mut() {
        for _ in 0..WARM_UP {
            black_box((case.run)());
        }
    }
    let per_round = ITERATIONS / ROUNDS;
    for _ in 0..ROUNDS {
        for case in cases.iter_mut() {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box((case.run)());
            }
            case.rounds.push(start.elapsed() / per_round as u32);
        }
    }

    println!(
        "RS256 access-token signing, one thread, 2048-bit key, {ITERATIONS} signs per case \
         ({ROUNDS} interleaved rounds, {WARM_UP} warm-up), signing input {signing_input_len} bytes"
    );
    println!();
    println!("{:<34} {:>10} {:>14} {:>13}", "case", "signs/s", "µs per token", "ratio to (a)");
    let baseline = median(&cases[0].rounds);
    let mut ratios = Vec::new();
    for case in &cases {
        let per_token = median(&case.rounds);
        let ratio = baseline.as_secs_f64() / per_token.as_secs_f64();
        ratios.push(ratio);
        println!(
            "{:<34} {:>10.0} {:>14.1} {:>13.3}",
            case.name,
            1.0 / per_token.as_secs_f64(),
            per_token.as_secs_f64() * 1e6,
            ratio
        );
    }
    println!();
    println!("Ratio: throughput relative to (a) in this run (median of per-round means); compare ratios, not signs/s.");
    println!(
        "Tessera (b) should be >= {EXPECTED_TESSERA_RATIO} x raw RSA: its only extra work is JSON and base64url. \
         jsonwebtoken (c) is slower because it parses the DER key inside every encode call."
    );
    if ratios[1] < EXPECTED_TESSERA_RATIO {
        println!(
            "WARNING: (b) is below {EXPECTED_TESSERA_RATIO} x (a) in this run; on a busy machine rerun \
             before drawing conclusions."
        );
    }
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
