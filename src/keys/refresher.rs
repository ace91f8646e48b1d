//! Per replica: on every `refresh_interval`, run the rotation steps that are due (the
//! database decides which replica wins each) and reload the key set if it changed.

use super::kek::KeyEncryptionKey;
use super::rotation::{self, RotationSchedule};
use super::SigningKeys;
use crate::clock::Clock;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub fn spawn(
    storage: Arc<dyn Storage>,
    keys: Arc<SigningKeys>,
    kek: Arc<KeyEncryptionKey>,
    schedule: RotationSchedule,
    clock: Arc<dyn Clock>,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = rotation::run_due_steps(&*storage, &kek, &schedule, clock.now()).await {
                tracing::warn!(error = ?error, "key rotation step failed; will retry");
            }
            match keys.reload(&*storage, &kek).await {
                Ok(true) => tracing::info!(kid = %keys.snapshot().current.kid, "signing keys reloaded"),
                Ok(false) => {}
                Err(error) => tracing::warn!(error = ?error, "reloading signing keys failed; keeping the current set"),
            }
        }
    })
}
