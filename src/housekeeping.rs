//! Background purge of rows nobody can use any more, in small batches so tables stay
//! bounded without long-held locks. Every replica runs it; the deletes are idempotent.

use crate::clock::Clock;
use crate::config::{BackchannelLogoutSettings, HousekeepingSettings};
use crate::metrics::Metrics;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Starts the purge loop. `stream_inactivity` is `ssf.inactivity_timeout`: poll streams
/// whose receiver has been silent for longer are deleted.
pub fn spawn(
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    settings: &HousekeepingSettings,
    stream_inactivity: chrono::Duration,
    backchannel: &BackchannelLogoutSettings,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    let give_up_after = backchannel.give_up_after.chrono();
    let max_pending = i64::from(backchannel.max_pending_per_client);
    let interval = settings.interval.0;
    let batch = i64::from(settings.batch_size.max(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        // A run longer than the interval is followed by a full interval, not by a burst of
        // the ticks it missed.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; start one interval after startup
        loop {
            ticker.tick().await;
            // A run ends after half the interval at most, whatever is left (a backlog is
            // worked off over several runs), and the outbox gets its turn in every run.
            let deadline = Some(Instant::now() + interval / 2);
            let purged = purge_within(&*storage, &*clock, batch, stream_inactivity, deadline).await;
            let logouts = purge_logouts_within(&*storage, &*clock, batch, give_up_after, max_pending, deadline).await;
            for outcome in [purged, logouts] {
                match outcome {
                    Ok(0) => {}
                    Ok(rows) => {
                        metrics.housekeeping_purged.inc_by(rows);
                        tracing::info!(rows, "housekeeping purged expired rows")
                    }
                    Err(error) => tracing::warn!(error = %error, "housekeeping failed; will retry"),
                }
            }
        }
    })
}

/// While housekeeping works off a backlog it takes about one part in `PAUSE_FACTOR + 1`
/// of the time: after each round it pauses `PAUSE_FACTOR` times as long as the round took
/// (at most [`MAX_PAUSE`]).
///
/// Why: on SQLite every request's write waits for the one writer
/// (`storage::sql::writer`), and a round that deletes 500 expired families with their
/// refresh tokens holds it for tens of milliseconds. Back to back, such rounds took three
/// quarters of the writer from requests while a seeded backlog was deleted (bench/README.md
/// finding 11: refresh at 0.26 × the empty database's rate). A round's time includes its
/// waits for the writer, so the busier the server, the longer the pause, up to the cap.
/// On PostgreSQL the purge has a connection of its own; the same pacing keeps its I/O from
/// crowding requests.
const PAUSE_FACTOR: u32 = 9;
/// The pause's cap, and with the batch's floor (an eighth of `housekeeping.batch_size`)
/// what keeps the purge going under load: at least an eighth of a batch per table and
/// round, a round at least every second or so, however slow rounds get.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// A round slower than this (waiting for the writer included) halves the next round's
/// batch, down to an eighth of the configured one; a round faster than a quarter of it
/// doubles it again, up to the configured batch. Under load housekeeping takes smaller
/// bites, and a request's write waits behind a shorter statement.
const ROUND_BUDGET: Duration = Duration::from_millis(40);

/// Purges in batches until a round deletes less than the round's batch (summed over the
/// tables), however large the backlog: what tests and the operator's one-off runs call.
pub async fn purge(
    storage: &dyn Storage,
    clock: &dyn Clock,
    batch: i64,
    stream_inactivity: chrono::Duration,
) -> Result<u64, crate::storage::StorageError> {
    purge_within(storage, clock, batch, stream_inactivity, None).await
}

/// [`purge`], ending when the next round would start after `deadline` (the rest is left
/// for the next run). Each statement is bounded (a batch of rows, on indexed columns), and the rounds
/// are paced by [`drain`].
async fn purge_within(
    storage: &dyn Storage,
    clock: &dyn Clock,
    batch: i64,
    stream_inactivity: chrono::Duration,
    deadline: Option<Instant>,
) -> Result<u64, crate::storage::StorageError> {
    drain(batch, deadline, |size| async move {
        let now = clock.now();
        Ok(storage.purge_expired(now, size).await?
            + storage.purge_signals(now, now - stream_inactivity, size).await?
            + storage.purge_client_requests(now, size).await?)
    })
    .await
}

/// Purges the Back-Channel Logout outbox in batches, as [`purge`] does: Logout Tokens
/// given up (older than `give_up_after`), those beyond `max_pending` of a client, and the
/// participation rows of sessions that are gone.
pub async fn purge_logouts(
    storage: &dyn Storage,
    clock: &dyn Clock,
    batch: i64,
    give_up_after: chrono::Duration,
    max_pending: i64,
) -> Result<u64, crate::storage::StorageError> {
    purge_logouts_within(storage, clock, batch, give_up_after, max_pending, None).await
}

