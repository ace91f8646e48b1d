//! `GrantStore` over either pool (see `on_pool!` and `on_writer!`).

use super::standing::Reader;
use super::{Backend, SqlStorage};
use crate::domain::authorization::{AuthorizationGrant, CodePresentation, CodeRedemption, StoredCode};
use crate::domain::refresh::TokenFamily;
use crate::domain::secret::SecretDigest;
use crate::storage::rows::CodeRow;
use crate::storage::timestamp::Timestamp;
use crate::storage::{GrantStore, StorageError, TokenStanding};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

macro_rules! code_columns {
    () => {
        "client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, auth_time, created_at, expires_at"
    };
}

/// The code's SSO session still exists at `$2` (logout, `session revoke` and expiry end it).
macro_rules! is_session_alive {
    () => {
        "EXISTS (SELECT 1 FROM sessions s WHERE s.sid = authorization_codes.sid AND s.expires_at > $2)"
    };
}

/// The code's user is enabled and changed no credentials after the code was issued.
macro_rules! is_user_unchanged {
    () => {
        "EXISTS (SELECT 1 FROM users u WHERE u.id = authorization_codes.user_id AND u.disabled_at IS NULL \
         AND (u.credentials_changed_at IS NULL OR u.credentials_changed_at <= authorization_codes.created_at))"
    };
}

/// Redeems a code: its presentation matches, and its session and user are as they were.
const REDEEM: &str = concat!(
    "UPDATE authorization_codes SET used_at = $2, access_token_jti = $6, access_token_expires_at = $7 \
     WHERE code_digest = $1 AND used_at IS NULL AND expires_at > $2 \
       AND client_id = $3 AND redirect_uri = $4 AND code_challenge = $5 AND ",
    is_session_alive!(),
    " AND ",
    is_user_unchanged!(),
    " RETURNING ",
    code_columns!()
);

/// Records the family a redeemed code starts, unless the code was replayed meanwhile.
const MARK_FAMILY: &str = concat!(
    "UPDATE authorization_codes SET family_id = $3 WHERE code_digest = $1 AND replayed_at IS NULL AND ",
    is_session_alive!(),
    " AND ",
    is_user_unchanged!()
);

