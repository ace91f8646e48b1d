//! `GrantStore` over either pool (see `on_pool!`).

use super::{Pool, SqlStorage};
use crate::domain::authorization::{AuthorizationGrant, CodeRedemption};
use crate::domain::secret::SecretDigest;
use crate::storage::rows::CodeRow;
use crate::storage::timestamp::Timestamp;
use crate::storage::{GrantStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

const CODE_COLUMNS: &str =
    "client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, auth_time, created_at, expires_at";

#[async_trait]
impl GrantStore for SqlStorage {
    async fn insert_code(&self, code: &SecretDigest, grant: &AuthorizationGrant) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO authorization_codes (code_digest, {CODE_COLUMNS}) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let (code, grant) = (code.clone(), grant.clone());
        on_writer!(self, pool => sqlx::query(&sql)
            .bind(code.as_str())
            .bind(grant.client_id.as_str())
            .bind(&grant.user_id)
            .bind(&grant.sid)
            .bind(&grant.redirect_uri)
            .bind(grant.scope.to_string())
            .bind(&grant.nonce)
            .bind(grant.code_challenge.as_str())
            .bind(Timestamp::from(grant.auth_time))
            .bind(Timestamp::from(grant.created_at))
            .bind(Timestamp::from(grant.expires_at))
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn redeem_code(&self, code: &SecretDigest, now: DateTime<Utc>) -> Result<CodeRedemption, StorageError> {
        // The check and the mark are one statement: two concurrent redemptions cannot both win.
        let sql = format!(
            "UPDATE authorization_codes SET used_at = $2 \
                           WHERE code_digest = $1 AND used_at IS NULL AND expires_at > $2 RETURNING {CODE_COLUMNS}"
        );
        let owned = code.clone();
        let row: Option<CodeRow> = on_writer!(self, pool => sqlx::query_as(&sql)
            .bind(owned.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await)?;
        if let Some(row) = row {
            return Ok(CodeRedemption::Redeemed(AuthorizationGrant::try_from(row)?));
        }
        let sql = "SELECT used_at, access_token_jti, access_token_expires_at, family_id \
                   FROM authorization_codes WHERE code_digest = $1";
        let used: Option<(Option<Timestamp>, Option<String>, Option<Timestamp>, Option<String>)> =
            on_pool!(&self.pool, pool => sqlx::query_as(sql).bind(code.as_str()).fetch_optional(pool).await)?;
        Ok(match used {
            Some((Some(_), jti, expires_at, family_id)) => CodeRedemption::Replayed {
                access_token_jti: jti,
                access_token_expires_at: expires_at.map(Into::into),
                family_id,
            },
            _ => CodeRedemption::Invalid,
        })
    }

    async fn record_code_tokens(
        &self,
        code: &SecretDigest,
        jti: &str,
        expires_at: DateTime<Utc>,
        family_id: Option<&str>,
    ) -> Result<(), StorageError> {
        let sql = "UPDATE authorization_codes SET access_token_jti = $2, access_token_expires_at = $3, family_id = $4 \
                   WHERE code_digest = $1";
        let (code, jti, family_id) = (code.clone(), jti.to_owned(), family_id.map(str::to_owned));
        on_writer!(self, pool => sqlx::query(sql)
            .bind(code.as_str()).bind(jti).bind(Timestamp::from(expires_at)).bind(family_id)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: DateTime<Utc>) -> Result<(), StorageError> {
        let sql = "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
        let jti = jti.to_owned();
        on_writer!(self, pool => sqlx::query(sql).bind(jti).bind(Timestamp::from(expires_at)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StorageError> {
        let sql = "SELECT jti FROM revoked_access_tokens WHERE jti = $1";
        let row: Option<(String,)> =
            on_pool!(&self.pool, pool => sqlx::query_as(sql).bind(jti).fetch_optional(pool).await)?;
        Ok(row.is_some())
    }
}
