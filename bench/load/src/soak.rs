//! The long run (issue 16): a `client_credentials` + refresh-rotation mix at half its
//! peak for many minutes, with the server's RSS, the errors and the p99 of every minute.
//! Memory that grows under a steady load is a leak or an unbounded cache; a minute-by-
//! minute p99 shows a slow drift (a table, a queue) that a 10-second step never sees.

use crate::driver::{self, Plan, Worker};
use crate::flows::{self, Session, WebClient};
use crate::http::{Conn, Target};
use crate::scenarios::{ClientCredentials, RefreshChain};
use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// RSS is flat when no sample of the last [`WINDOW_MINUTES`] minutes exceeds the first
/// minute after the warm-up by more than [`GROWTH`] and [`SLACK_KIB`]: allocator noise
/// and a connection or two more stay inside it, a leak of a few KiB per request does not.
pub const WINDOW_MINUTES: usize = 10;
pub const GROWTH: f64 = 1.10;
pub const SLACK_KIB: u64 = 2048;

#[derive(Debug, PartialEq, Serialize)]
pub struct RssVerdict {
    /// RSS at the end of the first minute after the warm-up.
    pub baseline_kib: u64,
    /// The highest RSS of the window (the last minutes, after the baseline).
    pub window_max_kib: u64,
    pub window_minutes: usize,
    /// `baseline × GROWTH + SLACK_KIB`.
    pub limit_kib: u64,
    pub is_flat: bool,
}

/// The verdict over one sample per minute (`samples_kib[i]`: the end of minute i + 1),
/// the first `warmup_minutes` ignored. `None` when no minute follows the baseline.
pub fn rss_verdict(samples_kib: &[u64], warmup_minutes: usize) -> Option<RssVerdict> {
    let baseline_kib = *samples_kib.get(warmup_minutes)?;
    let after = &samples_kib[warmup_minutes + 1..];
    if after.is_empty() {
        return None;
    }
    let window = &after[after.len().saturating_sub(WINDOW_MINUTES)..];
    let window_max_kib = *window.iter().max()?;
    let limit_kib = (baseline_kib as f64 * GROWTH) as u64 + SLACK_KIB;
    Some(RssVerdict {
        baseline_kib,
        window_max_kib,
        window_minutes: window.len(),
        limit_kib,
        is_flat: window_max_kib <= limit_kib,
    })
}

/// The default warm-up: a sixth of the run (5 of 30 minutes; none in a 2-minute smoke).
pub fn default_warmup(minutes: usize) -> usize {
    minutes / 6
}

/// `VmRSS` of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("process {pid}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no VmRSS for process {pid}"))
}

/// One connection of the mix, counting its successes: the closed-loop peak is measured
/// per kind (see [`even_mix_peak`]).
pub struct Mixed {
    kind: Kind,
    ok: u64,
}

enum Kind {
    ClientCredentials(ClientCredentials),
    Refresh(RefreshChain),
}

impl Worker for Mixed {
    async fn request(&mut self) -> Result<(), String> {
        let result = match &mut self.kind {
            Kind::ClientCredentials(worker) => worker.request().await,
            Kind::Refresh(worker) => worker.request().await,
        };
        self.ok += u64::from(result.is_ok());
        result
    }
}

/// The peak of an even mix. A closed loop lets the fast kind (client_credentials) take
/// more than its share, while a fixed rate gives every connection the same pace; so the
/// even peak is every connection at the pace of the slowest kind's connections in the
/// closed loop (a lower bound: throttling the fast kind frees some CPU for the slow one).
/// `per_connection`: requests per second of one connection, per kind.
pub fn even_mix_peak(connections: usize, per_connection: &[f64]) -> f64 {
    let slowest = per_connection.iter().copied().fold(f64::INFINITY, f64::min);
    if slowest.is_finite() {
        connections as f64 * slowest
    } else {
        0.0
    }
}

pub struct Setup {
    pub targets: Vec<Target>,
    pub connections: usize,
    pub service: (String, String),
    pub scope: String,
    pub web: Arc<WebClient>,
    pub username: String,
    pub password: String,
    pub minutes: usize,
    pub warmup_minutes: usize,
    pub minute: Duration,
    pub peak_seconds: f64,
    /// A fixed rate instead of half the measured peak.
    pub rate: Option<f64>,
    pub pids: Vec<u32>,
}

#[derive(Serialize)]
struct Minute {
    minute: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    rss_kib: u64,
    error_samples: std::collections::BTreeMap<String, u64>,
}

