//! `GrantStore` over either pool (see `on_pool!`).

use super::{Pool, SqlStorage};
use crate::domain::authorization::{AuthorizationGrant, CodePresentation, CodeRedemption, StoredCode};
use crate::domain::refresh::TokenFamily;
use crate::domain::secret::SecretDigest;
use crate::storage::rows::CodeRow;
use crate::storage::timestamp::Timestamp;
use crate::storage::{CodeTokens, GrantStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;

const CODE_COLUMNS: &str =
    "client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, auth_time, created_at, expires_at";

/// The code's SSO session still exists at `$2` (logout, `session revoke` and expiry end it).
const IS_SESSION_ALIVE: &str =
    "EXISTS (SELECT 1 FROM sessions s WHERE s.sid = authorization_codes.sid AND s.expires_at > $2)";
/// The code's user is enabled and changed no credentials after the code was issued.
const IS_USER_UNCHANGED: &str = "EXISTS (SELECT 1 FROM users u WHERE u.id = authorization_codes.user_id \
     AND u.disabled_at IS NULL \
     AND (u.credentials_changed_at IS NULL OR u.credentials_changed_at <= authorization_codes.created_at))";

/// Redeems a code: its presentation matches, and its session and user are as they were.
static REDEEM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE authorization_codes SET used_at = $2, access_token_jti = $6, access_token_expires_at = $7 \
         WHERE code_digest = $1 AND used_at IS NULL AND expires_at > $2 \
           AND client_id = $3 AND redirect_uri = $4 AND code_challenge = $5 \
           AND {IS_SESSION_ALIVE} AND {IS_USER_UNCHANGED} \
         RETURNING {CODE_COLUMNS}"
    )
});

/// Records the family a redeemed code starts, unless the code was replayed meanwhile.
static MARK_FAMILY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE authorization_codes SET family_id = $3 \
         WHERE code_digest = $1 AND replayed_at IS NULL AND {IS_SESSION_ALIVE} AND {IS_USER_UNCHANGED}"
    )
});

/// A code and why it may not have been redeemed.
static STORED_CODE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {CODE_COLUMNS}, used_at, \
           {IS_SESSION_ALIVE} AS is_session_alive, {IS_USER_UNCHANGED} AS is_user_unchanged \
         FROM authorization_codes WHERE code_digest = $1"
    )
});

/// A code row and the facts `CodeRedemption::refused` needs.
#[derive(sqlx::FromRow)]
struct StoredCodeRow {
    #[sqlx(flatten)]
    code: CodeRow,
    used_at: Option<Timestamp>,
    is_session_alive: bool,
    is_user_unchanged: bool,
}

impl TryFrom<StoredCodeRow> for StoredCode {
    type Error = StorageError;
    fn try_from(row: StoredCodeRow) -> Result<Self, StorageError> {
        Ok(StoredCode {
            grant: AuthorizationGrant::try_from(row.code)?,
            used_at: row.used_at.map(Into::into),
            is_session_alive: row.is_session_alive,
            is_user_unchanged: row.is_user_unchanged,
        })
    }
}

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

    async fn redeem_code(
        &self,
        code: &SecretDigest,
        presented: &CodePresentation,
    ) -> Result<CodeRedemption, StorageError> {
        // The check and the mark are one statement: two concurrent redemptions cannot both
        // win, and the access token's jti is on the row the moment it is used.
        let (owned, p) = (code.clone(), presented.clone());
        let row: Option<CodeRow> = on_writer!(self, pool => sqlx::query_as(REDEEM.as_str())
            .bind(owned.as_str())
            .bind(Timestamp::from(p.now))
            .bind(p.client_id.as_str())
            .bind(&p.redirect_uri)
            .bind(&p.code_challenge)
            .bind(&p.access_token_jti)
            .bind(Timestamp::from(p.access_token_expires_at))
            .fetch_optional(pool).await)?;
        if let Some(row) = row {
            return Ok(CodeRedemption::Redeemed(AuthorizationGrant::try_from(row)?));
        }
        let stored: Option<StoredCodeRow> = on_pool!(&self.pool, pool => sqlx::query_as(STORED_CODE.as_str())
            .bind(code.as_str()).bind(Timestamp::from(presented.now)).fetch_optional(pool).await)?;
        let stored = stored.map(StoredCode::try_from).transpose()?;
        Ok(CodeRedemption::refused(stored, presented))
    }

    async fn mark_code_replayed(
        &self,
        code: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<CodeTokens>, StorageError> {
        let sql = "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $2) \
                   WHERE code_digest = $1 AND used_at IS NOT NULL \
                   RETURNING access_token_jti, access_token_expires_at, family_id";
        let code = code.clone();
        let row: Option<(Option<String>, Option<Timestamp>, Option<String>)> = on_writer!(self, pool =>
            sqlx::query_as(sql).bind(code.as_str()).bind(Timestamp::from(now)).fetch_optional(pool).await)?;
        Ok(row.map(|(jti, expires_at, family_id)| CodeTokens {
            access_token_jti: jti,
            access_token_expires_at: expires_at.map(Into::into),
            family_id,
        }))
    }

    async fn create_family_for_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let (code, family, token) = (code.clone(), family.clone(), token.clone());
        let created = on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            // First, and on the code's row: it waits for (or makes wait) a concurrent
            // `mark_code_replayed`, so the replay sees this family or prevents it.
            let marked = sqlx::query(MARK_FAMILY.as_str())
                .bind(code.as_str()).bind(Timestamp::from(family.created_at)).bind(&family.id)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !marked {
                return Ok(false); // dropped: rolled back
            }
            insert_family!(tx, family, token, idle_expires_at);
            tx.commit().await.map(|_| true)
        })?;
        Ok(created)
    }

    async fn delete_unused_codes_of_user(&self, user_id: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM authorization_codes WHERE user_id = $1 AND used_at IS NULL";
        let user_id = user_id.to_owned();
        let count =
            on_writer!(self, pool => sqlx::query(sql).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(count)
    }

    async fn delete_unused_codes_of_session(&self, sid: &str) -> Result<u64, StorageError> {
        let sql = "DELETE FROM authorization_codes WHERE sid = $1 AND used_at IS NULL";
        let sid = sid.to_owned();
        let count =
            on_writer!(self, pool => sqlx::query(sql).bind(sid).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(count)
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
