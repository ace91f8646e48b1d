//! `tessera_verify::Verifier::verify`: the whole token check, through the public API, with
//! the JWK Set fetched once from a mock issuer on 127.0.0.1 (no network per input).
//!
//! The first byte of the input picks the mode:
//! - 0: the rest is the token, as sent (shape, header, `kid`, signature decoding and check);
//! - 1: the rest is a JWT Claims Set for the claims parser alone;
//! - 2: the rest is `header JSON \0 payload JSON \0 signature bytes`, base64url-encoded here,
//!   so the fuzzer reaches the header parser without discovering base64url; a header that
//!   is not UTF-8 or not a JSON object must be refused as malformed;
//! - 3: the second byte picks one of a few fixed headers, the rest is the claims, and the
//!   token is signed here with the test key, so the checks after the signature (claims
//!   parsing, `iss`, `aud`, `exp`, `nbf`, `iat`) run on fuzzed claims. Signing costs about
//!   a millisecond, so only claims the parser accepts are signed.
//!
//! An accepted token must carry the issuer and audience, and be valid now; a correctly
//! signed one must never be refused for its shape or signature.
#![no_main]

mod common;

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{test_key, PS256_KID, RS256_KID};
use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_verify::{fuzzing, Algorithm, Claims, Verifier, VerifyError};

/// Resolved to the mock issuer's port by the HTTP client, so the issuer (and so the seeds)
/// do not depend on the port.
const ISSUER_HOST: &str = "issuer.fuzz";
const ISSUER: &str = "http://issuer.fuzz";
const AUDIENCE: &str = "https://api.example.com";
const LEEWAY: i64 = 30;

struct Harness {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
}

/// Answers discovery and the JWK Set, one request per connection (the verifier does not
/// pool connections).
fn start_mock_issuer() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let addr = listener.local_addr().unwrap();
    let discovery = serde_json::json!({ "issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks.json") }).to_string();
    let jwks = test_key().jwk_set();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let body = if request.starts_with(b"GET /.well-known/openid-configuration ") {
                &discovery
            } else if request.starts_with(b"GET /jwks.json ") {
                &jwks
            } else {
                let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                continue;
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: max-age=86400\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        }
    });
    addr
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let addr = start_mock_issuer();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = reqwest::Client::builder()
            .resolve(ISSUER_HOST, addr)
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let verifier = runtime
            .block_on(
                Verifier::builder(ISSUER)
                    .audience(AUDIENCE)
                    .algorithms([Algorithm::RS256, Algorithm::PS256])
                    .leeway(Duration::from_secs(LEEWAY as u64))
                    // An unknown kid refetches the set once, not once per input.
                    .min_refetch_interval(Duration::from_secs(24 * 60 * 60))
                    .http_client(client)
                    .build(),
            )
            .expect("the verifier builds against the mock issuer");
        assert_eq!(verifier.key_ids(), [PS256_KID, RS256_KID]);
        Harness { runtime, verifier }
    })
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Runs the verifier; checks what holds for every accepted token.
fn verify(token: &str) -> Result<Claims, VerifyError> {
    let h = harness();
    let before = unix_now();
    let result = h.runtime.block_on(h.verifier.verify(token));
    let after = unix_now();
    match &result {
        Ok(claims) => {
            assert_eq!(claims.iss, ISSUER);
            assert!(claims.aud.iter().any(|a| a == AUDIENCE));
            assert!(before < claims.exp.saturating_add(LEEWAY), "expired token accepted");
            assert!(claims.nbf.is_none_or(|nbf| nbf <= after.saturating_add(LEEWAY)), "nbf in the future");
            assert!(claims.iat <= after.saturating_add(LEEWAY), "iat in the future");
        }
        Err(error) => {
            assert!(error.is_token_error(), "{error:?}");
            assert!(!error.to_string().is_empty());
        }
    }
    result
}

/// Fixed headers for mode 3: which one, and how it must be signed.
fn signed_header(choice: u8) -> (String, Option<bool>) {
    // `Some(true)` signs PKCS#1 v1.5 (RS256), `Some(false)` PSS (PS256).
    let (alg, typ, kid, pkcs1) = match choice % 5 {
        0 => ("RS256", "at+jwt", RS256_KID, Some(true)),
        1 => ("PS256", "application/at+jwt", PS256_KID, Some(false)),
        // The key is published for PS256 only.
        2 => ("RS256", "at+jwt", PS256_KID, Some(true)),
        // Not an access token.
        3 => ("RS256", "JWT", RS256_KID, Some(true)),
        _ => ("RS256", "at+jwt", "unknown-kid", Some(true)),
    };
    (serde_json::json!({ "typ": typ, "alg": alg, "kid": kid }).to_string(), pkcs1)
}

fn encode(header: &[u8], payload: &[u8], signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = verify(token);
            }
        }
        1 => {
            if let Ok(claims) = fuzzing::parse_claims(rest) {
                assert!(!claims.aud.is_empty());
                assert!(claims.scope.iter().all(|s| !s.is_empty() && !s.contains(' ')));
            }
        }
        2 => {
            let mut parts = rest.splitn(3, |&b| b == 0);
            let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
                return;
            };
            let result = verify(&encode(header, payload, signature));
            // Nobody can sign for the test key but mode 3.
            assert!(result.is_err() || signature.len() == 256);
            // RFC 7515 §4, §5.2: the header is a JSON object in UTF-8; anything else is
            // refused as malformed, before any key is looked up. (Not judged by parsing it
            // into a `Value`: that also refuses valid JSON nested deeper than 128 levels.)
            let is_object = std::str::from_utf8(header).is_ok_and(|h| h.trim_ascii_start().starts_with('{'));
            if !is_object {
                assert!(matches!(result, Err(VerifyError::Malformed(_))), "header {header:?}: {result:?}");
            }
        }
        _ => {
            let Some((&choice, payload)) = rest.split_first() else { return };
            let Ok(expected) = fuzzing::parse_claims(payload) else { return };
            let (header, pkcs1) = signed_header(choice);
            let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(payload));
            let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                if pkcs1 == Some(true) { &RSA_PKCS1_SHA256 } else { &RSA_PSS_SHA256 };
            let signature = test_key().sign(encoding, signing_input.as_bytes());
            let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
            let result = verify(&token);
            match choice % 5 {
                0 | 1 => match result {
                    Ok(claims) => assert_eq!(claims, expected),
                    Err(error) => assert!(
                        matches!(
                            error,
                            VerifyError::WrongIssuer
                                | VerifyError::WrongAudience
                                | VerifyError::Expired
                                | VerifyError::NotYetValid
                        ),
                        "a correctly signed token was refused: {error:?}"
                    ),
                },
                2 => assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{result:?}"),
                3 => assert!(matches!(result, Err(VerifyError::WrongType)), "{result:?}"),
                _ => assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}"),
            }
        }
    }
});
