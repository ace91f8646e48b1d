//! `AccessTokenStore`: opaque access tokens as one row each.

use super::SqlStorage;
use crate::domain::access_token::OpaqueAccessToken;
use crate::domain::client::ClientId;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::storage::timestamp::Timestamp;
use crate::storage::{AccessTokenStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

#[derive(sqlx::FromRow)]
struct OpaqueAccessTokenRow {
    jti: String,
    client_id: String,
    subject: String,
    scope: String,
    audiences: Json<Vec<String>>,
    sid: Option<String>,
    auth_time: Option<Timestamp>,
    family_id: Option<String>,
    dpop_jkt: Option<String>,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

impl TryFrom<OpaqueAccessTokenRow> for OpaqueAccessToken {
    type Error = StorageError;
    fn try_from(row: OpaqueAccessTokenRow) -> Result<Self, StorageError> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| StorageError::Corrupt(format!("{what}: {e}"));
        Ok(Self {
            jti: row.jti,
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("opaque_access_tokens.client_id", &e))?,
            subject: row.subject,
            scope: ScopeSet::parse(&row.scope).map_err(|e| corrupt("opaque_access_tokens.scope", &e))?,
            audiences: row.audiences.0,
            sid: row.sid,
            auth_time: row.auth_time.map(Into::into),
            family_id: row.family_id,
            dpop_jkt: row.dpop_jkt,
            issued_at: row.issued_at.into(),
            expires_at: row.expires_at.into(),
        })
    }
}

#[async_trait]
impl AccessTokenStore for SqlStorage {
    async fn insert_opaque_access_token(
        &self,
        digest: &SecretDigest,
        token: &OpaqueAccessToken,
    ) -> Result<(), StorageError> {
        let sql = "INSERT INTO opaque_access_tokens (token_digest, jti, client_id, subject, scope, audiences, sid, \
                   auth_time, family_id, dpop_jkt, issued_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        on_writer!(self, [digest, token], pool => {
            sqlx::query(sql)
                .bind(digest.as_str())
                .bind(&token.jti)
                .bind(token.client_id.as_str())
                .bind(&token.subject)
                .bind(token.scope.to_string())
                .bind(Json(&token.audiences))
                .bind(token.sid.as_deref())
                .bind(token.auth_time.map(Timestamp::from))
                .bind(token.family_id.as_deref())
                .bind(token.dpop_jkt.as_deref())
                .bind(Timestamp::from(token.issued_at))
                .bind(Timestamp::from(token.expires_at))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    async fn find_opaque_access_token(
        &self,
        digest: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<OpaqueAccessToken>, StorageError> {
        let sql = "SELECT jti, client_id, subject, scope, audiences, sid, auth_time, family_id, dpop_jkt, issued_at, \
                   expires_at FROM opaque_access_tokens WHERE token_digest = $1 AND expires_at > $2";
        let now = Timestamp::from(now);
        let row: Option<OpaqueAccessTokenRow> = on_pool!(self, pool => {
            Ok(sqlx::query_as(sql).bind(digest.as_str()).bind(now).fetch_optional(pool).await?)
        })?;
        row.map(OpaqueAccessToken::try_from).transpose()
    }
}
