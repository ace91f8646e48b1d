//! Access-token verification cost, on one thread: `cargo bench -p tessera-verify --bench verify`.
//!
//! Four cases with the same 2048-bit key (`keys/test-signing-key.pem`) and token:
//!
//! - (a) raw RSA: aws-lc `ParsedPublicKey::verify_sig` over the token's signing input,
//!   the key parsed once. The baseline: no JWT code can beat the RSA operation it wraps.
//! - (b) `Verifier::verify`: split, header, allow-list, typ, kid lookup, signature,
//!   claims parsing and checks, with the key cached from a local JWKS.
//! - (c) `jsonwebtoken::decode` with a `DecodingKey` built once, which still parses the
//!   RSA key inside every call.
//! - (d) `AccessTokenPolicy::verify`, the synchronous core (b) runs on, with a `KeySet`
//!   parsed from the same JWKS: what (b) costs beyond it is the async key cache.
//!
//! Cases are interleaved in rounds, as in `bench/signing.rs`, and reported as ratios to
//! (a) from the same run. When the `openssl` command is installed, its single-thread
//! `speed rsa2048` verify rate is printed as a second reference.

use actix_web::{web, App, HttpResponse, HttpServer};
use aws_lc_rs::signature::{KeyPair, RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::json;
use std::hint::black_box;
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_verify::{AccessTokenPolicy, KeySet, Verifier};

const ITERATIONS: usize = 5_000;
const ROUNDS: usize = 10;
const WARM_UP: usize = 500;
const AUDIENCE: &str = "https://api.example.com";

/// What `Verifier::verify` should achieve relative to the raw RSA verification.
const EXPECTED_VERIFIER_RATIO: f64 = 0.8;

fn main() {
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys/test-signing-key.pem"))
        .expect("keys/test-signing-key.pem is readable");
    let der = STANDARD.decode(pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).unwrap();
    let key_pair = RsaKeyPair::from_pkcs8(&der).expect("an RSA PKCS#8 key");
    let n = key_pair.public_key().modulus().big_endian_without_leading_zero().to_vec();
    let e = key_pair.public_key().exponent().big_endian_without_leading_zero().to_vec();
    let (n64, e64) = (URL_SAFE_NO_PAD.encode(&n), URL_SAFE_NO_PAD.encode(&e));

    let jwks = json!({ "keys": [{ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench", "n": n64, "e": e64 }] });
    let key_set = KeySet::from_jwks(jwks.to_string().as_bytes()).expect("a JWK Set");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (issuer, verifier) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json") });
        let server = HttpServer::new(move || {
            let (discovery, jwks) = (discovery.clone(), jwks.clone());
            App::new()
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let body = discovery.clone();
                        async move { HttpResponse::Ok().json(body) }
                    }),
                )
                .route(
                    "/jwks.json",
                    web::get().to(move || {
                        let body = jwks.clone();
                        async move { HttpResponse::Ok().insert_header(("cache-control", "max-age=3600")).json(body) }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        let verifier = Verifier::builder(&issuer).audience(AUDIENCE).build().await.expect("the verifier builds");
        (issuer, verifier)
    });

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "iss": issuer,
        "sub": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "aud": AUDIENCE,
        "client_id": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "scope": "invoices:read invoices:write",
        "iat": now,
        "exp": now + 3600,
        "jti": "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("bench".into());
    let pkcs8_pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(&der));
    let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(pkcs8_pem.as_bytes()).unwrap())
        .expect("jsonwebtoken signs");

    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let parsed = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let decoding_key = DecodingKey::from_rsa_raw_components(&n, &e);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[AUDIENCE]);

    // Every case must accept the token before it is timed.
    parsed.verify_sig(signing_input.as_bytes(), &signature).expect("raw verification");
    runtime.block_on(verifier.verify(&token)).expect("Verifier::verify");
    let policy = AccessTokenPolicy::new(&issuer, [AUDIENCE]).leeway(Duration::from_secs(30));
    policy.verify(&key_set, &token, SystemTime::now()).expect("AccessTokenPolicy::verify");
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key, &validation).expect("jsonwebtoken::decode");

    let mut cases: [Case; 4] = [
        (
            "(a) raw RSA verify (aws-lc, parsed key)",
            Box::new(|n| {
                for _ in 0..n {
                    black_box(parsed.verify_sig(black_box(signing_input.as_bytes()), &signature)).unwrap();
                }
            }),
            Vec::new(),
        ),
        (
            "(b) tessera-verify Verifier::verify",
            Box::new(|n| {
                runtime.block_on(async {
                    for _ in 0..n {
                        black_box(verifier.verify(black_box(&token)).await).unwrap();
                    }
                })
            }),
            Vec::new(),
        ),
        (
            "(c) jsonwebtoken::decode",
            Box::new(|n| {
                for _ in 0..n {
                    black_box(jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding_key, &validation))
                        .unwrap();
                }
            }),
            Vec::new(),
        ),
        (
            "(d) AccessTokenPolicy::verify (sync core)",
            Box::new(|n| {
                for _ in 0..n {
                    black_box(policy.verify(&key_set, black_box(&token), SystemTime::now())).unwrap();
                }
            }),
            Vec::new(),
        ),
    ];
    for (_, run, _) in &mut cases {
        run(WARM_UP);
    }
    let per_round = ITERATIONS / ROUNDS;
    for _ in 0..ROUNDS {
        for (_, run, rounds) in &mut cases {
            let start = Instant::now();
            run(per_round);
            rounds.push(start.elapsed() / per_round as u32);
        }
    }

    let medians: Vec<Duration> = cases.iter().map(|(_, _, rounds)| median(rounds)).collect();
    println!("{:<42} {:>12} {:>10} {:>10}", "case", "verifies/s", "µs/token", "ratio");
    for ((name, _, _), median) in cases.iter().zip(&medians) {
        let ratio = medians[0].as_secs_f64() / median.as_secs_f64();
        println!("{name:<42} {:>12.0} {:>10.1} {ratio:>10.2}", 1.0 / median.as_secs_f64(), median.as_secs_f64() * 1e6);
    }
    let verifier_ratio = medians[0].as_secs_f64() / medians[1].as_secs_f64();
    if let Some(openssl_rate) = openssl_verify_rate() {
        println!(
            "openssl speed rsa2048: {openssl_rate:.0} verifies/s; Verifier::verify reaches {:.2} of it",
            (1.0 / medians[1].as_secs_f64()) / openssl_rate
        );
    }
    if verifier_ratio < EXPECTED_VERIFIER_RATIO {
        println!("WARNING: Verifier::verify is below {EXPECTED_VERIFIER_RATIO} of raw RSA; rerun on an idle machine");
    }
}

/// A name, a closure running the case `n` times, and the mean time per call of each round.
type Case<'a> = (&'static str, Box<dyn FnMut(usize) + 'a>, Vec<Duration>);

fn median(rounds: &[Duration]) -> Duration {
    let mut sorted = rounds.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Single-thread RSA-2048 verifications per second from `openssl speed -mr`, if installed.
fn openssl_verify_rate() -> Option<f64> {
    let output =
        std::process::Command::new("openssl").args(["speed", "-seconds", "2", "-mr", "rsa2048"]).output().ok()?;
    // Machine-readable summary: `+F2:<index>:<bits>:<sign>:<verify>`, where OpenSSL 3
    // prints operations per second and OpenSSL 1.1 printed seconds per operation.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find(|l| l.starts_with("+F2:"))?;
    let verify: f64 = line.split(':').nth(4)?.trim().parse().ok()?;
    (verify > 0.0).then(|| if verify >= 1.0 { verify } else { 1.0 / verify })
}
