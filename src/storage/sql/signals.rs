//! `SignalStore` over either pool (see `on_pool!` and `on_writer!`, and the module comment
//! of `storage::signals` for the model).

use super::{Backend, SqlStorage};
use crate::domain::client::ClientId;
use crate::domain::signals::{Delivery, EventType, Sealed, SecurityEvent, Stream, StreamStatus, Subject, POLL, PUSH};
use crate::storage::signals::{PendingSet, PushAttempt, PushOutcome, SignalStats, SignalStore, Verification};
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::{Postgres, Sqlite, Transaction};
use std::future::Future;
use std::sync::{Arc, Weak};
use tokio::sync::watch;

/// The PostgreSQL channel on which committing transactions announce owed SETs.
const CHANNEL: &str = "tessera_ssf";

macro_rules! stream_columns {
    () => {
        "s.id, s.receiver_id, s.events_requested, s.delivery_method, s.endpoint_url, s.authorization_header_sealed, \
         s.description, s.status, s.status_reason, s.created_at, s.updated_at, s.last_activity_at, s.last_verification_at"
    };
}
macro_rules! event_columns {
    () => {
        "e.id AS event_id, e.event_type, e.subject, e.body, e.txn, e.occurred_at, e.expires_at AS event_expires_at, \
         e.stream_id AS event_stream_id"
    };
}

pub(super) const INSERT_EVENT: &str = "INSERT INTO ssf_events \
     (id, event_type, event_bit, subject, body, txn, occurred_at, expires_at, stream_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// Owes a broadcast event to every stream that delivers its type and is not disabled.
/// The `jti` is the event's id and the stream's: unique per event and stream.
pub(super) const OWE_TO_SUBSCRIBERS: &str = "INSERT INTO ssf_deliveries \
     (stream_id, jti, event_id, issued_at, expires_at, next_attempt_at) \
     SELECT s.id, $1 || '.' || s.id, $1, $2, $3, $2 FROM ssf_streams s \
     WHERE s.status <> 'disabled' AND (s.event_mask & $4) <> 0";
/// Owes an event meant for one stream (verification, stream-updated) to it.
pub(super) const OWE_TO_STREAM: &str = "INSERT INTO ssf_deliveries \
     (stream_id, jti, event_id, issued_at, expires_at, next_attempt_at) \
     SELECT s.id, $1 || '.' || s.id, $1, $2, $3, $2 FROM ssf_streams s \
     WHERE s.id = $4 AND s.status <> 'disabled'";
/// Owes a stream the unexpired broadcast events of its types since a time (seeding).
const SEED: &str = "INSERT INTO ssf_deliveries \
     (stream_id, jti, event_id, issued_at, expires_at, next_attempt_at) \
     SELECT s.id, e.id || '.' || s.id, e.id, $2, e.expires_at, $2 FROM ssf_streams s JOIN ssf_events e \
       ON e.stream_id IS NULL AND (e.event_bit & s.event_mask) <> 0 \
     WHERE s.id = $1 AND e.occurred_at >= $3 AND e.expires_at > $2 \
     ON CONFLICT DO NOTHING";

/// Tells the other replicas, at commit, that SETs are owed: PostgreSQL delivers a
/// `NOTIFY` sent inside a transaction when (and only if) it commits. SQLite has one
/// process, which wakes its waiters itself.
pub(super) trait NotifyReplicas {
    fn notify_replicas(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl NotifyReplicas for Transaction<'_, Sqlite> {
    async fn notify_replicas(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl NotifyReplicas for Transaction<'_, Postgres> {
    async fn notify_replicas(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut **self).await.map(|_| ())
    }
}

/// The in-process side of [`SignalStore::events_signal`].
pub(super) struct EventsSignal {
    sender: Arc<watch::Sender<u64>>,
    /// PostgreSQL: whether the listener that relays other replicas' `NOTIFY`s is running
    /// (started on first use, so that CLI commands do not open a listening connection).
    listening: std::sync::Once,
}

impl EventsSignal {
    pub(super) fn new() -> Self {
        Self { sender: Arc::new(watch::channel(0).0), listening: std::sync::Once::new() }
    }

