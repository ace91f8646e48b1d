//! What the worst input the form/query parser accepts costs, against a normal request:
//! `cargo bench --bench parsing`.
//!
//! The hardening issue's finding 2: duplicate detection compared each pair with every
//! earlier one, so 32,000 empty pairs (64 KB) took an HTTP worker 1.2 s. The parser is now
//! linear and capped (100 parameters, 16 KiB bodies, 8 KiB queries at `/authorize` and
//! `/logout`). Cases, interleaved in rounds on one thread, each reported as a ratio to
//! (a) from the same run (the machine is shared and noisy):
//!
//! - (a) a normal authorization request's query (9 parameters, about 400 bytes);
//! - (b) the worst accepted query: 8 KiB in 100 distinct parameters;
//! - (c) the worst accepted body: 16 KiB in 100 distinct parameters, all percent-encoded;
//! - (d) a refused flood: 16 KiB of `&` (refused at the 101st pair);
//! - (e) for scale, one RS256 signature with the test key: what every token request costs.
//!
//! Target: (b), (c) and (d) each cost at most a few (a) and far less than (e).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tessera::http::form::{FormParams, MAX_PARAMS, MAX_QUERY_LEN};

const ROUNDS: usize = 30;
const ITERATIONS: usize = 2_000;

fn normal_query() -> String {
    [
        "response_type=code",
        "client_id=3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback",
        "scope=openid%20profile%20email%20offline_access",
        "state=af0ifjsldkj-3f2c9a4e7b1d4c8e",
        "nonce=n-0S6_WzA2Mj-9a650d2f1e8b7c43",
        "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method=S256",
        "prompt=consent",
    ]
    .join("&")
}

/// `count` distinct parameters filling `len` bytes, each value made of `unit`.
fn filled(len: usize, count: usize, unit: &str) -> String {
    let per_pair = len / count;
    let pairs: Vec<String> = (0..count)
        .map(|i| {
            let name = format!("p{i:03}=");
            let value = unit.repeat((per_pair - name.len() - 1) / unit.len());
            format!("{name}{value}")
        })
        .collect();
    pairs.join("&")
}

fn main() {
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem")).unwrap();
    let pkcs8 = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap().to_pkcs8_der().unwrap().as_bytes().to_vec();
    let key = RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
    let rng = SystemRandom::new();
    let mut signature = vec![0u8; key.public_modulus_len()];

    let normal = normal_query();
    let worst_query = filled(MAX_QUERY_LEN, MAX_PARAMS, "a");
    let worst_body = filled(16 * 1024, MAX_PARAMS, "%C3%A9");
    let flood = "&".repeat(16 * 1024);
    assert!(FormParams::parse(normal.as_bytes()).is_ok());
    assert!(worst_query.len() <= MAX_QUERY_LEN && FormParams::parse_query(&worst_query).is_ok());
    assert!(worst_body.len() <= 16 * 1024 && FormParams::parse(worst_body.as_bytes()).is_ok());
    assert!(FormParams::parse(flood.as_bytes()).is_err());

    type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);
    let mut cases: Vec<Case> = vec![
        (
            "(a) normal authorization query",
            Box::new(|| drop(black_box(FormParams::parse(black_box(normal.as_bytes()))))),
        ),
        (
            "(b) worst accepted query, 8 KiB",
            Box::new(|| drop(black_box(FormParams::parse_query(black_box(&worst_query))))),
        ),
        (
            "(c) worst accepted body, 16 KiB",
            Box::new(|| drop(black_box(FormParams::parse(black_box(worst_body.as_bytes()))))),
        ),
        (
            "(d) refused flood, 16 KiB of &",
            Box::new(|| drop(black_box(FormParams::parse(black_box(flood.as_bytes()))))),
        ),
        ("(e) one RS256 signature", Box::new(|| key.sign(&RSA_PKCS1_SHA256, &rng, b"x", &mut signature).unwrap())),
    ];
    let mut totals = vec![Duration::ZERO; cases.len()];
    for _ in 0..ROUNDS {
        for (index, (name, run)) in cases.iter_mut().enumerate() {
            let iterations = if name.starts_with("(e)") { ITERATIONS / 20 } else { ITERATIONS };
            let start = Instant::now();
            for _ in 0..iterations {
                run();
            }
            totals[index] += start.elapsed() / iterations as u32;
        }
    }
    let per_call: Vec<Duration> = totals.iter().map(|t| *t / ROUNDS as u32).collect();
    println!("{:<36} {:>12} {:>12}", "case", "per call", "x (a)");
    for ((name, _), time) in cases.iter().zip(&per_call) {
        println!(
            "{name:<36} {:>10.1} us {:>11.1}x",
            time.as_secs_f64() * 1e6,
            time.as_secs_f64() / per_call[0].as_secs_f64()
        );
    }
}
