//! `DeviceStore` over either pool (see `storage::device`).

use super::{conflict_as, SqlStorage};
use crate::domain::authorization::SessionId;
use crate::domain::client::ClientId;
use crate::domain::device::{next_poll, DeviceApproval, DevicePoll, DeviceRequest, DeviceStatus};
use crate::domain::refresh::TokenFamily;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::UserId;
use crate::storage::client_requests::{BoundRefused, RequestLimits, SourceBound};
use crate::storage::device::DeviceStore;
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

macro_rules! device_columns {
    () => {
        "client_id, scope, status, created_at, expires_at, interval_seconds, next_poll_at"
    };
}

/// The session that approved the request is live at `$now` (a placeholder).
macro_rules! is_session_alive {
    ($now:literal) => {
        concat!("EXISTS (SELECT 1 FROM sessions s WHERE s.sid = device_codes.sid AND s.expires_at > ", $now, ")")
    };
}

/// Takes an approved request: its client's, unexpired, its session live.
const REDEEM: &str = concat!(
    "DELETE FROM device_codes WHERE device_code_digest = $1 AND client_id = $2 AND status = 'approved' \
     AND expires_at > $3 AND ",
    is_session_alive!("$3"),
    " RETURNING client_id, scope, user_id, sid, auth_time"
);

#[derive(Clone, sqlx::FromRow)]
struct DeviceRow {
    client_id: String,
    scope: String,
    status: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    interval_seconds: i64,
    next_poll_at: Timestamp,
}

