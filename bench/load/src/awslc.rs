//! A second physical limit: RSA-2048 PKCS#1 v1.5 SHA-256 with aws-lc, the library
//! Tessera and tessera-verify sign and verify with, on N threads for a fixed time.
//! On CPUs where aws-lc has faster RSA code than the system OpenSSL (AVX-512 IFMA, for
//! example), this limit is higher than `openssl speed`'s.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use serde::Serialize;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct Speed {
    pub library: &'static str,
    pub threads: usize,
    pub seconds: f64,
    /// Operations per second over all threads.
    pub sign_per_s: f64,
    pub verify_per_s: f64,
}

pub fn run(threads: usize, seconds: f64) -> anyhow::Result<Speed> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let public = key.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    let parsed: ParsedPublicKey = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // About the size of an access token's signing input.
    let message = vec![b'e'; 560];
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &message, &mut signature)?;
    parsed.verify_sig(&message, &signature).map_err(|_| anyhow::anyhow!("the signature does not verify"))?;

    let phase = Duration::from_secs_f64(seconds);
    let barrier = Barrier::new(threads);
    let counts: Vec<(f64, f64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (key, parsed, message, signature, barrier) = (&key, &parsed, &message, &signature, &barrier);
                scope.spawn(move || {
                    let rng = SystemRandom::new();
                    let mut out = vec![0u8; key.public_modulus_len()];
                    barrier.wait();
                    let (mut signs, start) = (0u64, Instant::now());
                    while start.elapsed() < phase {
                        key.sign(&RSA_PKCS1_SHA256, &rng, black_box(message), &mut out).unwrap();
                        signs += 1;
                    }
                    let sign_rate = signs as f64 / start.elapsed().as_secs_f64();
                    barrier.wait();
                    let (mut verifies, start) = (0u64, Instant::now());
                    while start.elapsed() < phase {
                        for _ in 0..16 {
                            parsed.verify_sig(black_box(message), signature).unwrap();
                        }
                        verifies += 16;
                    }
                    (sign_rate, verifies as f64 / start.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a signing thread panicked")).collect()
    });
    Ok(Speed {
        library: "aws-lc-rs (RsaKeyPair::sign, ParsedPublicKey::verify_sig)",
        threads,
        seconds,
        sign_per_s: counts.iter().map(|c| c.0).sum(),
        verify_per_s: counts.iter().map(|c| c.1).sum(),
    })
}
