//! Runs N workers for a fixed time, closed loop (each worker sends its next request as
//! soon as the last one is answered) or at a fixed total rate, and records latencies.
//!
//! At a fixed rate each request has a scheduled send time, and its latency is measured
//! from that time, not from when it was actually sent: a server that falls behind is
//! charged for the queue it builds (no coordinated omission).
//!
//! A request the server refuses on purpose (429 with `Retry-After`, the login bound of
//! the hardening issue) is neither a success nor an error: it is counted as `refused`,
//! with its own latency percentiles, and the worker may wait before its next request.

use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// The start of an `Err` message that means "refused on purpose" (see the module doc).
pub const REFUSED: &str = "refused: ";

/// One connection's worth of load: sends one request, says whether it succeeded.
pub trait Worker: Send + 'static {
    /// `Err` carries a short description of what went wrong (status and body excerpt);
    /// one that starts with [`REFUSED`] counts as refused, not as an error.
    fn request(&mut self) -> impl Future<Output = Result<(), String>> + Send;

    /// True when the worker has nothing left to send (prepared codes ran out).
    fn exhausted(&self) -> bool {
        false
    }

    /// A wait before the next request (a `Retry-After` the server asked for), taken
    /// outside any request's latency. Closed loop only: a fixed rate keeps its schedule.
    fn backoff(&mut self) -> Option<Duration> {
        None
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Requests before this are sent but not recorded (connections, caches, JIT).
    pub warmup: Duration,
    pub duration: Duration,
    /// Total requests per second over all workers; `None` for a closed loop.
    pub rate: Option<f64>,
}

#[derive(Default)]
struct Recorder {
    latencies_us: Vec<u32>,
    refused_us: Vec<u32>,
    errors: u64,
    error_samples: BTreeMap<String, u64>,
    last_done: Option<Instant>,
}

impl Recorder {
    fn record(&mut self, latency: Duration, result: Result<(), String>, done: Instant) {
        self.last_done = Some(self.last_done.map_or(done, |t| t.max(done)));
        let micros = latency.as_micros().min(u32::MAX as u128) as u32;
        match result {
            Ok(()) => self.latencies_us.push(micros),
            Err(message) if message.starts_with(REFUSED) => self.refused_us.push(micros),
            Err(message) => {
                self.errors += 1;
                if self.error_samples.len() < 5 || self.error_samples.contains_key(&message) {
                    *self.error_samples.entry(message).or_default() += 1;
                }
            }
        }
    }
}

/// The numbers of one load step.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub connections: usize,
    /// Offered rate for fixed-rate runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    pub warmup_s: f64,
    /// Measured time: from the end of the warm-up to the last recorded response.
    pub elapsed_s: f64,
    pub ok: u64,
    pub errors: u64,
    /// Requests refused on purpose (429): not errors, not in the latency percentiles.
    pub refused: u64,
    /// p99 latency of the refused requests: a bound answers them at once.
    pub refused_p99_ms: f64,
    /// Successful responses per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Up to five distinct error messages with their counts.
    pub error_samples: BTreeMap<String, u64>,
    /// True when a worker ran out of prepared work before the time was up.
    pub exhausted: bool,
}

pub async fn run<W: Worker>(workers: Vec<W>, plan: Plan) -> Summary {
    run_keeping(workers, plan).await.0
}

/// [`run`], giving the workers back: the soak runs the same connections and refresh
/// chains minute after minute.
pub async fn run_keeping<W: Worker>(workers: Vec<W>, plan: Plan) -> (Summary, Vec<W>) {
    let count = workers.len();
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let interval = plan.rate.map(|rate| Duration::from_secs_f64(count as f64 / rate));
    let mut handles = Vec::with_capacity(count);
    for (index, mut worker) in workers.into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let mut exhausted = false;
            // Staggered so that a fixed rate is spread evenly over the workers.
            let offset = interval.map(|i| i.mul_f64(index as f64 / count as f64));
            sleep_until(start).await;
            for k in 0u64.. {
                let scheduled = match (interval, offset) {
                    (Some(interval), Some(offset)) => {
                        let at = start + offset + interval.mul_f64(k as f64);
                        if at >= end {
                            break;
                        }
                        sleep_until(at).await;
                        at
                    }
                    _ => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                if worker.exhausted() {
                    exhausted = true;
                    break;
                }
                let result = worker.request().await;
                let done = Instant::now();
                if scheduled >= measure_from {
                    recorder.record(done - scheduled, result, done);
                }
                if interval.is_none() {
                    if let Some(wait) = worker.backoff() {
                        sleep_until((done + wait).min(end)).await;
                    }
                }
            }
            (recorder, exhausted, worker)
        }));
    }
    let mut latencies = Vec::new();
    let mut refused = Vec::new();
    let mut errors = 0;
    let mut error_samples: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_done = measure_from;
    let mut any_exhausted = false;
    let mut workers = Vec::with_capacity(count);
    for handle in handles {
        let (recorder, exhausted, worker) = handle.await.expect("a load worker panicked");
        workers.push(worker);
        any_exhausted |= exhausted;
        latencies.extend(recorder.latencies_us);
        refused.extend(recorder.refused_us);
        errors += recorder.errors;
        for (message, n) in recorder.error_samples {
            if error_samples.len() < 5 || error_samples.contains_key(&message) {
                *error_samples.entry(message).or_default() += n;
            }
        }
        if let Some(done) = recorder.last_done {
            last_done = last_done.max(done);
        }
    }
    latencies.sort_unstable();
    refused.sort_unstable();
    let elapsed = (last_done - measure_from).as_secs_f64().max(1e-9);
    let ms = |us: u32| us as f64 / 1000.0;
    let percentile_of = |sorted: &[u32], p: f64| {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        ms(sorted[rank.clamp(1, sorted.len()) - 1])
    };
    let percentile = |p: f64| percentile_of(&latencies, p);
    let ok = latencies.len() as u64;
    let mean = if ok == 0 { 0.0 } else { latencies.iter().map(|&l| l as f64).sum::<f64>() / ok as f64 / 1000.0 };
    let summary = Summary {
        connections: count,
        target_rate: plan.rate,
        warmup_s: plan.warmup.as_secs_f64(),
        elapsed_s: elapsed,
        ok,
        errors,
        refused: refused.len() as u64,
        refused_p99_ms: percentile_of(&refused, 99.0),
        rps: ok as f64 / elapsed,
        p50_ms: percentile(50.0),
        p90_ms: percentile(90.0),
        p99_ms: percentile(99.0),
        max_ms: latencies.last().copied().map_or(0.0, ms),
        mean_ms: mean,
        error_samples,
        exhausted: any_exhausted,
    };
    (summary, workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_apart_from_successes_and_errors() {
        let mut recorder = Recorder::default();
        let done = Instant::now();
        recorder.record(Duration::from_millis(5), Ok(()), done);
        recorder.record(Duration::from_millis(1), Err(format!("{REFUSED}429, Retry-After 1")), done);
        recorder.record(Duration::from_millis(2), Err("HTTP 500: boom".into()), done);
        assert_eq!(recorder.latencies_us, [5000]);
        assert_eq!(recorder.refused_us, [1000]);
        assert_eq!(recorder.errors, 1);
        assert_eq!(recorder.error_samples.keys().collect::<Vec<_>>(), ["HTTP 500: boom"]);
    }
}