pub async fn run(setup: Setup) -> anyhow::Result<Value> {
    let first = &setup.targets[0];
    let mut conn = Conn::new(first);
    let (session, _) = flows::log_in(&mut conn, &setup.web, &setup.username, &setup.password).await?;
    let session: Arc<Session> = Arc::new(session);
    let mut workers = Vec::with_capacity(setup.connections);
    for i in 0..setup.connections {
        let target = &setup.targets[i % setup.targets.len()];
        // Even connections issue client_credentials tokens, odd ones rotate a chain each.
        let kind = if i % 2 == 0 {
            Kind::ClientCredentials(ClientCredentials::new(
                target,
                &setup.service.0,
                &setup.service.1,
                Some(setup.scope.as_str()),
            ))
        } else {
            let token = flows::start_chain(&mut conn, &setup.web, &session).await?;
            Kind::Refresh(RefreshChain::new(target, setup.web.clone(), session.clone(), token, None))
        };
        workers.push(Mixed { kind, ok: 0 });
    }
    let rss = |pids: &[u32]| pids.iter().map(|&pid| rss_kib(pid).unwrap_or(0)).sum::<u64>();

    let peak_plan =
        Plan { warmup: Duration::from_secs(1), duration: Duration::from_secs_f64(setup.peak_seconds), rate: None };
    let (peak, mut workers) = driver::run_keeping(workers, peak_plan).await;
    // Successes over the whole peak run, warm-up included, per connection of each kind.
    let seconds = 1.0 + setup.peak_seconds;
    let per_connection = |is_cc: bool| {
        let of_kind: Vec<u64> =
            workers.iter().filter(|w| matches!(w.kind, Kind::ClientCredentials(_)) == is_cc).map(|w| w.ok).collect();
        of_kind.iter().sum::<u64>() as f64 / of_kind.len().max(1) as f64 / seconds
    };
    let (cc_per_connection, refresh_per_connection) = (per_connection(true), per_connection(false));
    let even_peak = even_mix_peak(setup.connections, &[cc_per_connection, refresh_per_connection]);
    let rate = setup.rate.unwrap_or(even_peak / 2.0);
    let rss_start = rss(&setup.pids);

    let mut minutes = Vec::with_capacity(setup.minutes);
    for minute in 1..=setup.minutes {
        let plan = Plan { warmup: Duration::ZERO, duration: setup.minute, rate: Some(rate) };
        let (summary, back) = driver::run_keeping(workers, plan).await;
        workers = back;
        let sample = Minute {
            minute,
            rps: summary.rps,
            p50_ms: summary.p50_ms,
            p99_ms: summary.p99_ms,
            max_ms: summary.max_ms,
            errors: summary.errors,
            rss_kib: rss(&setup.pids),
            error_samples: summary.error_samples,
        };
        eprintln!(
            "soak minute {minute}/{}: {:.0} req/s, p99 {:.2} ms, {} errors, RSS {:.1} MiB",
            setup.minutes,
            sample.rps,
            sample.p99_ms,
            sample.errors,
            sample.rss_kib as f64 / 1024.0
        );
        minutes.push(sample);
    }
    let samples: Vec<u64> = minutes.iter().map(|m| m.rss_kib).collect();
    let verdict = rss_verdict(&samples, setup.warmup_minutes);
    let errors: u64 = minutes.iter().map(|m| m.errors).sum();
    Ok(json!({
        "scenario": "soak",
        "mix": "client_credentials (half the connections) + refresh rotation (the other half)",
        "connections": setup.connections,
        "replicas": setup.targets.len(),
        "peak": peak,
        "peak_per_connection": { "client_credentials": cc_per_connection, "refresh": refresh_per_connection },
        "even_mix_peak": even_peak,
        "rate": rate,
        "minute_s": setup.minute.as_secs_f64(),
        "warmup_minutes": setup.warmup_minutes,
        "rss_start_kib": rss_start,
        "minutes": minutes,
        "errors": errors,
        "rss_rule": format!("max RSS of the last {WINDOW_MINUTES} minutes ≤ the first minute after the warm-up × {GROWTH} + {} MiB",
                            SLACK_KIB / 1024),
        "rss_verdict": verdict,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024;

    #[test]
    fn steady_memory_after_the_warm_up_is_flat() {
        // Growth during the warm-up does not count; noise of a few hundred KiB after it is fine.
        let samples = [20 * MIB, 40 * MIB, 41 * MIB, 41 * MIB + 300, 40 * MIB + 900, 41 * MIB];
        let verdict = rss_verdict(&samples, 1).unwrap();
        assert_eq!(verdict.baseline_kib, 40 * MIB);
        assert_eq!(verdict.limit_kib, 44 * MIB + 2 * MIB);
        assert!(verdict.is_flat, "{verdict:?}");
    }

    #[test]
    fn growth_beyond_ten_percent_and_two_mib_is_not_flat() {
        let samples = [40 * MIB, 40 * MIB, 43 * MIB, 46 * MIB, 46 * MIB + 1];
        let verdict = rss_verdict(&samples, 0).unwrap();
        assert_eq!(verdict.limit_kib, 46 * MIB);
        assert!(!verdict.is_flat, "{verdict:?}");
        // One KiB less is at the limit, and the limit is allowed.
        let at_limit = [40 * MIB, 40 * MIB, 46 * MIB];
        assert!(rss_verdict(&at_limit, 0).unwrap().is_flat);
    }

    #[test]
    fn only_the_last_ten_minutes_are_judged() {
        // A spike early on that was given back is not growth.
        let mut samples = vec![30 * MIB, 30 * MIB, 60 * MIB];
        samples.extend([31 * MIB; 10]);
        let verdict = rss_verdict(&samples, 0).unwrap();
        assert_eq!(verdict.window_minutes, 10);
        assert_eq!(verdict.window_max_kib, 31 * MIB);
        assert!(verdict.is_flat);
    }

    #[test]
    fn a_run_without_a_minute_after_the_baseline_has_no_verdict() {
        assert_eq!(rss_verdict(&[], 0), None);
        assert_eq!(rss_verdict(&[10 * MIB], 0), None);
        assert_eq!(rss_verdict(&[10 * MIB, 10 * MIB], 1), None);
        assert!(rss_verdict(&[10 * MIB, 10 * MIB], 0).is_some());
    }

    #[test]
    fn the_even_mix_runs_every_connection_at_the_slowest_kinds_pace() {
        // 16 cc connections at 150/s each and 16 refresh connections at 40/s each.
        assert_eq!(even_mix_peak(32, &[150.0, 40.0]), 32.0 * 40.0);
        assert_eq!(even_mix_peak(32, &[]), 0.0);
    }

    #[test]
    fn the_default_warm_up_is_five_of_thirty_minutes_and_none_in_a_smoke_run() {
        assert_eq!(default_warmup(30), 5);
        assert_eq!(default_warmup(2), 0);
    }
}
