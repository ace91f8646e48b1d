//! `BackchannelStore` over either pool (see `storage::backchannel` for the model), and the
//! statements the revocations and code issuance share.

use super::SqlStorage;
use crate::domain::authorization::SessionId;
use crate::domain::client::ClientId;
use crate::domain::user::UserId;
use crate::storage::backchannel::{BackchannelStore, LogoutAttempt, LogoutOutcome, LogoutStats};
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Records that a client took part in a session (a code was issued to it under `sid`).
pub(super) const RECORD_PARTICIPANT: &str =
    "INSERT INTO backchannel_participants (sid, client_id, user_id, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (sid, client_id) DO NOTHING";

/// Owes a Logout Token to every client with a `backchannel_logout_uri` that took part in
/// the session `$1`; `$2` is a fresh id that makes each row's `jti` unique, `$3` now.
pub(super) const OWE_LOGOUTS_OF_SESSION: &str = "INSERT INTO backchannel_logouts \
     (jti, client_id, user_id, sid, created_at, attempts, next_attempt_at) \
     SELECT $2 || '.' || p.client_id || '.' || p.sid, p.client_id, p.user_id, p.sid, $3, 0, $3 \
     FROM backchannel_participants p JOIN clients c ON c.id = p.client_id \
     WHERE p.sid = $1 AND c.backchannel_logout_uri IS NOT NULL AND c.disabled_at IS NULL";
/// The same for every session of the user `$1`.
pub(super) const OWE_LOGOUTS_OF_USER: &str = "INSERT INTO backchannel_logouts \
     (jti, client_id, user_id, sid, created_at, attempts, next_attempt_at) \
     SELECT $2 || '.' || p.client_id || '.' || p.sid, p.client_id, p.user_id, p.sid, $3, 0, $3 \
     FROM backchannel_participants p JOIN clients c ON c.id = p.client_id \
     WHERE p.user_id = $1 AND c.backchannel_logout_uri IS NOT NULL AND c.disabled_at IS NULL";
/// The ended session's participants are told once: their rows go with the session.
pub(super) const FORGET_PARTICIPANTS_OF_SESSION: &str = "DELETE FROM backchannel_participants WHERE sid = $1";
pub(super) const FORGET_PARTICIPANTS_OF_USER: &str = "DELETE FROM backchannel_participants WHERE user_id = $1";

/// Owes the Logout Tokens of the ended session `$sid` (`Session`) or of every session of
/// a user (`User`) inside `$tx`, forgets the participants, and announces the rows to the
/// other replicas at commit. Evaluates to the number of tokens owed.
macro_rules! owe_logouts {
    ($tx:expr, $owe:expr, $forget:expr, $key:expr, $at:expr) => {{
        use $crate::storage::sql::signals::NotifyReplicas as _;
        let key: &str = $key;
        let at = $crate::storage::timestamp::Timestamp::from($at);
        let batch = $crate::domain::signals::new_id();
        let owed = sqlx::query($owe).bind(key).bind(&batch).bind(at).execute(&mut *$tx).await?.rows_affected();
        sqlx::query($forget).bind(key).execute(&mut *$tx).await?;
        if owed > 0 {
            $tx.notify_replicas().await?;
        }
        owed
    }};
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    jti: String,
    client_id: String,
    backchannel_logout_uri: Option<String>,
    user_id: String,
    sid: String,
    attempts: i64,
}

