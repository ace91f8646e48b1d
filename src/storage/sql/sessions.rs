//! `SessionStore` over either pool (see `on_pool!` and `on_writer!`).

use super::SqlStorage;
use crate::domain::authorization::{PendingAuthorization, Session, SessionId};
use crate::domain::client::ClientId;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::UserId;
use crate::storage::rows::{PendingRow, SessionRow};
use crate::storage::timestamp::Timestamp;
use crate::storage::{SessionStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

macro_rules! pending_columns {
    () => {
        "csrf_digest, client_id, redirect_uri, scope, state, nonce, code_challenge, login_hint, max_age, prompt, \
         created_at, expires_at"
    };
}

/// The assignment that gives a reserved login attempt's place back (never below zero).
macro_rules! release_one {
    () => {
        "in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END"
    };
}

#[async_trait]
impl SessionStore for SqlStorage {
    async fn insert_session(
        &self,
        id: &SecretDigest,
        session: &Session,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let sql = "INSERT INTO sessions (id_digest, sid, user_id, auth_time, created_at, last_seen_at, expires_at) \
                   SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users u \
                     WHERE u.id = $3 AND u.password_hash = $8 AND u.disabled_at IS NULL)";
        on_writer!(self, [id, session, password_hash], pool => {
            let done = sqlx::query(sql)
                .bind(id.as_str())
                .bind(session.sid.as_str())
                .bind(session.user_id.as_str())
                .bind(Timestamp::from(session.auth_time))
                .bind(Timestamp::from(session.created_at))
                .bind(Timestamp::from(session.last_seen_at))
                .bind(Timestamp::from(session.expires_at))
                .bind(password_hash)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn renew_session(
        &self,
        previous: &SecretDigest,
        id: &SecretDigest,
        session: &Session,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE sessions SET id_digest = $2, auth_time = $3, last_seen_at = $3, expires_at = $4 \
                   WHERE id_digest = $1 AND sid = $5 AND user_id = $6 AND EXISTS (SELECT 1 FROM users u \
                     WHERE u.id = $6 AND u.password_hash = $7 AND u.disabled_at IS NULL)";
        on_writer!(self, [previous, id, session, password_hash], pool => {
            let done = sqlx::query(sql)
                .bind(previous.as_str())
                .bind(id.as_str())
                .bind(Timestamp::from(session.auth_time))
                .bind(Timestamp::from(session.expires_at))
                .bind(session.sid.as_str())
                .bind(session.user_id.as_str())
                .bind(password_hash)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn find_session(
        &self,
        id: &SecretDigest,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<Session>, StorageError> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id_digest = $1 AND expires_at > $2 AND last_seen_at > $3"
        );
        let row: Option<SessionRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql)
            .bind(id.as_str()).bind(Timestamp::from(now)).bind(Timestamp::from(idle_cutoff))
            .fetch_optional(pool).await?))?;
        Ok(row.map(Session::from))
    }

    async fn touch_session(&self, id: &SecretDigest, now: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "UPDATE sessions SET last_seen_at = $2 WHERE id_digest = $1";
        on_writer!(self, [id], pool => {
            sqlx::query(sql).bind(id.as_str()).bind(Timestamp::from(now)).execute(pool).await?;
            Ok(())
        })
    }

    async fn insert_pending(
        &self,
        id: &SecretDigest,
        sid: &SessionId,
        pending: &PendingAuthorization,
    ) -> Result<(), StorageError> {
        let sql = concat!(
            "INSERT INTO pending_authorizations (id_digest, sid, ",
            pending_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (sid, client_id) DO UPDATE SET id_digest = excluded.id_digest, \
               csrf_digest = excluded.csrf_digest, redirect_uri = excluded.redirect_uri, scope = excluded.scope, \
               state = excluded.state, nonce = excluded.nonce, code_challenge = excluded.code_challenge, \
               login_hint = excluded.login_hint, max_age = excluded.max_age, prompt = excluded.prompt, \
               created_at = excluded.created_at, expires_at = excluded.expires_at"
        );
        on_writer!(self, [id, sid, pending], pool => {
            sqlx::query(sql)
                .bind(id.as_str())
                .bind(sid.as_str())
                .bind(pending.csrf_digest.as_str())
                .bind(pending.client_id.as_str())
                .bind(&pending.redirect_uri)
                .bind(pending.scope.to_string())
                .bind(&pending.state)
                .bind(&pending.nonce)
                .bind(pending.code_challenge.as_str())
                .bind(&pending.login_hint)
                .bind(pending.max_age)
                .bind(pending.prompt.to_param())
                .bind(Timestamp::from(pending.created_at))
                .bind(Timestamp::from(pending.expires_at))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    async fn claim_pending(
        &self,
        id: &SecretDigest,
        sid: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StorageError> {
        let sql = concat!(
            "DELETE FROM pending_authorizations WHERE id_digest = $1 AND sid = $2 AND expires_at > $3 RETURNING ",
            pending_columns!()
        );
        let row: Option<PendingRow> = on_writer!(self, [id, sid], pool => Ok(sqlx::query_as(sql)
            .bind(id.as_str()).bind(sid.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await?))?;
        row.map(PendingAuthorization::try_from).transpose()
    }

    async fn find_consent(&self, user_id: &UserId, client_id: &ClientId) -> Result<Option<ScopeSet>, StorageError> {
        let sql = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2";
        let row: Option<(String,)> = on_pool!(self, pool => Ok(sqlx::query_as(sql)
            .bind(user_id.as_str()).bind(client_id.as_str()).fetch_optional(pool).await?))?;
        row.map(|(scope,)| ScopeSet::parse(&scope).map_err(|e| StorageError::Corrupt(format!("consents.scope: {e}"))))
            .transpose()
    }

    async fn save_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";
        // Bound as text, which is owned already: the writer thread needs no other copy.
        let scope = scope.to_string();
        on_writer!(self, [user_id, client_id], pool => {
            sqlx::query(sql)
                .bind(user_id.as_str()).bind(client_id.as_str()).bind(scope).bind(Timestamp::from(now))
                .execute(pool).await?;
            Ok(())
        })
    }

    async fn reserve_attempt(
        &self,
        subject: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_cutoff: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // One statement: the count it compares with the limit includes the attempts in
        // flight, and the update that reserves is the same that checks. Once a lock has run
        // out, one attempt at a time may go past the limit, so a further failure doubles the
        // lock (`throttle::lockout_delay`) rather than the count stopping at the limit. A
        // window that started before the cutoff restarts empty (in-flight counts of crashed
        // attempts end with it). `ON CONFLICT … WHERE` false updates nothing and returns no row.
        let sql = "INSERT INTO login_throttles (subject, failures, window_start, in_flight) \
                   SELECT $1, 0, $2, 1 WHERE $4 > 0 \
                   ON CONFLICT (subject) DO UPDATE SET \
                     failures = CASE WHEN login_throttles.window_start < $3 THEN 0 ELSE login_throttles.failures END, \
                     in_flight = CASE WHEN login_throttles.window_start < $3 THEN 1 ELSE login_throttles.in_flight + 1 END, \
                     window_start = CASE WHEN login_throttles.window_start < $3 THEN $2 ELSE login_throttles.window_start END \
                   WHERE (login_throttles.locked_until IS NULL OR login_throttles.locked_until <= $2) \
                     AND (login_throttles.window_start < $3 OR login_throttles.failures + login_throttles.in_flight < $4 \
                          OR (login_throttles.locked_until IS NOT NULL AND login_throttles.in_flight = 0)) \
                   RETURNING in_flight";
        let reserved: Option<(i64,)> = on_writer!(self, [subject], pool => Ok(sqlx::query_as(sql)
            .bind(subject).bind(Timestamp::from(now)).bind(Timestamp::from(window_cutoff)).bind(limit)
            .fetch_optional(pool).await?))?;
        Ok(reserved.is_some())
    }

    async fn settle_failure(&self, subject: &str) -> Result<i64, StorageError> {
        let sql = concat!(
            "UPDATE login_throttles SET failures = failures + 1, ",
            release_one!(),
            " WHERE subject = $1 RETURNING failures"
        );
        let failures: Option<(i64,)> =
            on_writer!(self, [subject], pool => Ok(sqlx::query_as(sql).bind(subject).fetch_optional(pool).await?))?;
        Ok(failures.map_or(0, |(n,)| n))
    }

    async fn release_attempt(&self, subject: &str) -> Result<(), StorageError> {
        let sql = concat!("UPDATE login_throttles SET ", release_one!(), " WHERE subject = $1");
        on_writer!(self, [subject], pool => {
            sqlx::query(sql).bind(subject).execute(pool).await?;
            Ok(())
        })
    }

    async fn lock(&self, subject: &str, until: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "UPDATE login_throttles SET locked_until = $2 \
                   WHERE subject = $1 AND (locked_until IS NULL OR locked_until < $2)";
        on_writer!(self, [subject], pool => {
            sqlx::query(sql).bind(subject).bind(Timestamp::from(until)).execute(pool).await?;
            Ok(())
        })
    }

    async fn clear_throttle(&self, subject: &str) -> Result<(), StorageError> {
        // An update, not a delete: attempts still in flight keep their reservation and
        // settle against this row, so their failures are not lost.
        let sql = concat!(
            "UPDATE login_throttles SET failures = 0, locked_until = NULL, ",
            release_one!(),
            " WHERE subject = $1"
        );
        on_writer!(self, [subject], pool => {
            sqlx::query(sql).bind(subject).execute(pool).await?;
            Ok(())
        })
    }
}
