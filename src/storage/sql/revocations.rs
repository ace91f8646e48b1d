//! `RevocationStore` over either pool: each way access ends as one transaction with its
//! cascade and the events that report it (see `storage::revocations`).

use super::refresh::FamiliesOf;
use super::SqlStorage;
use crate::domain::authorization::Session;
use crate::domain::authorization::SessionId;
use crate::domain::client::ClientId;
use crate::domain::refresh::FamilyId;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Revocation;
use crate::domain::user::UserId;
use crate::storage::rows::SessionRow;
use crate::storage::timestamp::Timestamp;
use crate::storage::{CodeTokens, RevocationStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Ends everything of user `$user` inside `$tx`: sessions, unused codes, families, and
/// owes the Back-Channel Logout Tokens of every session. Evaluates to the number of
/// families revoked and the number of Logout Tokens owed.
macro_rules! end_user_access_in {
    ($tx:expr, $user:expr, $revocation:expr) => {{
        let (user, revocation): (&UserId, &Revocation) = (&$user, &$revocation);
        let logouts = owe_logouts!(
            $tx,
            super::backchannel::OWE_LOGOUTS_OF_USER,
            super::backchannel::FORGET_PARTICIPANTS_OF_USER,
            user.as_str(),
            revocation.at
        );
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user.as_str()).execute(&mut *$tx).await?;
        sqlx::query("DELETE FROM authorization_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user.as_str())
            .execute(&mut *$tx)
            .await?;
        let families = FamiliesOf::User(user);
        let revoked = sqlx::query(families.revoke_sql())
            .bind(families.owner())
            .bind(Timestamp::from(revocation.at))
            .bind(revocation.reason)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        (revoked, logouts)
    }};
}

#[async_trait]
impl RevocationStore for SqlStorage {
    async fn end_session(&self, id: &SecretDigest, revocation: &Revocation) -> Result<Option<Session>, StorageError> {
        let sql = concat!("DELETE FROM sessions WHERE id_digest = $1 RETURNING ", session_columns!());
        let (session, owed) = on_writer!(self, [id, revocation], pool => {
            let mut tx = pool.begin().await?;
            let row: Option<SessionRow> = sqlx::query_as(sql).bind(id.as_str()).fetch_optional(&mut *tx).await?;
            let Some(session) = row.map(Session::from) else { return Ok((None, 0)) };
            let sid = session.sid.as_str();
            let logouts = owe_logouts!(
                tx,
                super::backchannel::OWE_LOGOUTS_OF_SESSION,
                super::backchannel::FORGET_PARTICIPANTS_OF_SESSION,
                sid,
                revocation.at
            );
            sqlx::query("DELETE FROM authorization_codes WHERE sid = $1 AND used_at IS NULL")
                .bind(sid).execute(&mut *tx).await?;
            let families = FamiliesOf::Session(&session.sid);
            sqlx::query(families.revoke_sql())
                .bind(families.owner()).bind(Timestamp::from(revocation.at)).bind(revocation.reason)
                .execute(&mut *tx).await?;
            let owed = owe_events!(tx, revocation.session_ended(&session.user_id, &session.sid)) + logouts;
            tx.commit().await?;
            Ok((Some(session), owed))
        })?;
        self.wake_if(owed);
        Ok(session)
    }

    async fn end_user_access(&self, user: &UserId, revocation: &Revocation) -> Result<u64, StorageError> {
        let (revoked, owed) = on_writer!(self, [user, revocation], pool => {
            let mut tx = pool.begin().await?;
            let (revoked, logouts) = end_user_access_in!(tx, user, revocation);
            let owed = owe_events!(tx, revocation.user_access_ended(user)) + logouts;
            tx.commit().await?;
            Ok((revoked, owed))
        })?;
        self.wake_if(owed);
        Ok(revoked)
    }

    async fn disable_user(&self, user: &UserId, revocation: &Revocation) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET disabled_at = $2, updated_at = $2, credentials_changed_at = $2 \
                   WHERE id = $1 AND disabled_at IS NULL";
        let (changed, owed) = on_writer!(self, [user, revocation], pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(user.as_str()).bind(Timestamp::from(revocation.at)).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok((false, 0));
            }
            let (_, logouts) = end_user_access_in!(tx, user, revocation);
            let owed = owe_events!(tx, revocation.user_disabled(user)) + logouts;
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn enable_user(&self, user: &UserId, revocation: &Revocation) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET disabled_at = NULL, updated_at = $2 WHERE id = $1 AND disabled_at IS NOT NULL";
        let (changed, owed) = on_writer!(self, [user, revocation], pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(user.as_str()).bind(Timestamp::from(revocation.at)).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok((false, 0));
            }
            let owed = owe_events!(tx, revocation.user_enabled(user));
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn set_password_hash(
        &self,
        user: &UserId,
        hash: &str,
        revocation: &Revocation,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET password_hash = $2, updated_at = $3, credentials_changed_at = $3 WHERE id = $1";
        let (changed, owed) = on_writer!(self, [user, hash, revocation], pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql)
                .bind(user.as_str()).bind(hash).bind(Timestamp::from(revocation.at))
                .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok((false, 0));
            }
            let (_, logouts) = end_user_access_in!(tx, user, revocation);
            let owed = owe_events!(tx, revocation.password_changed(user)) + logouts;
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn disable_client(&self, client: &ClientId, revocation: &Revocation) -> Result<bool, StorageError> {
        let sql = "UPDATE clients SET disabled_at = $2, updated_at = $2 WHERE id = $1 AND disabled_at IS NULL";
        let (changed, owed) = on_writer!(self, [client, revocation], pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(client.as_str()).bind(Timestamp::from(revocation.at)).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok((false, 0));
            }
            let owed = owe_events!(tx, revocation.client_disabled(client));
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn revoke_family(&self, family: &FamilyId, revocation: &Revocation) -> Result<bool, StorageError> {
        let sql = "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 \
                   WHERE id = $1 AND revoked_at IS NULL RETURNING user_id, sid";
        let (changed, owed) = on_writer!(self, [family, revocation], pool => {
            let mut tx = pool.begin().await?;
            let row: Option<(String, String)> = sqlx::query_as(sql)
                .bind(family.as_str()).bind(Timestamp::from(revocation.at)).bind(revocation.reason)
                .fetch_optional(&mut *tx).await?;
            let Some((user, sid)) = row else { return Ok((false, 0)) };
            let (user, sid) = (UserId::from_stored(user), SessionId::from_stored(sid));
            let owed = owe_events!(tx, revocation.family_ended(&user, &sid, family));
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        revocation: &Revocation,
    ) -> Result<bool, StorageError> {
        let sql = "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
        let (changed, owed) = on_writer!(self, [jti, revocation], pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(sql).bind(jti).bind(Timestamp::from(expires_at)).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Ok((false, 0));
            }
            let owed = owe_events!(tx, revocation.access_token_revoked(jti));
            tx.commit().await?;
            Ok((true, owed))
        })?;
        self.wake_if(owed);
        Ok(changed)
    }

    async fn revoke_replayed_code(
        &self,
        code: &SecretDigest,
        revocation: &Revocation,
    ) -> Result<Option<CodeTokens>, StorageError> {
        let mark = "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $2) \
                    WHERE code_digest = $1 AND used_at IS NOT NULL \
                    RETURNING access_token_jti, access_token_expires_at, family_id, user_id, sid";
        let revoke_token =
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
        type Marked = (Option<String>, Option<Timestamp>, Option<String>, String, String);
        let (tokens, owed) = on_writer!(self, [code, revocation], pool => {
            let mut tx = pool.begin().await?;
            let row: Option<Marked> = sqlx::query_as(mark)
                .bind(code.as_str()).bind(Timestamp::from(revocation.at)).fetch_optional(&mut *tx).await?;
            let Some((jti, expires_at, family, user, sid)) = row else { return Ok((None, 0)) };
            let mut revoked_token = None;
            if let (Some(jti), Some(expires_at)) = (&jti, expires_at) {
                let done = sqlx::query(revoke_token).bind(jti).bind(expires_at).execute(&mut *tx).await?;
                revoked_token = (done.rows_affected() == 1).then_some(jti.as_str());
            }
            let family = family.map(FamilyId::from_stored);
            let mut revoked_family = None;
            let (user, sid) = (UserId::from_stored(user), SessionId::from_stored(sid));
            if let Some(family) = &family {
                let families = FamiliesOf::Id(family);
                let done = sqlx::query(families.revoke_sql())
                    .bind(families.owner()).bind(Timestamp::from(revocation.at)).bind(revocation.reason)
                    .execute(&mut *tx).await?;
                revoked_family = (done.rows_affected() == 1).then_some((&user, &sid, family));
            }
            let owed = owe_events!(tx, revocation.code_replayed(revoked_token, revoked_family));
            tx.commit().await?;
            let tokens = CodeTokens {
                access_token_jti: jti,
                access_token_expires_at: expires_at.map(Into::into),
                family_id: family,
            };
            Ok((Some(tokens), owed))
        })?;
        self.wake_if(owed);
        Ok(tokens)
    }
}
