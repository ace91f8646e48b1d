//! Background purge of rows nobody can use any more, in small batches so tables stay
//! bounded without long-held locks. Every replica runs it; the deletes are idempotent.

use crate::clock::Clock;
use crate::config::{BackchannelLogoutSettings, HousekeepingSettings};
use crate::metrics::Metrics;
use crate::storage::Storage;
use std::sync::Arc;
use tokio::task::JoinHandle;

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
        ticker.tick().await; // the first tick is immediate; start one interval after startup
        loop {
            ticker.tick().await;
            let purged = async {
                Ok::<_, crate::storage::StorageError>(
                    purge(&*storage, &*clock, batch, stream_inactivity).await?
                        + purge_logouts(&*storage, &*clock, batch, give_up_after, max_pending).await?,
                )
            };
            match purged.await {
                Ok(0) => {}
                Ok(rows) => {
                    metrics.housekeeping_purged.inc_by(rows);
                    tracing::info!(rows, "housekeeping purged expired rows")
                }
                Err(error) => tracing::warn!(error = %error, "housekeeping failed; will retry"),
            }
        }
    })
}

/// Purges in batches until a round deletes less than a full batch. Each statement is
/// bounded (`batch` rows, on indexed columns), not the run: a run finishes any backlog,
/// however large, yielding between rounds, instead of stopping at a fixed number of rounds
/// while rows pile up faster than that.
pub async fn purge(
    storage: &dyn Storage,
    clock: &dyn Clock,
    batch: i64,
    stream_inactivity: chrono::Duration,
) -> Result<u64, crate::storage::StorageError> {
    let mut total = 0;
    loop {
        let now = clock.now();
        let deleted = storage.purge_expired(now, batch).await?
            + storage.purge_signals(now, now - stream_inactivity, batch).await?
            + storage.purge_client_requests(now, batch).await?;
        total += deleted;
        if deleted < batch as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
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
    let mut total = 0;
    loop {
        let deleted = storage.purge_logouts(clock.now() - give_up_after, max_pending, batch).await?;
        total += deleted;
        if deleted < batch as u64 {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}
