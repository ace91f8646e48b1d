//! `revocation-latency`: how long a revocation takes to reach every verifier (issue #12).
//!
//! N `tessera-verify` verifiers with the `revocations` feature run in this process, each
//! with its own SSF poll stream (RFC 8936 long polling), spread over several receiver
//! clients. Tokens of two kinds are prepared beforehand; then, one at a time and after a
//! random gap, each is revoked through RFC 7009 `/revoke`, and every verifier is asked
//! again and again until it refuses the token with `VerifyError::Revoked`. The clock
//! starts when the `/revoke` answer has arrived (the moment a client knows the
//! revocation happened) and stops, per verifier, at its first refusal; the revocation's
//! "all refuse" latency is the last of those.
//!
//! Kinds:
//! - `refresh_token`: a refresh token of a browser login's family is revoked; the family's
//!   access token must then be refused (CAEP `session-revoked` with `token_family`,
//!   matched by `fid`);
//! - `access_token`: a `client_credentials` access token is revoked by itself (CAEP
//!   `session-revoked` with a `jwt_id` subject, matched by `jti`).
//!
//! The measurement is void, and the command fails, if a verifier does not accept a token
//! right before its revocation, refuses one for any other reason than `Revoked`, or
//! refuses an unrevoked token at the end.

use crate::flows::{self, WebClient};
use crate::http::{basic_auth, Conn, Target};
use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_verify::{Revocations, Verifier, VerifyError};

/// Between two rounds over the verifiers. Tokio's timer rounds it up to its 1 ms tick, so
/// a latency is known to about a millisecond plus one round (100 × ~15 µs).
const ROUND_PAUSE: Duration = Duration::from_micros(500);

pub struct Setup {
    pub target: Target,
    pub audience: String,
    pub verifiers: usize,
    /// `(client_id, secret)` of the receiver clients; verifier `i` uses receiver `i % len`.
    pub receivers: Vec<(String, String)>,
    pub web: Arc<WebClient>,
    pub username: String,
    pub password: String,
    /// `(client_id, secret)` of a `client_credentials` client.
    pub service: (String, String),
    /// Revocations of each kind.
    pub per_kind: usize,
    pub min_gap: Duration,
    pub max_gap: Duration,
    /// A revocation not refused by every verifier within this long is missed.
    pub miss_after: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    RefreshToken,
    AccessToken,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::AccessToken => "access_token",
        }
    }
}

/// A token to revoke, the access token that must then be refused, and the client that
/// owns both (RFC 7009 §2.1: only the client a token was issued to may revoke it).
struct Revocable {
    kind: Kind,
    revoke: String,
    access_token: String,
    client: (String, String),
}

/// One revocation's outcome.
#[derive(Serialize)]
struct Sample {
    kind: Kind,
    /// The random wait before it.
    gap_ms: f64,
    /// The `/revoke` request, sent to answered.
    revoke_ms: f64,
    /// From the answer to the last verifier's refusal; `None` when missed.
    all_refuse_ms: Option<f64>,
    /// Verifiers that had not refused it within `miss_after`.
    missed_verifiers: usize,
    /// Verifiers that already refused it at the first check after the answer.
    refused_at_first_check: usize,
    #[serde(skip)]
    per_verifier_ms: Vec<f64>,
}

/// A uniform random number in `0..bound` from the OS generator (no `rand` crate in the
/// workspace; the slight modulo bias does not matter for gaps and shuffling).
fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random number generator works");
    u64::from_le_bytes(bytes) % bound.max(1)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// p50/p90/p99/max of a set of latencies in milliseconds.
