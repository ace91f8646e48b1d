//! The Shared Signals transmitter's state: receivers' streams (SSF §8.1.1), the events of
//! the outbox, and each stream's undelivered SETs.
//!
//! An event is recorded in the transaction of the revocation it reports (the methods that
//! revoke take their events), and fanned out there to every stream that delivers its type
//! and is not disabled: one `INSERT … SELECT`, so a revocation costs two statements more
//! however many streams there are, and no SET can be lost between a commit and its
//! delivery. A delivery row stays until the receiver acknowledges it (poll, RFC 8936),
//! accepts it (push, RFC 8935) or the event expires (every token it can affect has).
//!
//! Waiting long polls and the push dispatcher learn of new deliveries through
//! [`SignalStore::events_signal`]: bumped in-process after every commit that owed
//! something, and, on PostgreSQL, by `NOTIFY` (sent by the committing transaction itself)
//! on every replica.

use super::StorageError;
use crate::domain::client::ClientId;
use crate::domain::signals::{SecurityEvent, Stream, StreamStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A SET owed to a stream: the event, its `jti` for this stream, and when it was made.
#[derive(Clone, Debug)]
pub struct PendingSet {
    pub jti: String,
    pub issued_at: DateTime<Utc>,
    pub event: SecurityEvent,
}

/// A SET claimed for one push attempt, with its stream.
#[derive(Clone, Debug)]
pub struct PushAttempt {
    pub stream: Stream,
    pub set: PendingSet,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How a push attempt ended (RFC 8935 §2.2–2.4).
#[derive(Clone, Debug)]
pub enum PushOutcome {
    /// 202: the receiver has it.
    Delivered,
    /// Refused for good (a 400 that retrying cannot fix), or expired: forgotten.
    Dropped { error: String },
    /// Try again at `at` (5xx, timeout, connection refused).
    Retry { at: DateTime<Utc>, error: String },
}

/// What a verification request (SSF §8.1.4.2) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The event is owed to the stream.
    Requested,
    /// The previous request was less than `min_verification_interval` ago (429).
    TooSoon,
    /// No such stream.
    NoStream,
}

/// What the metrics show of the Shared Signals transmitter.
#[derive(Debug, Default)]
pub struct SignalStats {
    /// Streams per status (`enabled`, `paused`, `disabled`).
    pub streams: Vec<(String, i64)>,
    /// SETs owed and not yet acknowledged (poll) or accepted (push).
    pub backlog: i64,
    /// When the oldest of them occurred: the delivery lag.
    pub oldest_owed: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait SignalStore: Send + Sync {
    /// Counts for the metrics: two aggregate queries.
    async fn signal_stats(&self) -> Result<SignalStats, StorageError>;
    /// Inserts `stream` unless its receiver already has `max_per_receiver` streams (false,
    /// nothing inserted; concurrent creations are serialised on the receiver's client
    /// row), and owes it the unexpired events of the types it delivers that occurred since
    /// `seed_since`: SSF has no replay, and a receiver that starts late must still hear of
    /// a revocation whose tokens are alive.
    async fn insert_stream(
        &self,
        stream: &Stream,
        max_per_receiver: i64,
        seed_since: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    async fn find_stream(&self, id: &str) -> Result<Option<Stream>, StorageError>;
    /// The streams of one receiver, or all, oldest first.
    async fn list_streams(&self, receiver: Option<&ClientId>) -> Result<Vec<Stream>, StorageError>;
    /// At most `limit` of those streams, after the stream `after` in the same order
    /// (keyset: a page neither repeats nor skips a stream when others are created).
    async fn list_streams_page(
        &self,
        receiver: Option<&ClientId>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Stream>, StorageError>;
    /// Stores the receiver-supplied configuration of `stream` (events requested, delivery,
    /// description) and its activity; false when it does not exist.
    async fn update_stream(&self, stream: &Stream) -> Result<bool, StorageError>;
    /// Sets a stream's status (SSF §8.1.2). `announcement`, a stream-updated event, is
    /// owed first when given (SSF §8.1.5: sent before a stream stops). Disabling drops what
    /// is owed; leaving `disabled` owes again the events since `seed_since`. False when
    /// the stream does not exist.
    async fn set_stream_status(
        &self,
        id: &str,
        status: StreamStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
        seed_since: DateTime<Utc>,
        announcement: Option<&SecurityEvent>,
    ) -> Result<bool, StorageError>;
    /// Deletes a stream and what it is owed.
    async fn delete_stream(&self, id: &str) -> Result<bool, StorageError>;
    /// Owes `event` (a verification event) to its stream, unless the last request was less
    /// than `min_interval` before `event.occurred_at`: one statement decides, so concurrent
    /// requests cannot all pass.
    async fn request_verification(
        &self,
        event: &SecurityEvent,
        min_interval: chrono::Duration,
    ) -> Result<Verification, StorageError>;
    /// One poll (RFC 8936 §2.4): forgets the SETs in `settled` (acknowledged or reported
    /// as errors), records the receiver's activity, then returns up to `max` owed SETs,
    /// oldest first, and whether more are owed. Nothing is returned while the stream is not
    /// enabled.
    async fn poll_stream(
        &self,
        id: &str,
        settled: &[String],
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PendingSet>, bool), StorageError>;
    /// Up to `max` SETs owed to a stream, oldest first, and whether more are owed: what
    /// [`SignalStore::poll_stream`] returns, without settling or recording anything (a long
    /// poll reads again with it when woken).
    async fn owed_sets(&self, id: &str, max: i64, now: DateTime<Utc>) -> Result<(Vec<PendingSet>, bool), StorageError>;
    /// Claims up to `limit` push deliveries that are due, for `lease` (a replica's attempt
    /// holds them until `lease_until`, so replicas do not send one SET twice at once): per
    /// stream only its oldest due and only when none is in flight, and per receiver only
    /// as many as keep it at `per_receiver` in flight.
    async fn claim_pushes(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        per_receiver: i64,
    ) -> Result<Vec<PushAttempt>, StorageError>;
    /// Settles an attempt. A retry postpones every SET of the stream still due before it.
    async fn settle_push(&self, stream_id: &str, jti: &str, outcome: &PushOutcome) -> Result<(), StorageError>;
    /// Records events (and owes them to the streams that deliver them) on their own, for
    /// events that report no change of Tessera's own state.
    async fn record_events(&self, events: &[SecurityEvent]) -> Result<(), StorageError>;
    /// Changes whenever a commit owed SETs to some stream, on this replica or (PostgreSQL)
    /// another: long polls and the push dispatcher wait on it.
    fn events_signal(&self) -> watch::Receiver<u64>;
    /// Deletes expired events and deliveries, and streams inactive since before
    /// `inactive_before` (SSF §8.1.1 `inactivity_timeout`), at most `batch` rows per
    /// statement; returns how many rows went.
    async fn purge_signals(
        &self,
        now: DateTime<Utc>,
        inactive_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StorageError>;
}
