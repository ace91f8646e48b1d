//! `ClientRequestStore` over either pool (see `storage::client_requests`).

use super::SqlStorage;
use crate::domain::authorization::PendingAuthorization;
use crate::domain::client::ClientId;
use crate::domain::secret::SecretDigest;
use crate::storage::client_requests::{BoundRefused, ClientRequestStore, RequestLimits, SourceBound};
use crate::storage::rows::PendingRow;
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

macro_rules! pushed_columns {
    () => {
        "client_id, redirect_uri, scope, state, nonce, code_challenge, login_hint, max_age, prompt, created_at, \
         expires_at"
    };
}

#[async_trait]
impl ClientRequestStore for SqlStorage {
    async fn insert_pushed_request(
        &self,
        id: &SecretDigest,
        request: &PendingAuthorization,
        limits: RequestLimits,
        source: Option<SourceBound<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), BoundRefused>, StorageError> {
        // The no-op UPDATE takes the client's row lock on PostgreSQL (SQLite writes one at a
        // time anyway), so one client's concurrent pushes count one after another and its
        // bound holds exactly.
        let lock_client = "UPDATE clients SET updated_at = updated_at WHERE id = $1";
        let insert = concat!(
            "INSERT INTO pushed_authorization_requests (id_digest, ",
            pushed_columns!(),
            ", source_digest) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15 \
             WHERE (SELECT COUNT(*) FROM pushed_authorization_requests WHERE client_id = $2 AND expires_at > $11) < $13 \
               AND (SELECT COUNT(*) FROM pushed_authorization_requests WHERE expires_at > $11) < $14 \
               AND ($15 IS NULL OR (SELECT COUNT(*) FROM pushed_authorization_requests \
                    WHERE client_id = $2 AND source_digest = $15 AND expires_at > $11) < $16)"
        );
        let count_client =
            "SELECT COUNT(*) FROM pushed_authorization_requests WHERE client_id = $1 AND expires_at > $2";
        let count_source = "SELECT COUNT(*) FROM pushed_authorization_requests \
             WHERE client_id = $1 AND source_digest = $2 AND expires_at > $3";
        let (source_digest, max_per_source) =
            (source.map(|s| s.digest.as_str().to_owned()), source.map_or(0, |s| s.max));
        let now = Timestamp::from(now);
        on_writer!(self, [id, request], pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(lock_client).bind(request.client_id.as_str()).execute(&mut *tx).await?;
            let inserted = sqlx::query(insert)
                .bind(id.as_str())
                .bind(request.client_id.as_str())
                .bind(&request.redirect_uri)
                .bind(request.scope.to_string())
                .bind(&request.state)
                .bind(&request.nonce)
                .bind(request.code_challenge.as_str())
                .bind(&request.login_hint)
                .bind(request.max_age)
                .bind(request.prompt.to_param())
                .bind(now)
                .bind(Timestamp::from(request.expires_at))
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
        })
    }

    async fn claim_pushed_request(
        &self,
        id: &SecretDigest,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StorageError> {
        // The row type of pending_authorizations; a pushed request has no CSRF token yet.
        let sql = concat!(
            "DELETE FROM pushed_authorization_requests WHERE id_digest = $1 AND client_id = $2 AND expires_at > $3 \
             RETURNING csrf_digest, ",
            pushed_columns!()
        );
        let row: Option<PendingRow> = on_writer!(self, [id, client], pool => Ok(sqlx::query_as(sql)
            .bind(id.as_str()).bind(client.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await?))?;
        row.map(PendingAuthorization::try_from).transpose()
    }

    async fn record_assertion_jti(
        &self,
        digest: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        // One statement: a new jti inserts; a recorded one updates nothing (`WHERE` false)
        // unless it expired and housekeeping has not purged it yet.
        let sql = "INSERT INTO client_assertion_jtis (jti_digest, expires_at) VALUES ($1, $2) \
                   ON CONFLICT (jti_digest) DO UPDATE SET expires_at = excluded.expires_at \
                   WHERE client_assertion_jtis.expires_at <= $3";
        on_writer!(self, [digest], pool => {
            let done = sqlx::query(sql)
                .bind(digest.as_str())
                .bind(Timestamp::from(expires_at))
                .bind(Timestamp::from(now))
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn purge_client_requests(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, StorageError> {
        let statements = [
            "DELETE FROM pushed_authorization_requests WHERE id_digest IN \
             (SELECT id_digest FROM pushed_authorization_requests WHERE expires_at < $1 LIMIT $2)",
            "DELETE FROM client_assertion_jtis WHERE jti_digest IN \
             (SELECT jti_digest FROM client_assertion_jtis WHERE expires_at < $1 LIMIT $2)",
            // RFC 8628: an expired device code is answered `expired_token` until it goes.
            "DELETE FROM device_codes WHERE device_code_digest IN \
             (SELECT device_code_digest FROM device_codes WHERE expires_at < $1 LIMIT $2)",
        ];
        let now = Timestamp::from(now);
        let mut total = 0;
        for sql in statements {
            total += on_writer!(self, [], pool => {
                Ok(sqlx::query(sql).bind(now).bind(batch).execute(pool).await?.rows_affected())
            })?;
        }
        Ok(total)
    }
}