fn distribution(values: Vec<f64>) -> Value {
    let values = sorted(values);
    let mean = (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    json!({
        "samples": values.len(),
        "p50_ms": percentile(&values, 0.50),
        "p90_ms": percentile(&values, 0.90),
        "p99_ms": percentile(&values, 0.99),
        "max_ms": values.last(),
        "mean_ms": mean,
    })
}

async fn build_verifiers(setup: &Setup) -> anyhow::Result<Vec<Verifier>> {
    let mut verifiers = Vec::with_capacity(setup.verifiers);
    for i in 0..setup.verifiers {
        let (id, secret) = &setup.receivers[i % setup.receivers.len()];
        let verifier = Verifier::builder(&setup.target.base)
            .audience(&setup.audience)
            .revocations(Revocations::poll(id, secret).description(format!("tessera-bench verifier {i}")))
            .build()
            .await
            .with_context(|| format!("verifier {i} (receiver {id}): metadata, token, stream and first poll"))?;
        verifiers.push(verifier);
    }
    Ok(verifiers)
}

async fn client_credentials(conn: &mut Conn, (id, secret): &(String, String)) -> anyhow::Result<String> {
    let response = conn.post_form("/token", &[basic_auth(id, secret)], &[("grant_type", "client_credentials")]).await?;
    if response.status != 200 {
        bail!("client_credentials failed: {}", response.excerpt());
    }
    Ok(response.json()?["access_token"].as_str().context("no access_token")?.to_owned())
}

/// `per_kind` tokens of each kind, in random order.
async fn prepare_tokens(setup: &Setup) -> anyhow::Result<Vec<Revocable>> {
    let mut conn = Conn::new(&setup.target);
    let web = &setup.web;
    let web_client = (web.id.clone(), web.secret.clone());
    let mut tokens = Vec::with_capacity(2 * setup.per_kind);
    // One password login; every further family comes from a code through the SSO session.
    let (session, first) = flows::log_in(&mut conn, web, &setup.username, &setup.password).await?;
    let mut code = Some(first);
    for _ in 0..setup.per_kind {
        let code = match code.take() {
            Some(code) => code,
            None => flows::authorize(&mut conn, web, &session).await?,
        };
        let answer = flows::exchange(&mut conn, web, &code).await?;
        let field = |name: &str| {
            answer[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {name} in the code exchange: {answer}"))
        };
        tokens.push(Revocable {
            kind: Kind::RefreshToken,
            revoke: field("refresh_token")?,
            access_token: field("access_token")?,
            client: web_client.clone(),
        });
    }
    for _ in 0..setup.per_kind {
        let token = client_credentials(&mut conn, &setup.service).await?;
        tokens.push(Revocable {
            kind: Kind::AccessToken,
            revoke: token.clone(),
            access_token: token,
            client: setup.service.clone(),
        });
    }
    // Fisher–Yates, so both kinds are spread over the whole run.
    for i in (1..tokens.len()).rev() {
        let j = random_below(i as u64 + 1) as usize;
        tokens.swap(i, j);
    }
    Ok(tokens)
}

/// Every verifier accepts `token`, or the measurement is void.
async fn all_accept(verifiers: &[Verifier], token: &str, what: &str) -> anyhow::Result<()> {
    for (i, verifier) in verifiers.iter().enumerate() {
        if let Err(error) = verifier.verify(token).await {
            bail!("verifier {i} refuses {what} that must be accepted ({error:?}): the measurement is void");
        }
    }
    Ok(())
}

/// RFC 7009 §2.1: revokes the token; returns how long the request took, once answered 200.
async fn revoke(conn: &mut Conn, token: &Revocable) -> anyhow::Result<Duration> {
    let hint = token.kind.name();
    let (id, secret) = &token.client;
    let sent = Instant::now();
    let response = conn
        .post_form("/revoke", &[basic_auth(id, secret)], &[("token", &token.revoke), ("token_type_hint", hint)])
        .await?;
    let took = sent.elapsed();
    if response.status != 200 {
        bail!("POST /revoke ({hint}) failed: {}", response.excerpt());
    }
    Ok(took)
}

/// Checks the verifiers that have not refused yet, round after round, until all refuse
/// `token` as revoked or `miss_after` has passed since `t0`.
async fn watch(verifiers: &[Verifier], token: &str, t0: Instant, miss_after: Duration) -> anyhow::Result<Watched> {
    let mut pending: Vec<usize> = (0..verifiers.len()).collect();
    let mut latencies = Vec::with_capacity(verifiers.len());
    let mut rounds = 0u64;
    let mut first_round = 0;
    loop {
        let mut still = Vec::with_capacity(pending.len());
        for &i in &pending {
            match verifiers[i].verify(token).await {
                Err(VerifyError::Revoked) => latencies.push(ms(t0.elapsed())),
                Ok(_) => still.push(i),
                Err(error) => bail!(
                    "verifier {i} refused a token being revoked for another reason ({error:?}) after {:?}: \
                     the measurement is void",
                    t0.elapsed()
                ),
            }
        }
        if rounds == 0 {
            first_round = verifiers.len() - still.len();
        }
        rounds += 1;
        pending = still;
        if pending.is_empty() || t0.elapsed() >= miss_after {
            break;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    Ok(Watched { latencies, missed: pending.len(), first_round, rounds })
}

struct Watched {
    latencies: Vec<f64>,
    missed: usize,
    first_round: usize,
    rounds: u64,
}

pub async fn run(setup: Setup) -> anyhow::Result<Value> {
    anyhow::ensure!(!setup.receivers.is_empty(), "at least one receiver client");
    anyhow::ensure!(setup.min_gap <= setup.max_gap, "the smallest gap exceeds the largest");
    let started = Instant::now();
    let verifiers = build_verifiers(&setup).await?;
    let build_s = started.elapsed().as_secs_f64();

    let prepared = Instant::now();
    let tokens = prepare_tokens(&setup).await?;
    let prepare_s = prepared.elapsed().as_secs_f64();

    let mut conn = Conn::new(&setup.target);
    let mut samples = Vec::with_capacity(tokens.len());
    let (mut rounds, mut watch_time) = (0u64, Duration::ZERO);
    let measured = Instant::now();
    let gap_span = (setup.max_gap - setup.min_gap).as_micros() as u64 + 1;
    for token in &tokens {
        let gap = setup.min_gap + Duration::from_micros(random_below(gap_span));
        tokio::time::sleep(gap).await;
        all_accept(&verifiers, &token.access_token, &format!("a {} token before its revocation", token.kind.name()))
            .await?;
        let revoke_took = revoke(&mut conn, token).await?;
        let t0 = Instant::now();
        let watched = watch(&verifiers, &token.access_token, t0, setup.miss_after).await?;
        watch_time += t0.elapsed();
        rounds += watched.rounds;
        let all_refuse_ms = (watched.missed == 0).then(|| watched.latencies.iter().copied().fold(0.0, f64::max));
        samples.push(Sample {
            kind: token.kind,
            gap_ms: ms(gap),
            revoke_ms: ms(revoke_took),
            all_refuse_ms,
            missed_verifiers: watched.missed,
            refused_at_first_check: watched.first_round,
            per_verifier_ms: watched.latencies,
        });
    }
    let measured_s = measured.elapsed().as_secs_f64();

    // The refusals were about these tokens, not everything: a fresh token is accepted.
    let control = client_credentials(&mut conn, &setup.service).await?;
    all_accept(&verifiers, &control, "an unrevoked token after the run").await?;
    let statuses: Vec<_> = verifiers.iter().filter_map(Verifier::revocation_status).collect();
    let refusing = statuses.iter().filter(|s| s.is_refusing).count();
    let deny_entries: Vec<usize> = statuses.iter().map(|s| s.deny_entries).collect();

    let mut shutdown_errors = BTreeMap::<String, usize>::new();
    for verifier in &verifiers {
        if let Err(error) = verifier.shutdown_revocations().await {
            *shutdown_errors.entry(error.to_string()).or_default() += 1;
        }
    }

    let summary = |kind: Option<Kind>| {
        let chosen: Vec<&Sample> = samples.iter().filter(|s| kind.is_none_or(|k| s.kind == k)).collect();
        let all = chosen.iter().filter_map(|s| s.all_refuse_ms).collect();
        let per = chosen.iter().flat_map(|s| s.per_verifier_ms.iter().copied()).collect();
        let first: usize = chosen.iter().map(|s| s.refused_at_first_check).sum();
        json!({
            "count": chosen.len(),
            "missed": chosen.iter().filter(|s| s.all_refuse_ms.is_none()).count(),
            "all_refuse": distribution(all),
            "per_verifier": distribution(per),
            "revoke_request": distribution(chosen.iter().map(|s| s.revoke_ms).collect()),
            // The same from the moment the request was sent: the transmitter may deliver
            // before the client has its answer, so this bounds the head start.
            "all_refuse_from_request": distribution(
                chosen.iter().filter_map(|s| Some(s.all_refuse_ms? + s.revoke_ms)).collect()
            ),
            "refused_at_first_check_share": first as f64 / (chosen.len() * verifiers.len()).max(1) as f64,
        })
    };
    let overall = summary(None);
    let by_kind: BTreeMap<&str, Value> =
        [Kind::RefreshToken, Kind::AccessToken].into_iter().map(|k| (k.name(), summary(Some(k)))).collect();
    Ok(json!({
        "scenario": "revocation_latency",
        "verifiers": verifiers.len(),
        "receivers": setup.receivers.len(),
        "count": samples.len(),
        "missed": overall["missed"],
        "overall": overall,
        "by_kind": by_kind,
        "setup": {
            "gap_ms": [ms(setup.min_gap), ms(setup.max_gap)],
            "miss_after_s": setup.miss_after.as_secs_f64(),
            "build_verifiers_s": build_s,
            "prepare_tokens_s": prepare_s,
            "measured_s": measured_s,
            "check_rounds": rounds,
            "mean_round_ms": ms(watch_time) / rounds.max(1) as f64,
        },
        "after": {
            "verifiers_refusing_everything": refusing,
            "deny_entries_min": deny_entries.iter().min(),
            "deny_entries_max": deny_entries.iter().max(),
            "shutdown_errors": shutdown_errors,
        },
        "samples": samples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&values, 1.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn random_below_stays_below() {
        assert!((0..1000).all(|_| random_below(3) < 3));
        assert_eq!(random_below(1), 0);
    }
}