    /// Wakes this process's waiters.
    pub(super) fn bump(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Relays `NOTIFY`s to the waiters of this process until the storage is dropped or
/// closed. A lost connection may have swallowed notifications, so reconnecting wakes every
/// waiter too (each re-reads what it is owed; long polls also end on their own time-out).
/// Once the pool is closed (a graceful stop) a lost listener is expected: it ends quietly
/// instead of warning and retrying.
async fn relay_notifications(pool: sqlx::PgPool, sender: Weak<watch::Sender<u64>>) {
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listener.await {
            Ok(mut listener) => {
                delay = std::time::Duration::from_millis(100);
                loop {
                    let Some(sender) = sender.upgrade() else { return };
                    sender.send_modify(|n| *n = n.wrapping_add(1));
                    drop(sender);
                    match listener.try_recv().await {
                        Ok(Some(_)) => {}
                        // The connection closed; the next call reconnects (and the loop
                        // wakes the waiters, for whatever was missed).
                        Ok(None) => {}
                        Err(_) if pool.is_closed() => return,
                        Err(error) => {
                            tracing::warn!(error = %error, "the Shared Signals listener lost PostgreSQL; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(_) if pool.is_closed() => return,
            Err(error) => tracing::warn!(error = %error, "cannot listen for Shared Signals notifications; retrying"),
        }
        if sender.strong_count() == 0 || pool.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_secs(10));
    }
}

#[derive(sqlx::FromRow)]
struct StreamRow {
    id: String,
    receiver_id: String,
    events_requested: Option<String>,
    delivery_method: String,
    endpoint_url: Option<String>,
    authorization_header_sealed: Option<Vec<u8>>,
    description: Option<String>,
    status: String,
    status_reason: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    last_activity_at: Timestamp,
    last_verification_at: Option<Timestamp>,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {error}"))
}

impl TryFrom<StreamRow> for Stream {
    type Error = StorageError;
    fn try_from(row: StreamRow) -> Result<Self, StorageError> {
        let events_requested = row
            .events_requested
            .map(|json| serde_json::from_str::<Vec<String>>(&json))
            .transpose()
            .map_err(|e| corrupt("ssf_streams.events_requested", e))?;
        let delivery = match (row.delivery_method.as_str(), row.endpoint_url) {
            (POLL, _) => Delivery::Poll,
            (PUSH, Some(url)) => Delivery::Push {
                endpoint_url: url.parse().map_err(|e| corrupt("ssf_streams.endpoint_url", e))?,
                authorization_header: row.authorization_header_sealed.map(Sealed),
            },
            (other, _) => return Err(corrupt("ssf_streams.delivery_method", other)),
        };
        Ok(Stream {
            id: row.id,
            receiver: ClientId::parse(&row.receiver_id).map_err(|e| corrupt("ssf_streams.receiver_id", e))?,
            events_requested,
            delivery,
            description: row.description,
            status: StreamStatus::parse(&row.status).map_err(|e| corrupt("ssf_streams.status", e))?,
            status_reason: row.status_reason,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            last_activity_at: row.last_activity_at.into(),
            last_verification_at: row.last_verification_at.map(Into::into),
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    event_id: String,
    event_type: String,
    subject: String,
    body: String,
    txn: String,
    occurred_at: Timestamp,
    event_expires_at: Timestamp,
    event_stream_id: Option<String>,
}

impl TryFrom<EventRow> for SecurityEvent {
    type Error = StorageError;
    fn try_from(row: EventRow) -> Result<Self, StorageError> {
        Ok(SecurityEvent {
            event_type: EventType::from_uri(&row.event_type)
                .ok_or_else(|| corrupt("ssf_events.event_type", &row.event_type))?,
            subject: serde_json::from_str::<Subject>(&row.subject).map_err(|e| corrupt("ssf_events.subject", e))?,
            body: serde_json::from_str(&row.body).map_err(|e| corrupt("ssf_events.body", e))?,
            id: row.event_id,
            txn: row.txn,
            occurred_at: row.occurred_at.into(),
            expires_at: row.event_expires_at.into(),
            stream_id: row.event_stream_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    jti: String,
    issued_at: Timestamp,
    #[sqlx(flatten)]
    event: EventRow,
}

impl TryFrom<PendingRow> for PendingSet {
    type Error = StorageError;
    fn try_from(row: PendingRow) -> Result<Self, StorageError> {
        Ok(PendingSet { jti: row.jti, issued_at: row.issued_at.into(), event: row.event.try_into()? })
    }
}

#[derive(sqlx::FromRow)]
struct PushRow {
    #[sqlx(flatten)]
    stream: StreamRow,
    #[sqlx(flatten)]
    pending: PendingRow,
    attempts: i64,
}

/// The stored form of a stream's receiver-supplied delivery.
fn delivery_columns(delivery: &Delivery) -> (&'static str, Option<&str>, Option<&[u8]>) {
    match delivery {
        Delivery::Poll => (POLL, None, None),
        Delivery::Push { endpoint_url, authorization_header } => {
            (PUSH, Some(endpoint_url.as_str()), authorization_header.as_ref().map(|s| s.0.as_slice()))
        }
    }
}

fn events_requested_json(stream: &Stream) -> Option<String> {
    stream.events_requested.as_ref().map(|requested| serde_json::Value::from(requested.clone()).to_string())
}

impl SqlStorage {
    /// Wakes this replica's waiters after a commit that owed SETs (the other replicas hear
    /// the transaction's `NOTIFY`).
    pub(super) fn wake_if(&self, owed: u64) {
        if owed > 0 {
            self.events.bump();
        }
    }
}

#[async_trait]
impl SignalStore for SqlStorage {
    async fn insert_stream(
        &self,
        stream: &Stream,
        max_per_receiver: i64,
        seed_since: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // The no-op UPDATE takes the receiver's row lock on PostgreSQL (SQLite writes one at
        // a time anyway), so concurrent creations count one after another and the bound holds.
        let lock_receiver = "UPDATE clients SET updated_at = updated_at WHERE id = $1";
        let insert = "INSERT INTO ssf_streams (id, receiver_id, events_requested, event_mask, delivery_method, \
             endpoint_url, authorization_header_sealed, description, status, status_reason, created_at, updated_at, \
             last_activity_at, last_verification_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
             WHERE (SELECT COUNT(*) FROM ssf_streams WHERE receiver_id = $2) < $15";
        let outcome = on_writer!(self, [stream], pool => {
            let mut tx = pool.begin().await?;
            let (method, endpoint, sealed) = delivery_columns(&stream.delivery);
            let now = Timestamp::from(stream.created_at);
            sqlx::query(lock_receiver).bind(stream.receiver.as_str()).execute(&mut *tx).await?;
            let inserted = sqlx::query(insert)
                .bind(&stream.id)
                .bind(stream.receiver.as_str())
                .bind(events_requested_json(stream))
                .bind(stream.event_mask())
                .bind(method)
                .bind(endpoint)
                .bind(sealed)
                .bind(stream.description.as_deref())
                .bind(stream.status.as_str())
                .bind(stream.status_reason.as_deref())
                .bind(now)
                .bind(Timestamp::from(stream.updated_at))
                .bind(Timestamp::from(stream.last_activity_at))
                .bind(stream.last_verification_at.map(Timestamp::from))
                .bind(max_per_receiver)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if !inserted {
                return Ok((false, 0));
            }
            let seeded = sqlx::query(SEED)
                .bind(&stream.id).bind(now).bind(Timestamp::from(seed_since))
                .execute(&mut *tx).await?.rows_affected();
            if seeded > 0 {
                NotifyReplicas::notify_replicas(&mut tx).await?;
            }
            tx.commit().await?;
            Ok((true, seeded))
        });
        let (inserted, seeded) = outcome.map_err(|e| super::conflict_as(e, "stream id"))?;
        self.wake_if(seeded);
        Ok(inserted)
    }

    async fn signal_stats(&self) -> Result<SignalStats, StorageError> {
        on_pool!(self, pool => {
            let streams: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM ssf_streams GROUP BY status ORDER BY status")
                    .fetch_all(&mut *pool)
                    .await?;
            let (backlog, oldest): (i64, Option<Timestamp>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(e.occurred_at) FROM ssf_deliveries d JOIN ssf_events e ON e.id = d.event_id",
            )
            .fetch_one(pool)
            .await?;
            Ok(SignalStats { streams, backlog, oldest_owed: oldest.map(Into::into) })
        })
    }

    async fn find_stream(&self, id: &str) -> Result<Option<Stream>, StorageError> {
        let sql = concat!("SELECT ", stream_columns!(), " FROM ssf_streams s WHERE s.id = $1");
        let row: Option<StreamRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(id).fetch_optional(pool).await?))?;
        row.map(Stream::try_from).transpose()
    }

    async fn list_streams(&self, receiver: Option<&ClientId>) -> Result<Vec<Stream>, StorageError> {
        let sql = concat!(
            "SELECT ",
            stream_columns!(),
            " FROM ssf_streams s WHERE ($1 IS NULL OR s.receiver_id = $1) ORDER BY s.created_at, s.id"
        );
        let receiver = receiver.map(ClientId::as_str);
        let rows: Vec<StreamRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(receiver).fetch_all(pool).await?))?;
        rows.into_iter().map(Stream::try_from).collect()
    }

    async fn list_streams_page(
        &self,
        receiver: Option<&ClientId>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Stream>, StorageError> {
        // As `list_clients_page`: the anchor's (created_at, id) is read in the statement.
        let first = concat!(
            "SELECT ",
            stream_columns!(),
            " FROM ssf_streams s WHERE ($1 IS NULL OR s.receiver_id = $1) ORDER BY s.created_at, s.id LIMIT $2"
        );
        let next = concat!(
            "SELECT ",
            stream_columns!(),
            " FROM ssf_streams s WHERE ($1 IS NULL OR s.receiver_id = $1) \
             AND (s.created_at, s.id) > (SELECT a.created_at, a.id FROM ssf_streams a WHERE a.id = $2) \
             ORDER BY s.created_at, s.id LIMIT $3"
        );
        let receiver = receiver.map(ClientId::as_str);
        let rows: Vec<StreamRow> = on_pool!(self, pool => Ok(match after {
            None => sqlx::query_as(first).bind(receiver).bind(limit).fetch_all(pool).await?,
            Some(after) => sqlx::query_as(next).bind(receiver).bind(after).bind(limit).fetch_all(pool).await?,
        }))?;
        rows.into_iter().map(Stream::try_from).collect()
    }

    async fn update_stream(&self, stream: &Stream) -> Result<bool, StorageError> {
        let sql = "UPDATE ssf_streams SET events_requested = $2, event_mask = $3, delivery_method = $4, \
                   endpoint_url = $5, authorization_header_sealed = $6, description = $7, updated_at = $8, \
                   last_activity_at = $8 WHERE id = $1";
        on_writer!(self, [stream], pool => {
            let (method, endpoint, sealed) = delivery_columns(&stream.delivery);
            let done = sqlx::query(sql)
                .bind(&stream.id)
                .bind(events_requested_json(stream))
                .bind(stream.event_mask())
                .bind(method)
                .bind(endpoint)
                .bind(sealed)
                .bind(stream.description.as_deref())
                .bind(Timestamp::from(stream.updated_at))
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn set_stream_status(
        &self,
        id: &str,
        status: StreamStatus,
        reason: Option<&str>,
        now: DateTime<Utc>,
        seed_since: DateTime<Utc>,
        announcement: Option<&SecurityEvent>,
    ) -> Result<bool, StorageError> {
        let announcement: Vec<SecurityEvent> = announcement.into_iter().cloned().collect();
        let announcement = announcement.as_slice();
        let reason = &reason.map(str::to_owned);
        let (found, owed) = on_writer!(self, [id, reason, announcement], pool => {
            let mut tx = pool.begin().await?;
            let before: Option<String> = sqlx::query_scalar("SELECT status FROM ssf_streams WHERE id = $1")
                .bind(id).fetch_optional(&mut *tx).await?;
            let Some(before) = before else { return Ok((false, 0)) };
            // SSF §8.1.5: the announcement is owed before the stream stops.
            let mut owed = owe_events!(tx, announcement);
            sqlx::query("UPDATE ssf_streams SET status = $2, status_reason = $3, updated_at = $4 WHERE id = $1")
                .bind(id).bind(status.as_str()).bind(reason.as_deref()).bind(Timestamp::from(now))
                .execute(&mut *tx).await?;
            if status == StreamStatus::Disabled {
                // SSF §8.1.2.1: a disabled stream holds nothing, but its own announcements.
                sqlx::query("DELETE FROM ssf_deliveries WHERE stream_id = $1 \
                             AND event_id NOT IN (SELECT id FROM ssf_events WHERE stream_id = $1)")
                    .bind(id).execute(&mut *tx).await?;
            } else if before == StreamStatus::Disabled.as_str() {
                owed += sqlx::query(SEED)
                    .bind(id).bind(Timestamp::from(now)).bind(Timestamp::from(seed_since))
                    .execute(&mut *tx).await?.rows_affected();
            }
            if owed > 0 {
                NotifyReplicas::notify_replicas(&mut tx).await?;
            }
            tx.commit().await?;
            Ok((true, owed))
        })?;
        // A stream enabled again has SETs to hand out to a poll that is already waiting.
        self.wake_if(owed + u64::from(found && status == StreamStatus::Enabled));
        Ok(found)
    }

    async fn delete_stream(&self, id: &str) -> Result<bool, StorageError> {
        on_writer!(self, [id], pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM ssf_deliveries WHERE stream_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM ssf_events WHERE stream_id = $1").bind(id).execute(&mut *tx).await?;
            let done = sqlx::query("DELETE FROM ssf_streams WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn request_verification(
        &self,
        event: &SecurityEvent,
        min_interval: chrono::Duration,
    ) -> Result<Verification, StorageError> {
        let Some(stream_id) = event.stream_id.as_deref() else {
            return Err(StorageError::Corrupt("a verification event names no stream".into()));
        };
        let at = Timestamp::from(event.occurred_at);
        let earliest_previous = Timestamp::from(event.occurred_at - min_interval);
        let claim = "UPDATE ssf_streams SET last_verification_at = $2, last_activity_at = $2 WHERE id = $1 \
                     AND (last_verification_at IS NULL OR last_verification_at <= $3)";
        let events = std::slice::from_ref(event);
        let (outcome, owed) = on_writer!(self, [stream_id, events], pool => {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(claim).bind(stream_id).bind(at).bind(earliest_previous)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !claimed {
                let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ssf_streams WHERE id = $1")
                    .bind(stream_id).fetch_one(&mut *tx).await?;
                return Ok((if exists > 0 { Verification::TooSoon } else { Verification::NoStream }, 0));
            }
            let owed = owe_events!(tx, events);
            tx.commit().await?;
            Ok((Verification::Requested, owed))
        })?;
        self.wake_if(owed);
        Ok(outcome)
    }

    async fn poll_stream(
        &self,
        id: &str,
        settled: &[String],
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<PendingSet>, bool), StorageError> {
        on_writer!(self, [id, settled], pool => {
            let mut tx = pool.begin().await?;
            for jti in settled.iter() {
                sqlx::query("DELETE FROM ssf_deliveries WHERE stream_id = $1 AND jti = $2")
                    .bind(id).bind(jti).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE ssf_streams SET last_activity_at = $2 WHERE id = $1")
                .bind(id).bind(Timestamp::from(now)).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })?;
        self.owed_sets(id, max, now).await
    }

    async fn owed_sets(&self, id: &str, max: i64, now: DateTime<Utc>) -> Result<(Vec<PendingSet>, bool), StorageError> {
        if max <= 0 {
            return Ok((Vec::new(), false));
        }
        // A stream's own announcements go out whatever its status (SSF §8.1.5: before it
        // stops); the rest only while it is enabled. Nothing while its receiver is disabled:
        // a long poll checked the token once, before it began to wait.
        let sql = concat!(
            "SELECT d.jti, d.issued_at, ",
            event_columns!(),
            " FROM ssf_deliveries d JOIN ssf_events e ON e.id = d.event_id JOIN ssf_streams s ON s.id = d.stream_id \
             JOIN clients c ON c.id = s.receiver_id \
             WHERE d.stream_id = $1 AND d.expires_at > $2 AND (s.status = 'enabled' OR e.event_bit = 0) \
             AND c.disabled_at IS NULL \
             ORDER BY d.issued_at, d.jti LIMIT $3"
        );
        let rows: Vec<PendingRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql)
            .bind(id).bind(Timestamp::from(now)).bind(max.saturating_add(1)).fetch_all(pool).await?))?;
        let more = rows.len() as i64 > max;
        let sets = rows.into_iter().take(max as usize).map(PendingSet::try_from).collect::<Result<_, _>>()?;
        Ok((sets, more))
    }

    async fn claim_pushes(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        per_receiver: i64,
    ) -> Result<Vec<PushAttempt>, StorageError> {
        // Claimed with a fresh lease id and read back by it. On PostgreSQL two replicas may
        // pick the same rows; the second UPDATE waits on the row lock, re-checks the lease
        // condition against the committed row, and claims nothing. A disabled client is
        // cut off: its streams hold what they are owed, as a paused stream does, and are
        // sent nothing (every user's revocations are what it would otherwise still learn).
        // Fair among receivers (RFC 8935 leaves scheduling to the transmitter): a stream has
        // one SET in flight at a time, its oldest due, so it is delivered in order and a dead
        // endpoint holds one place; a receiver has at most `per_receiver` in flight over all
        // its streams, so neither one receiver's many streams nor its slow endpoint can take
        // the places of the others. The window functions run over what is due only.
        let claim = "UPDATE ssf_deliveries SET lease = $1, leased_until = $2, attempts = attempts + 1 \
             WHERE (stream_id, jti) IN (SELECT stream_id, jti FROM ( \
               SELECT firsts.stream_id, firsts.jti, firsts.next_attempt_at, COALESCE(busy.n, 0) AS busy, \
                 ROW_NUMBER() OVER (PARTITION BY firsts.receiver_id \
                   ORDER BY firsts.next_attempt_at, firsts.issued_at, firsts.jti) AS in_receiver \
               FROM ( \
                 SELECT d.stream_id, d.jti, d.next_attempt_at, d.issued_at, s.receiver_id, \
                   ROW_NUMBER() OVER (PARTITION BY d.stream_id ORDER BY d.next_attempt_at, d.issued_at, d.jti) AS in_stream \
                 FROM ssf_deliveries d \
                 JOIN ssf_streams s ON s.id = d.stream_id JOIN ssf_events e ON e.id = d.event_id \
                 JOIN clients c ON c.id = s.receiver_id \
                 WHERE s.delivery_method = $5 AND (s.status = 'enabled' OR e.event_bit = 0) \
                   AND c.disabled_at IS NULL \
                   AND d.next_attempt_at <= $3 AND d.expires_at > $3 \
                   AND (d.leased_until IS NULL OR d.leased_until <= $3) \
                   AND d.stream_id NOT IN (SELECT stream_id FROM ssf_deliveries WHERE leased_until > $3) \
               ) firsts \
               LEFT JOIN (SELECT s.receiver_id, COUNT(*) AS n FROM ssf_deliveries f \
                          JOIN ssf_streams s ON s.id = f.stream_id WHERE f.leased_until > $3 \
                          GROUP BY s.receiver_id) busy ON busy.receiver_id = firsts.receiver_id \
               WHERE firsts.in_stream = 1 \
             ) fair WHERE fair.in_receiver + fair.busy <= $6 ORDER BY fair.next_attempt_at LIMIT $4) \
             AND (leased_until IS NULL OR leased_until <= $3)";
        let read = concat!(
            "SELECT ",
            stream_columns!(),
            ", d.jti, d.issued_at, CAST(d.attempts AS BIGINT) AS attempts, ",
            event_columns!(),
            " FROM ssf_deliveries d JOIN ssf_events e ON e.id = d.event_id JOIN ssf_streams s ON s.id = d.stream_id \
             WHERE d.lease = $1 ORDER BY d.issued_at, d.jti"
        );
        let lease = crate::domain::signals::new_id();
        let claimed = {
            let lease = lease.as_str();
            on_writer!(self, [lease], pool => {
                let done = sqlx::query(claim)
                    .bind(lease).bind(Timestamp::from(lease_until)).bind(Timestamp::from(now)).bind(limit).bind(PUSH)
                    .bind(per_receiver).execute(pool).await?;
                Ok(done.rows_affected())
            })?
        };
        if claimed == 0 {
            return Ok(Vec::new());
        }
        // Read through the writer's own view on SQLite is not needed: the claim committed.
        let rows: Vec<PushRow> = on_pool!(self, pool => Ok(sqlx::query_as(read).bind(&lease).fetch_all(pool).await?))?;
        rows.into_iter()
            .map(|row| {
                Ok(PushAttempt { stream: row.stream.try_into()?, set: row.pending.try_into()?, attempts: row.attempts })
            })
            .collect()
    }

    async fn settle_push(&self, stream_id: &str, jti: &str, outcome: &PushOutcome) -> Result<(), StorageError> {
        let outcome = outcome.clone();
        let outcome = &outcome;
        on_writer!(self, [stream_id, jti, outcome], pool => {
            match outcome {
                PushOutcome::Delivered | PushOutcome::Dropped { .. } => {
                    sqlx::query("DELETE FROM ssf_deliveries WHERE stream_id = $1 AND jti = $2")
                        .bind(stream_id).bind(jti).execute(pool).await?;
                }
                PushOutcome::Retry { at, error } => {
                    let mut tx = pool.begin().await?;
                    sqlx::query("UPDATE ssf_deliveries SET lease = NULL, leased_until = NULL, next_attempt_at = $3, \
                                 last_error = $4 WHERE stream_id = $1 AND jti = $2")
                        .bind(stream_id).bind(jti).bind(Timestamp::from(*at)).bind(error)
                        .execute(&mut *tx).await?;
                    // The endpoint failed: the whole stream waits, not only this SET, so a
                    // dead endpoint is tried once per back-off rather than once per SET.
                    sqlx::query("UPDATE ssf_deliveries SET next_attempt_at = $2 \
                                 WHERE stream_id = $1 AND next_attempt_at < $2 AND lease IS NULL")
                        .bind(stream_id).bind(Timestamp::from(*at))
                        .execute(&mut *tx).await?;
                    tx.commit().await?;
                }
            }
            Ok(())
        })
    }

    async fn record_events(&self, events: &[SecurityEvent]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        let owed = on_writer!(self, [events], pool => {
            let mut tx = pool.begin().await?;
            let owed = owe_events!(tx, events);
            tx.commit().await?;
            Ok(owed)
        })?;
        self.wake_if(owed);
        Ok(())
    }

    fn events_signal(&self) -> watch::Receiver<u64> {
        if let Backend::Postgres { kept, .. } = &self.backend {
            let (pool, sender) = (kept.pool().clone(), Arc::downgrade(&self.events.sender));
            self.events.listening.call_once(|| {
                tokio::spawn(relay_notifications(pool, sender));
            });
        }
        self.events.sender.subscribe()
    }

    async fn purge_signals(
        &self,
        now: DateTime<Utc>,
        inactive_before: DateTime<Utc>,
        batch: i64,
    ) -> Result<u64, StorageError> {
        // In this order: what expired; what inactive poll streams are owed (a receiver
        // that stopped polling is gone, SSF §8.1.1 `inactivity_timeout`, and what it is owed
        // would pile up); events nothing is owed any more; then the inactive streams, once
        // owed nothing. A push stream's activity is Tessera's own delivering: never deleted.
        let statements: [(&str, DateTime<Utc>); 4] = [
            (
                "DELETE FROM ssf_deliveries WHERE (stream_id, jti) IN \
                 (SELECT stream_id, jti FROM ssf_deliveries WHERE expires_at <= $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM ssf_deliveries WHERE (stream_id, jti) IN (SELECT d.stream_id, d.jti FROM ssf_deliveries d \
                 JOIN ssf_streams s ON s.id = d.stream_id WHERE s.last_activity_at < $1 \
                 AND s.delivery_method = 'urn:ietf:rfc:8936' LIMIT $2)",
                inactive_before,
            ),
            (
                "DELETE FROM ssf_events WHERE id IN (SELECT id FROM ssf_events e WHERE e.expires_at <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM ssf_deliveries d WHERE d.event_id = e.id) LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM ssf_streams WHERE id IN (SELECT id FROM ssf_streams s WHERE s.last_activity_at < $1 \
                 AND s.delivery_method = 'urn:ietf:rfc:8936' \
                 AND NOT EXISTS (SELECT 1 FROM ssf_deliveries d WHERE d.stream_id = s.id) LIMIT $2)",
                inactive_before,
            ),
        ];
        let mut total = 0;
        for (sql, cutoff) in statements {
            total += on_writer!(self, [], pool => {
                let done = sqlx::query(sql).bind(Timestamp::from(cutoff)).bind(batch).execute(pool).await?;
                Ok(done.rows_affected())
            })?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A graceful stop closes the pool: the relay then ends, rather than warning that it
    /// lost PostgreSQL and retrying for as long as the process lives.
    #[tokio::test]
    async fn the_relay_ends_quietly_when_the_pool_is_closed() {
        let Some(url) = crate::storage::sql::tests::postgres_url() else { return };
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let sender = Arc::new(watch::channel(0u64).0);
        let mut woken = sender.subscribe();
        let relay = tokio::spawn(relay_notifications(pool.clone(), Arc::downgrade(&sender)));
        // Connected and listening: it wakes the waiters once it is.
        tokio::time::timeout(Duration::from_secs(10), woken.changed()).await.expect("it listens").unwrap();
        tokio::time::timeout(Duration::from_secs(5), pool.close()).await.expect("the pool closes");
        tokio::time::timeout(Duration::from_secs(5), relay).await.expect("and the relay ends").unwrap();
        drop(sender);
    }
}