async fn purge_logouts_within(
    storage: &dyn Storage,
    clock: &dyn Clock,
    batch: i64,
    give_up_after: chrono::Duration,
    max_pending: i64,
    deadline: Option<Instant>,
) -> Result<u64, crate::storage::StorageError> {
    drain(
        batch,
        deadline,
        |size| async move { storage.purge_logouts(clock.now() - give_up_after, max_pending, size).await },
    )
    .await
}

/// Runs `round(size)` until a round deletes fewer rows than its batch, or until the next
/// round would start after `deadline`; paces the rounds ([`PAUSE_FACTOR`]) and sizes each batch
/// ([`ROUND_BUDGET`]). Returns the rows deleted.
async fn drain<F, R>(batch: i64, deadline: Option<Instant>, mut round: F) -> Result<u64, crate::storage::StorageError>
where
    F: FnMut(i64) -> R,
    R: std::future::Future<Output = Result<u64, crate::storage::StorageError>>,
{
    let batch = batch.max(1);
    let mut size = batch;
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = round(size).await?;
        total += deleted;
        if deleted < size as u64 {
            return Ok(total);
        }
        let took = started.elapsed();
        size = next_batch(size, batch, took);
        let pause = took.saturating_mul(PAUSE_FACTOR).min(MAX_PAUSE);
        if deadline.is_some_and(|deadline| Instant::now() + pause >= deadline) {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

fn next_batch(size: i64, batch: i64, took: Duration) -> i64 {
    if took > ROUND_BUDGET {
        (size / 2).max((batch / 8).max(1))
    } else if took < ROUND_BUDGET / 4 {
        size.saturating_mul(2).min(batch)
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A backlog of `rows` that deletes `size` rows a round and takes `per_row` each.
    async fn drain_backlog(
        rows: u64,
        per_row: Duration,
        batch: i64,
        deadline: Option<Duration>,
    ) -> (u64, Vec<i64>, Duration) {
        let left = Mutex::new(rows);
        let sizes = Mutex::new(Vec::new());
        let started = Instant::now();
        let total = drain(batch, deadline.map(|after| started + after), |size| {
            sizes.lock().unwrap().push(size);
            let deleted = {
                let mut left = left.lock().unwrap();
                let deleted = (*left).min(size as u64);
                *left -= deleted;
                deleted
            };
            async move {
                tokio::time::sleep(per_row * deleted as u32).await;
                Ok(deleted)
            }
        })
        .await
        .unwrap();
        (total, sizes.into_inner().unwrap(), started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_is_worked_off_in_paced_rounds() {
        // 1,000 rows at 10 µs each: 4 ms per 400-row round, under the budget.
        let (total, sizes, elapsed) = drain_backlog(1_000, Duration::from_micros(10), 400, None).await;
        assert_eq!(total, 1_000);
        assert_eq!(sizes, [400, 400, 400], "the last round finds fewer rows than its batch and ends the run");
        // Working: 10 ms. Pausing: 9 × 4 ms after each of the two full rounds.
        assert_eq!(elapsed, Duration::from_millis(10 + 2 * 36));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_rounds_shrink_the_batch_to_an_eighth_and_pause_at_most_a_second() {
        // 1 ms a row: a 400-row round takes 400 ms, ten times the budget.
        let (total, sizes, elapsed) = drain_backlog(1_000, Duration::from_millis(1), 400, None).await;
        assert_eq!(total, 1_000);
        assert_eq!(&sizes[..5], [400, 200, 100, 50, 50], "never below an eighth of the batch");
        assert_eq!(sizes.len(), 10, "{sizes:?}: 400, 200, 100, six full rounds of 50 and an empty one");
        // Every row's millisecond, and a pause after each full round: 1 s (capped) after
        // the 400- and 200-row rounds, 0.9 s after the 100-row one, 0.45 s after each 50.
        assert_eq!(elapsed, Duration::from_millis(1_000 + 1_000 + 1_000 + 900 + 6 * 450));
        assert_eq!(next_batch(16, 400, Duration::from_millis(1)), 32, "fast rounds double the batch");
        assert_eq!(next_batch(300, 400, Duration::from_millis(1)), 400, "never beyond the configured batch");
        assert_eq!(next_batch(80, 400, Duration::from_millis(20)), 80, "within the budget, kept");
        assert_eq!(next_batch(2, 2, Duration::from_secs(1)), 1, "a batch of one at least");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_ends_before_a_round_that_would_start_after_its_deadline() {
        // 4 ms rounds, 36 ms pauses: a third round would start at 80 ms, after the deadline.
        let (total, sizes, elapsed) =
            drain_backlog(10_000, Duration::from_micros(10), 400, Some(Duration::from_millis(50))).await;
        assert_eq!((total, sizes.len()), (800, 2), "the rest is left for the next run");
        assert_eq!(elapsed, Duration::from_millis(4 + 36 + 4));
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_table_costs_one_round_and_no_pause() {
        let (total, sizes, elapsed) = drain_backlog(0, Duration::from_millis(1), 500, None).await;
        assert_eq!((total, sizes, elapsed), (0, vec![500], Duration::ZERO));
    }
}