impl TryFrom<DeviceRow> for DeviceRequest {
    type Error = StorageError;
    fn try_from(row: DeviceRow) -> Result<Self, StorageError> {
        let corrupt = |what: &str| StorageError::Corrupt(format!("device_codes.{what}"));
        Ok(DeviceRequest {
            client_id: ClientId::parse(&row.client_id).map_err(|_| corrupt("client_id"))?,
            scope: ScopeSet::parse(&row.scope).map_err(|_| corrupt("scope"))?,
            status: DeviceStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            created_at: row.created_at.into(),
            expires_at: row.expires_at.into(),
            interval: Duration::seconds(row.interval_seconds),
            next_poll_at: row.next_poll_at.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct PolledRow {
    #[sqlx(flatten)]
    request: DeviceRow,
    is_session_alive: bool,
}

type RedeemedRow = (String, String, Option<String>, Option<String>, Option<Timestamp>);

#[async_trait]
impl DeviceStore for SqlStorage {
    async fn insert_device_request(
        &self,
        device_code: &SecretDigest,
        user_code: &SecretDigest,
        request: &DeviceRequest,
        limits: RequestLimits,
        source: Option<SourceBound<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), BoundRefused>, StorageError> {
        // As for pushed requests: the no-op UPDATE takes the client's row lock on
        // PostgreSQL, so one client's concurrent requests count one after another.
        let lock_client = "UPDATE clients SET updated_at = updated_at WHERE id = $1";
        let insert = concat!(
            "INSERT INTO device_codes (device_code_digest, user_code_digest, ",
            device_columns!(),
            ", source_digest) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $13 \
             WHERE (SELECT COUNT(*) FROM device_codes WHERE client_id = $3 AND expires_at > $10) < $11 \
               AND (SELECT COUNT(*) FROM device_codes WHERE expires_at > $10) < $12 \
               AND ($13 IS NULL OR (SELECT COUNT(*) FROM device_codes \
                    WHERE client_id = $3 AND source_digest = $13 AND expires_at > $10) < $14)"
        );
        let count_client = "SELECT COUNT(*) FROM device_codes WHERE client_id = $1 AND expires_at > $2";
        let count_source =
            "SELECT COUNT(*) FROM device_codes WHERE client_id = $1 AND source_digest = $2 AND expires_at > $3";
        let (source_digest, max_per_source) =
            (source.map(|s| s.digest.as_str().to_owned()), source.map_or(0, |s| s.max));
        let now = Timestamp::from(now);
        let outcome = on_writer!(self, [device_code, user_code, request], pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock_client).bind(request.client_id.as_str()).execute(&mut *tx).await?;
            let inserted = sqlx::query(insert)
                .bind(device_code.as_str())
                .bind(user_code.as_str())
                .bind(request.client_id.as_str())
                .bind(request.scope.to_string())
                .bind(request.status.as_str())
                .bind(Timestamp::from(request.created_at))
                .bind(Timestamp::from(request.expires_at))
                .bind(request.interval.num_seconds())
                .bind(Timestamp::from(request.next_poll_at))
                .bind(now)
                .bind(limits.max_per_client)
                .bind(limits.max_total)
                .bind(&source_digest)
                .bind(max_per_source)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if inserted {
                tx.commit().await?;
                return Ok(Ok(()));
            }
            Ok(Err(refused_bound!(tx, count_client, count_source, request.client_id.as_str(), now, limits, &source_digest, max_per_source)))
        });
        outcome.map_err(|e| conflict_as(e, "user code"))
    }

    async fn find_device_request(
        &self,
        user_code: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceRequest>, StorageError> {
        let sql = concat!(
            "SELECT ",
            device_columns!(),
            " FROM device_codes WHERE user_code_digest = $1 AND status = 'pending' AND expires_at > $2"
        );
        let row: Option<DeviceRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql)
            .bind(user_code.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await?))?;
        row.map(DeviceRequest::try_from).transpose()
    }

    async fn decide_device_request(
        &self,
        user_code: &SecretDigest,
        approval: Option<&DeviceApproval>,
        now: DateTime<Utc>,
    ) -> Result<Option<ClientId>, StorageError> {
        let sql = "UPDATE device_codes SET status = $3, user_id = $4, sid = $5, auth_time = $6 \
                   WHERE user_code_digest = $1 AND status = 'pending' AND expires_at > $2 RETURNING client_id";
        let status = if approval.is_some() { DeviceStatus::Approved } else { DeviceStatus::Denied };
        let user_id = approval.map(|a| a.user_id.as_str().to_owned());
        let sid = approval.map(|a| a.sid.as_str().to_owned());
        let auth_time = approval.map(|a| Timestamp::from(a.auth_time));
        let (user_id, sid) = (&user_id, &sid);
        let decided: Option<(String,)> = on_writer!(self, [user_code, user_id, sid], pool => {
            let mut tx = pool.begin().await?;
            let decided: Option<(String,)> = sqlx::query_as(sql)
                .bind(user_code.as_str())
                .bind(Timestamp::from(now))
                .bind(status.as_str())
                .bind(user_id.as_deref())
                .bind(sid.as_deref())
                .bind(auth_time)
                .fetch_optional(&mut *tx)
                .await?;
            // An approved device takes part in the session whose person approved it
            // (Back-Channel Logout §2.3): its tokens carry that `sid`.
            if let (Some((client_id,)), Some(user_id), Some(sid)) = (&decided, user_id.as_deref(), sid.as_deref()) {
                sqlx::query(super::backchannel::RECORD_PARTICIPANT)
                    .bind(sid)
                    .bind(client_id)
                    .bind(user_id)
                    .bind(Timestamp::from(now))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(decided)
        })?;
        decided
            .map(|(id,)| ClientId::parse(&id).map_err(|_| StorageError::Corrupt("device_codes.client_id".into())))
            .transpose()
    }

    async fn poll_device_code(
        &self,
        device_code: &SecretDigest,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<DevicePoll, StorageError> {
        let read = concat!(
            "SELECT ",
            device_columns!(),
            ", ",
            is_session_alive!("$2"),
            " AS is_session_alive FROM device_codes WHERE device_code_digest = $1"
        );
        // Optimistic: the poll counts only if no other poll moved `next_poll_at` since it
        // was read; the loser of a race is answered `slow_down`.
        let record = "UPDATE device_codes SET interval_seconds = $2, next_poll_at = $3 \
                      WHERE device_code_digest = $1 AND status = 'pending' AND next_poll_at = $4";
        let now_ts = Timestamp::from(now);
        let (redeemed, polled): (Option<RedeemedRow>, Option<(PolledRow, bool)>) = on_writer!(self, [device_code, client], pool => {
            let mut tx = pool.begin().await?;
            let redeemed: Option<RedeemedRow> = sqlx::query_as(REDEEM)
                .bind(device_code.as_str())
                .bind(client.as_str())
                .bind(now_ts)
                .fetch_optional(&mut *tx)
                .await?;
            if redeemed.is_some() {
                tx.commit().await?;
                return Ok((redeemed, None));
            }
            let row: Option<PolledRow> = sqlx::query_as(read)
                .bind(device_code.as_str())
                .bind(now_ts)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else { return Ok((None, None)) };
            let is_pending_poll = row.request.client_id == client.as_str()
                && row.request.status == DeviceStatus::Pending.as_str()
                && Timestamp::from(now) < row.request.expires_at;
            if !is_pending_poll {
                return Ok((None, Some((row, false))));
            }
            let request = DeviceRequest::try_from(row.request.clone())?;
            let (interval, next_poll_at, _) = next_poll(&request, now);
            let recorded = sqlx::query(record)
                .bind(device_code.as_str())
                .bind(interval.num_seconds())
                .bind(Timestamp::from(next_poll_at))
                .bind(row.request.next_poll_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            tx.commit().await?;
            Ok((None, Some((row, recorded))))
        })?;
        if let Some((client_id, scope, user_id, sid, auth_time)) = redeemed {
            let corrupt = |what: &str| StorageError::Corrupt(format!("device_codes.{what} of an approved request"));
            return Ok(DevicePoll::Redeemed {
                client_id: ClientId::parse(&client_id).map_err(|_| corrupt("client_id"))?,
                scope: ScopeSet::parse(&scope).map_err(|_| corrupt("scope"))?,
                user_id: UserId::from_stored(user_id.ok_or_else(|| corrupt("user_id"))?),
                sid: SessionId::from_stored(sid.ok_or_else(|| corrupt("sid"))?),
                auth_time: auth_time.ok_or_else(|| corrupt("auth_time"))?.into(),
            });
        }
        let Some((row, recorded)) = polled else { return Ok(DevicePoll::Invalid) };
        let is_session_alive = row.is_session_alive;
        let request = DeviceRequest::try_from(row.request)?;
        Ok(if request.client_id != *client {
            // Bound to the client that asked for it (§3.4): another client learns nothing.
            DevicePoll::Invalid
        } else if request.expires_at <= now {
            DevicePoll::Expired
        } else {
            match request.status {
                DeviceStatus::Denied => DevicePoll::Denied,
                // Approved, but the redeeming statement did not take it: the session that
                // approved it has ended (logout, revocation, password change).
                DeviceStatus::Approved if !is_session_alive => DevicePoll::Denied,
                // Taken by a concurrent poll between the two statements: gone now.
                DeviceStatus::Approved => DevicePoll::Invalid,
                DeviceStatus::Pending => match next_poll(&request, now) {
                    (_, _, false) if recorded => DevicePoll::Pending,
                    (interval, _, true) if recorded => DevicePoll::SlowDown { interval },
                    // Another poll recorded itself in between: this one came too early.
                    _ => DevicePoll::SlowDown { interval: request.interval },
                },
            }
        })
    }

    async fn create_family_for_session(
        &self,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // The no-op UPDATE locks the session's row on PostgreSQL: `end_session` deletes it
        // and then revokes the session's families, so it either waits for this family and
        // revokes it, or ran first and this finds no live session.
        let lock_session = "UPDATE sessions SET last_seen_at = last_seen_at WHERE sid = $1 AND expires_at > $2";
        on_writer!(self, [family, token], pool => {
            let mut tx = pool.begin().await?;
            let is_live = sqlx::query(lock_session)
                .bind(family.sid.as_str())
                .bind(Timestamp::from(family.created_at))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if !is_live {
                return Ok(false);
            }
            insert_family!(tx, family, token, idle_expires_at);
            tx.commit().await?;
            Ok(true)
        })
    }
}
