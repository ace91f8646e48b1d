//! `SessionStore` over either pool (see `on_pool!`).

use super::{Pool, SqlStorage};
use crate::domain::authorization::{PendingAuthorization, Session, Throttle};
use crate::domain::client::ClientId;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::storage::rows::{PendingRow, SessionRow, ThrottleRow};
use crate::storage::timestamp::Timestamp;
use crate::storage::{SessionStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const SESSION_COLUMNS: &str = "sid, user_id, auth_time, created_at, last_seen_at, expires_at";
const PENDING_COLUMNS: &str = "csrf_digest, client_id, redirect_uri, scope, state, nonce, code_challenge, login_hint, \
                               max_age, prompt, created_at, expires_at";

#[async_trait]
impl SessionStore for SqlStorage {
    async fn insert_session(&self, id: &SecretDigest, session: &Session) -> Result<(), StorageError> {
        let sql = "INSERT INTO sessions (id_digest, sid, user_id, auth_time, created_at, last_seen_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let (id, session) = (id.clone(), session.clone());
        on_writer!(self, pool => sqlx::query(sql)
            .bind(id.as_str())
            .bind(&session.sid)
            .bind(&session.user_id)
            .bind(Timestamp::from(session.auth_time))
            .bind(Timestamp::from(session.created_at))
            .bind(Timestamp::from(session.last_seen_at))
            .bind(Timestamp::from(session.expires_at))
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn find_session(
        &self,
        id: &SecretDigest,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<Session>, StorageError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_digest = $1 AND expires_at > $2 AND last_seen_at > $3"
        );
        let row: Option<SessionRow> = on_pool!(&self.pool, pool => sqlx::query_as(&sql)
            .bind(id.as_str()).bind(Timestamp::from(now)).bind(Timestamp::from(idle_cutoff))
            .fetch_optional(pool).await)?;
        Ok(row.map(Session::from))
    }

    async fn touch_session(&self, id: &SecretDigest, now: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "UPDATE sessions SET last_seen_at = $2 WHERE id_digest = $1";
        let id = id.clone();
        on_writer!(self, pool => sqlx::query(sql).bind(id.as_str()).bind(Timestamp::from(now)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn delete_session(&self, id: &SecretDigest) -> Result<Option<Session>, StorageError> {
        let sql = format!("DELETE FROM sessions WHERE id_digest = $1 RETURNING {SESSION_COLUMNS}");
        let id = id.clone();
        let row: Option<SessionRow> =
            on_writer!(self, pool => sqlx::query_as(&sql).bind(id.as_str()).fetch_optional(pool).await)?;
        Ok(row.map(Session::from))
    }

    async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM sessions WHERE user_id = $1";
        let user_id = user_id.to_owned();
        let count =
            on_writer!(self, pool => sqlx::query(sql).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(count)
    }

    async fn insert_pending(&self, id: &SecretDigest, pending: &PendingAuthorization) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO pending_authorizations (id_digest, {PENDING_COLUMNS}) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        let (id, pending) = (id.clone(), pending.clone());
        on_writer!(self, pool => sqlx::query(&sql)
            .bind(id.as_str())
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
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn find_pending(
        &self,
        id: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StorageError> {
        let sql =
            format!("SELECT {PENDING_COLUMNS} FROM pending_authorizations WHERE id_digest = $1 AND expires_at > $2");
        let row: Option<PendingRow> = on_pool!(&self.pool, pool => sqlx::query_as(&sql)
            .bind(id.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await)?;
        row.map(PendingAuthorization::try_from).transpose()
    }

    async fn delete_pending(&self, id: &SecretDigest) -> Result<(), StorageError> {
        let sql = "DELETE FROM pending_authorizations WHERE id_digest = $1";
        let id = id.clone();
        on_writer!(self, pool => sqlx::query(sql).bind(id.as_str()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn find_consent(&self, user_id: &str, client_id: &ClientId) -> Result<Option<ScopeSet>, StorageError> {
        let sql = "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2";
        let row: Option<(String,)> = on_pool!(&self.pool, pool => sqlx::query_as(sql)
            .bind(user_id).bind(client_id.as_str()).fetch_optional(pool).await)?;
        row.map(|(scope,)| ScopeSet::parse(&scope).map_err(|e| StorageError::Corrupt(format!("consents.scope: {e}"))))
            .transpose()
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &ClientId,
        scope: &ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at";
        let (user_id, client_id, scope) = (user_id.to_owned(), client_id.clone(), scope.to_string());
        on_writer!(self, pool => sqlx::query(sql)
            .bind(user_id).bind(client_id.as_str()).bind(scope).bind(Timestamp::from(now))
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn find_throttle(&self, subject: &str) -> Result<Option<Throttle>, StorageError> {
        let sql = "SELECT failures, window_start, locked_until FROM login_throttles WHERE subject = $1";
        let row: Option<ThrottleRow> =
            on_pool!(&self.pool, pool => sqlx::query_as(sql).bind(subject).fetch_optional(pool).await)?;
        Ok(row.map(Throttle::from))
    }

    async fn record_failure(
        &self,
        subject: &str,
        now: DateTime<Utc>,
        window_cutoff: DateTime<Utc>,
    ) -> Result<Throttle, StorageError> {
        // One statement, so concurrent failures are all counted.
        let sql = "INSERT INTO login_throttles (subject, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
                   ON CONFLICT (subject) DO UPDATE SET \
                     failures = CASE WHEN login_throttles.window_start < $3 THEN 1 ELSE login_throttles.failures + 1 END, \
                     window_start = CASE WHEN login_throttles.window_start < $3 THEN $2 ELSE login_throttles.window_start END \
                   RETURNING failures, window_start, locked_until";
        let subject = subject.to_owned();
        let row: ThrottleRow = on_writer!(self, pool => sqlx::query_as(sql)
            .bind(subject).bind(Timestamp::from(now)).bind(Timestamp::from(window_cutoff))
            .fetch_one(pool).await)?;
        Ok(row.into())
    }

    async fn lock(&self, subject: &str, until: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "UPDATE login_throttles SET locked_until = $2 WHERE subject = $1";
        let subject = subject.to_owned();
        on_writer!(self, pool => sqlx::query(sql).bind(subject).bind(Timestamp::from(until)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn clear_throttle(&self, subject: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM login_throttles WHERE subject = $1";
        let subject = subject.to_owned();
        on_writer!(self, pool => sqlx::query(sql).bind(subject).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