/// A code and why it may not have been redeemed.
const STORED_CODE: &str = concat!(
    "SELECT ",
    code_columns!(),
    ", used_at, ",
    is_session_alive!(),
    " AS is_session_alive, ",
    is_user_unchanged!(),
    " AS is_user_unchanged FROM authorization_codes WHERE code_digest = $1"
);

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
        let sql = concat!(
            "INSERT INTO authorization_codes (code_digest, ",
            code_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on_writer!(self, [code, grant], pool => {
            // The code and the client's part in the session (Back-Channel Logout §2.3: the
            // RPs to tell when the session ends) in one transaction.
            let mut tx = pool.begin().await?;
            sqlx::query(super::backchannel::RECORD_PARTICIPANT)
                .bind(grant.sid.as_str())
                .bind(grant.client_id.as_str())
                .bind(grant.user_id.as_str())
                .bind(Timestamp::from(grant.created_at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql)
                .bind(code.as_str())
                .bind(grant.client_id.as_str())
                .bind(grant.user_id.as_str())
                .bind(grant.sid.as_str())
                .bind(&grant.redirect_uri)
                .bind(grant.scope.to_string())
                .bind(&grant.nonce)
                .bind(grant.code_challenge.as_str())
                .bind(Timestamp::from(grant.auth_time))
                .bind(Timestamp::from(grant.created_at))
                .bind(Timestamp::from(grant.expires_at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn redeem_code(
        &self,
        code: &SecretDigest,
        presented: &CodePresentation,
    ) -> Result<CodeRedemption, StorageError> {
        // The check and the mark are one statement: two concurrent redemptions cannot both
        // win, and the access token's jti is on the row the moment it is used.
        let redeemed: Option<CodeRow> = on_writer!(self, [code, presented], pool => Ok(sqlx::query_as(REDEEM)
            .bind(code.as_str())
            .bind(Timestamp::from(presented.now))
            .bind(presented.client_id.as_str())
            .bind(&presented.redirect_uri)
            .bind(&presented.code_challenge)
            .bind(&presented.access_token_jti)
            .bind(Timestamp::from(presented.access_token_expires_at))
            .fetch_optional(pool)
            .await?))?;
        if let Some(row) = redeemed {
            return Ok(CodeRedemption::Redeemed(AuthorizationGrant::try_from(row)?));
        }
        let stored: Option<StoredCodeRow> = on_pool!(self, pool => Ok(sqlx::query_as(STORED_CODE)
            .bind(code.as_str()).bind(Timestamp::from(presented.now)).fetch_optional(pool).await?))?;
        let stored = stored.map(StoredCode::try_from).transpose()?;
        Ok(CodeRedemption::refused(stored, presented))
    }

    async fn create_family_for_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        on_writer!(self, [code, family, token], pool => {
            let mut tx = pool.begin().await?;
            // First, and on the code's row: it waits for (or makes wait) a concurrent
            // `mark_code_replayed`, so the replay sees this family or prevents it.
            let marked = sqlx::query(MARK_FAMILY)
                .bind(code.as_str()).bind(Timestamp::from(family.created_at)).bind(family.id.as_str())
                .execute(&mut *tx).await?.rows_affected() == 1;
            if !marked {
                return Ok(false); // the transaction is dropped: rolled back
            }
            insert_family!(tx, family, token, idle_expires_at);
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn access_token_standing(&self, token: &TokenStanding<'_>) -> Result<bool, StorageError> {
        // Up to five key lookups in one statement: the round trips, not the lookups, are
        // what an introspection costs, so concurrent checks share one statement
        // (`standing`).
        match &self.backend {
            Backend::Postgres { kept, standing, .. } => standing.check(Reader::Postgres(kept), token).await,
            Backend::Sqlite { kept, standing, .. } => standing.check(Reader::Sqlite(kept), token).await,
        }
    }
}

/// The standing statement for a token of this shape (see [`standing_sql`]), with the
/// `jti`, the client, then the family, user and session it names bound in order.
pub(super) fn standing_query<'q, DB>(
    jti: &'q str,
    client: &'q str,
    family: Option<&'q str>,
    user: Option<&'q str>,
    sid: Option<&'q str>,
) -> sqlx::query::QueryScalar<'q, DB, bool, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    (bool,): for<'r> sqlx::FromRow<'r, DB::Row>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let sql = standing_sql(family.is_some(), user.is_some(), sid.is_some());
    let mut query = sqlx::query_scalar(sql);
    for value in [Some(jti), Some(client), family, user, sid].into_iter().flatten() {
        query = query.bind(value);
    }
    query
}

/// The standing statement for each shape of token (which of family, user and session it
/// names), so that no parameter is ever NULL. Why: with `CAST($n AS TEXT) IS NULL OR
/// EXISTS (…)` branches, a custom plan folds the branch away and so always looks cheaper
/// than the generic one, and PostgreSQL planned the prepared statement afresh on every
/// call: 15 % of all CPU under introspection (bench/README.md finding 15). Without them
/// PostgreSQL settles on the generic plan after five calls, as for every other statement.
fn standing_sql(family: bool, user: bool, sid: bool) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..8)
            .map(|shape: u8| {
                let mut sql = String::from(
                    "SELECT NOT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                     AND EXISTS (SELECT 1 FROM clients WHERE id = $2 AND disabled_at IS NULL)",
                );
                let mut n = 2;
                let checks = [
                    "EXISTS (SELECT 1 FROM token_families WHERE id = $N AND revoked_at IS NULL)",
                    "EXISTS (SELECT 1 FROM users WHERE id = $N AND disabled_at IS NULL)",
                    "EXISTS (SELECT 1 FROM sessions WHERE sid = $N)",
                ];
                for (bit, check) in checks.iter().enumerate() {
                    if shape & (1 << bit) != 0 {
                        n += 1;
                        sql.push_str(" AND ");
                        sql.push_str(&check.replace("$N", &format!("${n}")));
                    }
                }
                sql
            })
            .collect()
    });
    &all[usize::from(family) | usize::from(user) << 1 | usize::from(sid) << 2]
}
