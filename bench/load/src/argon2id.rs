//! The raw argon2id rate: the physical limit of password logins, as openssl's RSA rate is
//! that of token issuance. The parameters come from a PHC string the server wrote (the
//! harness reads its user's `password_hash`), so the baseline always matches whatever
//! `src/password.rs` hashes with; the same `argon2` crate computes it.

use anyhow::{bail, Context};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The cost parameters of an argon2id PHC string (RFC 9106 §3.1; the PHC string format's
/// `$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    pub version: u32,
}

impl Argon2Params {
    pub fn parse_phc(phc: &str) -> anyhow::Result<Self> {
        let mut fields = phc.trim().split('$');
        if fields.next() != Some("") {
            bail!("not a PHC string (no leading `$`): {phc:.20}");
        }
        match fields.next() {
            Some("argon2id") => {}
            other => bail!("not argon2id: {other:?}"),
        }
        let mut next = fields.next().context("a PHC string without parameters")?;
        // `v=` is optional in the PHC format; its absence means version 0x10.
        let version = match next.strip_prefix("v=") {
            Some(v) => {
                let version = v.parse().with_context(|| format!("version {v:?}"))?;
                next = fields.next().context("a PHC string without parameters")?;
                version
            }
            None => 0x10,
        };
        let (mut m_kib, mut t, mut p) = (None, None, None);
        for pair in next.split(',') {
            let (key, value) = pair.split_once('=').with_context(|| format!("parameter {pair:?}"))?;
            let value: u32 = value.parse().with_context(|| format!("parameter {pair:?}"))?;
            match key {
                "m" => m_kib = Some(value),
                "t" => t = Some(value),
                "p" => p = Some(value),
                // keyid, data: no effect on the cost.
                _ => {}
            }
        }
        Ok(Self {
            m_kib: m_kib.context("no m= parameter")?,
            t: t.context("no t= parameter")?,
            p: p.context("no p= parameter")?,
            version,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Rate {
    pub params: Argon2Params,
    pub threads: usize,
    pub seconds: f64,
    pub hashes: u64,
    /// Hashes per second over all threads: the most password checks the machine can do.
    pub per_s: f64,
    /// One hash's time on one thread, from the same run.
    pub ms_per_hash: f64,
}

/// Hashes a password in a loop on `threads` threads for `seconds`, each thread with its
/// own working memory allocated once (as the server reuses it, `PasswordChecks`).
pub fn measure(params: Argon2Params, threads: usize, seconds: f64) -> anyhow::Result<Rate> {
    let version = match params.version {
        0x13 => Version::V0x13,
        0x10 => Version::V0x10,
        other => bail!("argon2 version {other} is unknown"),
    };
    let built = Params::new(params.m_kib, params.t, params.p, Some(32)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let blocks = built.block_count();
    let duration = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let hasher = Argon2::new(Algorithm::Argon2id, version, built.clone());
                scope.spawn(move || {
                    let mut memory = vec![Block::default(); blocks];
                    let mut out = [0u8; 32];
                    let mut count = 0u64;
                    while started.elapsed() < duration {
                        hasher
                            .hash_password_into_with_memory(
                                b"correct horse battery staple",
                                b"sixteen byte salt",
                                &mut out,
                                &mut memory,
                            )
                            .expect("valid parameters hash");
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("an argon2 thread panicked")).collect::<Vec<_>>()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let hashes: u64 = counts.iter().sum();
    let per_s = hashes as f64 / elapsed;
    Ok(Rate {
        params,
        threads,
        seconds: elapsed,
        hashes,
        per_s,
        ms_per_hash: if hashes == 0 { 0.0 } else { 1000.0 * elapsed * threads as f64 / hashes as f64 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_default_phc_string_gives_owasps_parameters() {
        // The shape `tessera user create` writes with argon2 0.5's defaults (this one is
        // bench/seed's, whose output matches no password).
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkLWJ5LWJlbmNo$3jvO6WybVz9hB3EoS1z1+Xq0VUZ3t2w2c5b9rWbDkTQ";
        assert_eq!(Argon2Params::parse_phc(phc).unwrap(), Argon2Params { m_kib: 19456, t: 2, p: 1, version: 19 });
    }

    #[test]
    fn parameters_are_read_in_any_order_and_the_version_may_be_absent() {
        let params = Argon2Params::parse_phc("$argon2id$p=4,m=65536,t=3$c2FsdA$aGFzaA").unwrap();
        assert_eq!(params, Argon2Params { m_kib: 65536, t: 3, p: 4, version: 0x10 });
    }

    #[test]
    fn other_algorithms_and_missing_parameters_are_refused() {
        assert!(Argon2Params::parse_phc("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA").is_err());
        assert!(Argon2Params::parse_phc("$argon2id$v=19$m=19456,t=2$c2FsdA$aGFzaA").is_err());
        assert!(Argon2Params::parse_phc("argon2id$v=19$m=19456,t=2,p=1").is_err());
        assert!(Argon2Params::parse_phc("$argon2id$v=19$m=lots,t=2,p=1$c2FsdA$aGFzaA").is_err());
    }

    #[test]
    fn a_short_measurement_counts_hashes() {
        // Tiny parameters: this is about the counting, not the rate.
        let params = Argon2Params { m_kib: 64, t: 1, p: 1, version: 19 };
        let rate = measure(params, 2, 0.05).unwrap();
        assert!(rate.hashes >= 2 && rate.per_s > 0.0, "{rate:?}");
    }
}