#[async_trait]
impl BackchannelStore for SqlStorage {
    async fn claim_logouts(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        created_after: DateTime<Utc>,
        limit: i64,
        per_client: i64,
    ) -> Result<Vec<LogoutAttempt>, StorageError> {
        // Claimed with a fresh lease id and read back by it, as `claim_pushes` does: on
        // PostgreSQL two replicas may pick the same rows; the second UPDATE waits on the row
        // lock, re-checks the lease condition against the committed row and claims nothing.
        // A disabled client is sent nothing (its rows are given up with time).
        // Fair among clients, as `claim_pushes` is among receivers: one client has at most
        // `per_client` attempts in flight (those leased already count), so an RP whose
        // endpoint hangs until the timeout holds that many places, not every one, and the
        // other RPs' Logout Tokens still go out at once. The window runs over what is due.
        let claim = "UPDATE backchannel_logouts SET lease = $1, leased_until = $2, attempts = attempts + 1 \
             WHERE jti IN (SELECT jti FROM ( \
               SELECT b.jti, b.next_attempt_at, COALESCE(busy.n, 0) AS busy, \
                 ROW_NUMBER() OVER (PARTITION BY b.client_id ORDER BY b.next_attempt_at, b.jti) AS in_client \
               FROM backchannel_logouts b JOIN clients c ON c.id = b.client_id \
               LEFT JOIN (SELECT client_id, COUNT(*) AS n FROM backchannel_logouts WHERE leased_until > $3 \
                          GROUP BY client_id) busy ON busy.client_id = b.client_id \
               WHERE c.disabled_at IS NULL AND b.next_attempt_at <= $3 AND b.created_at > $4 \
                 AND (b.leased_until IS NULL OR b.leased_until <= $3) \
             ) fair WHERE fair.in_client + fair.busy <= $6 ORDER BY fair.next_attempt_at LIMIT $5) \
             AND (leased_until IS NULL OR leased_until <= $3)";
        let read = "SELECT b.jti, b.client_id, c.backchannel_logout_uri, b.user_id, b.sid, \
             CAST(b.attempts AS BIGINT) AS attempts \
             FROM backchannel_logouts b JOIN clients c ON c.id = b.client_id WHERE b.lease = $1 ORDER BY b.created_at";
        let lease = crate::domain::signals::new_id();
        let claimed = {
            let lease = lease.as_str();
            on_writer!(self, [lease], pool => {
                let done = sqlx::query(claim)
                    .bind(lease).bind(Timestamp::from(lease_until)).bind(Timestamp::from(now))
                    .bind(Timestamp::from(created_after)).bind(limit).bind(per_client)
                    .execute(pool).await?;
                Ok(done.rows_affected())
            })?
        };
        if claimed == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<AttemptRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(read).bind(&lease).fetch_all(pool).await?))?;
        rows.into_iter()
            .map(|row| {
                Ok(LogoutAttempt {
                    jti: row.jti,
                    client_id: ClientId::parse(&row.client_id)
                        .map_err(|e| StorageError::Corrupt(format!("backchannel_logouts.client_id: {e}")))?,
                    uri: row.backchannel_logout_uri,
                    user_id: UserId::from_stored(row.user_id),
                    sid: SessionId::from_stored(row.sid),
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    async fn settle_logout(&self, jti: &str, outcome: &LogoutOutcome) -> Result<(), StorageError> {
        let outcome = outcome.clone();
        let outcome = &outcome;
        on_writer!(self, [jti, outcome], pool => {
            match outcome {
                LogoutOutcome::Delivered | LogoutOutcome::Dropped { .. } => {
                    sqlx::query("DELETE FROM backchannel_logouts WHERE jti = $1").bind(jti).execute(pool).await?;
                }
                LogoutOutcome::Retry { at, error } => {
                    sqlx::query("UPDATE backchannel_logouts SET lease = NULL, leased_until = NULL, next_attempt_at = $2, \
                                 last_error = $3 WHERE jti = $1")
                        .bind(jti).bind(Timestamp::from(*at)).bind(error)
                        .execute(pool).await?;
                }
            }
            Ok(())
        })
    }

    async fn count_pending_logouts(&self, client: &ClientId) -> Result<i64, StorageError> {
        let sql = "SELECT COUNT(*) FROM backchannel_logouts WHERE client_id = $1";
        on_pool!(self, pool => Ok(sqlx::query_scalar(sql).bind(client.as_str()).fetch_one(pool).await?))
    }

    async fn logout_stats(&self, created_after: DateTime<Utc>) -> Result<LogoutStats, StorageError> {
        // What `claim_logouts` would ever claim: a disabled client's and given-up tokens
        // wait only for housekeeping to delete them, and would hold the lag up for days.
        let sql = "SELECT COUNT(*), MIN(b.created_at) FROM backchannel_logouts b JOIN clients c ON c.id = b.client_id \
                   WHERE c.disabled_at IS NULL AND b.created_at > $1";
        let created_after = Timestamp::from(created_after);
        on_pool!(self, pool => {
            let (backlog, oldest): (i64, Option<Timestamp>) =
                sqlx::query_as(sql).bind(created_after).fetch_one(pool).await?;
            Ok(LogoutStats { backlog, oldest_owed: oldest.map(Into::into) })
        })
    }

    async fn purge_logouts(
        &self,
        give_up_before: DateTime<Utc>,
        max_per_client: i64,
        batch: i64,
    ) -> Result<u64, StorageError> {
        let given_up = "DELETE FROM backchannel_logouts WHERE jti IN \
             (SELECT jti FROM backchannel_logouts WHERE created_at <= $1 LIMIT $2)";
        // The oldest beyond the cap: an RP that is down for long cannot make the outbox grow
        // without bound.
        let over_cap = "DELETE FROM backchannel_logouts WHERE jti IN (SELECT jti FROM ( \
             SELECT jti, ROW_NUMBER() OVER (PARTITION BY client_id ORDER BY created_at DESC, jti DESC) AS n \
             FROM backchannel_logouts) ranked WHERE ranked.n > $1 LIMIT $2)";
        // A session that expired was never ended, so its participants were not forgotten.
        let orphans = "DELETE FROM backchannel_participants WHERE (sid, client_id) IN \
             (SELECT p.sid, p.client_id FROM backchannel_participants p \
              WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.sid = p.sid) LIMIT $1)";
        on_writer!(self, [], pool => {
            let mut total = sqlx::query(given_up)
                .bind(Timestamp::from(give_up_before)).bind(batch).execute(pool).await?.rows_affected();
            total += sqlx::query(over_cap).bind(max_per_client).bind(batch).execute(pool).await?.rows_affected();
            total += sqlx::query(orphans).bind(batch).execute(pool).await?.rows_affected();
            Ok(total)
        })
    }
}
