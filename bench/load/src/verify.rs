//! Scenario 6: `tessera-verify` throughput in-process, per core, against a real token from
//! the running server and its published JWKS. Like `verify/benches/verify.rs`, each
//! thread alternates short rounds of the raw aws-lc RSA verification (the key parsed
//! once) and `Verifier::verify`, so a burst of load from elsewhere hits both alike.

use crate::http::{basic_auth, Conn, Target};
use anyhow::{bail, Context};
use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tessera_verify::Verifier;

#[derive(Debug, Serialize)]
pub struct ThreadsResult {
    pub threads: usize,
    /// Verifications per second over all threads.
    pub raw_total_per_s: f64,
    pub verifier_total_per_s: f64,
    /// The same divided by the number of threads: the rate per core.
    pub raw_per_thread: f64,
    pub verifier_per_thread: f64,
}

#[derive(Debug, Serialize)]
pub struct VerifyResult {
    pub token_bytes: usize,
    pub seconds_per_case: f64,
    pub runs: Vec<ThreadsResult>,
}

/// Fetches a `client_credentials` token from the server and checks it verifies.
pub async fn prepare(
    target: &Target,
    client_id: &str,
    secret: &str,
    audience: &str,
) -> anyhow::Result<(String, Verifier, ParsedPublicKey, String, Vec<u8>)> {
    let mut conn = Conn::new(target);
    let response =
        conn.post_form("/token", &[basic_auth(client_id, secret)], &[("grant_type", "client_credentials")]).await?;
    if response.status != 200 {
        bail!("no token for the verification benchmark: {}", response.excerpt());
    }
    let token = response.json()?["access_token"].as_str().context("access_token")?.to_owned();
    let verifier = Verifier::builder(&target.base).audience(audience).build().await.context("Verifier::build")?;
    verifier.verify(&token).await.context("the server's token does not verify")?;

    // The baseline: the same RSA operation, with the JWK parsed once.
    let jwks = conn.get("/jwks.json", &[]).await?.json()?;
    let kid = {
        let header = token.split('.').next().context("a JWS")?;
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
        header["kid"].as_str().context("kid")?.to_owned()
    };
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .context("the token's kid is not in the JWKS")?;
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().context("n")?)?;
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().context("e")?)?;
    let parsed = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|e| anyhow::anyhow!("the JWK is not an RSA key: {e}"))?;
    let (input, signature) = token.rsplit_once('.').context("a JWS")?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;
    parsed.verify_sig(input.as_bytes(), &signature).map_err(|_| anyhow::anyhow!("raw verification failed"))?;
    let input = input.to_owned();
    Ok((token, verifier, parsed, input, signature))
}

const ROUND: Duration = Duration::from_millis(200);

/// Runs `threads` threads for about `seconds` per case.
pub fn measure(
    token: &str,
    verifier: &Verifier,
    parsed: ParsedPublicKey,
    input: &str,
    signature: &[u8],
    thread_counts: &[usize],
    seconds: f64,
) -> VerifyResult {
    let parsed = Arc::new(parsed);
    let rounds = ((seconds / ROUND.as_secs_f64()).ceil() as usize).max(1);
    let mut runs = Vec::new();
    for &threads in thread_counts {
        let barrier = Arc::new(Barrier::new(threads));
        let per_thread: Vec<(f64, f64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (barrier, parsed, verifier) = (barrier.clone(), parsed.clone(), verifier.clone());
                    scope.spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                        // Warm-up, then alternate the two cases in rounds.
                        runtime.block_on(verifier.verify(token)).expect("verifies");
                        barrier.wait();
                        let (mut raw, mut raw_time, mut ours, mut ours_time) = (0u64, 0f64, 0u64, 0f64);
                        for _ in 0..rounds {
                            let start = Instant::now();
                            while start.elapsed() < ROUND {
                                for _ in 0..16 {
                                    black_box(parsed.verify_sig(black_box(input.as_bytes()), signature)).unwrap();
                                }
                                raw += 16;
                            }
                            raw_time += start.elapsed().as_secs_f64();
                            let start = Instant::now();
                            runtime.block_on(async {
                                while start.elapsed() < ROUND {
                                    for _ in 0..16 {
                                        black_box(verifier.verify(black_box(token)).await).unwrap();
                                    }
                                    ours += 16;
                                }
                            });
                            ours_time += start.elapsed().as_secs_f64();
                        }
                        (raw as f64 / raw_time, ours as f64 / ours_time)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a verification thread panicked")).collect()
        });
        let raw_total: f64 = per_thread.iter().map(|r| r.0).sum();
        let ours_total: f64 = per_thread.iter().map(|r| r.1).sum();
        runs.push(ThreadsResult {
            threads,
            raw_total_per_s: raw_total,
            verifier_total_per_s: ours_total,
            raw_per_thread: raw_total / threads as f64,
            verifier_per_thread: ours_total / threads as f64,
        });
    }
    VerifyResult { token_bytes: token.len(), seconds_per_case: rounds as f64 * ROUND.as_secs_f64(), runs }
}
