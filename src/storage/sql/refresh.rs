//! `RefreshStore` over either pool (see `on_pool!` and `on_writer!`). Rotation is one
//! transaction whose first statement claims the presented token (`UPDATE … WHERE used_at
//! IS NULL`), so of N concurrent presentations exactly one rotates; the others find it
//! used and get the same successor inside the retry window, or revoke the family outside
//! it.
//!
//! What to do is not decided here: the transaction reads the facts, the pure
//! [`refresh::decide`] (RFC 9700 §4.14.2, RFC 6749 §6) picks Rotate, Retry,
//! RevokeFamily, Invalid or ScopeExceeded, and this module carries that out.
//!
//! On PostgreSQL the common case, a first use that succeeds, is first tried as one
//! statement, shared with the rotations waiting beside it ([`postgres_together`]): a
//! round trip per statement cost more CPU than the RSA signature (bench/README.md,
//! findings 4 and 18). On SQLite, without a requested scope,
//! several rotations go to the writer as one transaction in one round trip ([`together`],
//! findings 13 and 17), which also settles every outcome that writes nothing. Only what
//! these leave open (and on SQLite a presentation that narrows the scope) goes to the
//! transaction, which tells why (unknown, dead, another client's, too wide a scope, a
//! retry inside the window, or reuse).

use super::writer::ToWriter;
use super::{Backend, SqlStorage};
use crate::domain::authorization::SessionId;
use crate::domain::client::ClientId;
use crate::domain::refresh::{
    self, FamilyId, FamilyState, Presentation, PresentedState, RefreshTokenState, Rotation, RotationDecision,
    RotationRequest, SuccessorState, TokenFamily,
};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Revocation;
use crate::domain::user::UserId;
use crate::storage::timestamp::Timestamp;
use crate::storage::{RefreshStore, StorageError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::borrow::Cow;

macro_rules! family_columns {
    () => {
        "f.id, f.client_id, f.user_id, f.sid, f.scope, f.auth_time, f.created_at, f.last_used_at, \
         f.absolute_expires_at, f.revoked_at, f.dpop_jkt"
    };
}

/// `family_columns!()` with the family's last use derived from its newest refresh token:
/// every rotation inserts one, created at the rotation's time, so the stored
/// `last_used_at` (written at creation only) is never updated on the rotation path,
/// which costs round trips. One lookup on the `refresh_tokens_family` index per family;
/// for the operator's reads, not the rotation's.
macro_rules! family_columns_with_last_use {
    () => {
        "f.id, f.client_id, f.user_id, f.sid, f.scope, f.auth_time, f.created_at, \
         COALESCE((SELECT MAX(t.created_at) FROM refresh_tokens t WHERE t.family_id = f.id), f.last_used_at) \
           AS last_used_at, \
         f.absolute_expires_at, f.revoked_at, f.dpop_jkt"
    };
}

/// How often a rotation is retried after a serialization failure or a busy database.
const ROTATION_ATTEMPTS: usize = 8;

#[derive(sqlx::FromRow)]
struct FamilyRow {
    id: String,
    client_id: String,
    user_id: String,
    sid: String,
    scope: String,
    auth_time: Timestamp,
    created_at: Timestamp,
    last_used_at: Timestamp,
    absolute_expires_at: Timestamp,
    revoked_at: Option<Timestamp>,
    dpop_jkt: Option<String>,
}

impl TryFrom<FamilyRow> for TokenFamily {
    type Error = StorageError;
    fn try_from(row: FamilyRow) -> Result<Self, StorageError> {
        let corrupt = |what: &str, e: String| StorageError::Corrupt(format!("token_families.{what}: {e}"));
        Ok(TokenFamily {
            id: FamilyId::from_stored(row.id),
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("client_id", e.to_string()))?,
            user_id: UserId::from_stored(row.user_id),
            sid: SessionId::from_stored(row.sid),
            scope: ScopeSet::parse(&row.scope).map_err(|e| corrupt("scope", e.to_string()))?,
            auth_time: row.auth_time.into(),
            created_at: row.created_at.into(),
            last_used_at: row.last_used_at.into(),
            absolute_expires_at: row.absolute_expires_at.into(),
            revoked_at: row.revoked_at.map(Into::into),
            dpop_jkt: row.dpop_jkt,
        })
    }
}

/// A presented token joined with its family and its user.
#[derive(sqlx::FromRow)]
struct TokenRow {
    #[sqlx(flatten)]
    state: TokenStateRow,
    /// The user is disabled, or changed credentials after the family's login. Either way
    /// the family is dead: the change's cascade revoked it, and this also stops a family
    /// whose creation raced the cascade (PostgreSQL, READ COMMITTED: created by a code
    /// redeemed while `set-password` committed).
    is_user_withdrawn: Option<bool>,
    #[sqlx(flatten)]
    family: FamilyRow,
}

/// The presented token, and its successor if one is stored.
#[derive(sqlx::FromRow)]
struct TokenStateRow {
    token_created_at: Timestamp,
    used_at: Option<Timestamp>,
    idle_expires_at: Timestamp,
    successor_sealed: Option<Vec<u8>>,
    successor_sealed_until: Option<Timestamp>,
    /// NULL when no successor is stored.
    successor_created_at: Option<Timestamp>,
    successor_used_at: Option<Timestamp>,
}

/// The columns of a [`TokenRow`] (with `token_from!`).
macro_rules! token_columns {
    () => {
        concat!(
            "t.created_at AS token_created_at, t.used_at, t.idle_expires_at, t.successor_sealed, \
             t.successor_sealed_until, s.created_at AS successor_created_at, s.used_at AS successor_used_at, \
             (u.disabled_at IS NOT NULL OR u.credentials_changed_at > f.auth_time) AS is_user_withdrawn, ",
            family_columns!()
        )
    };
}
macro_rules! token_from {
    () => {
        " FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id \
         LEFT JOIN refresh_tokens s ON s.token_digest = t.successor_digest \
         WHERE t.token_digest = $1"
    };
}
/// Every fact the rotation decision weighs, the successor's use included (a primary-key
/// lookup, in the same statement).
const TOKEN_QUERY: &str = concat!("SELECT ", token_columns!(), token_from!());

/// The presented token as it was before this presentation, and the sealed successor kept
/// for a retry. The claim changes the row only where the token was unused: then it was
/// the family's live token, and the successor on the row is this presentation's own.
fn presented_state(row: TokenStateRow, claimed: bool) -> (PresentedState, Option<Vec<u8>>) {
    let idle_expires_at = row.idle_expires_at.into();
    if claimed {
        let unused =
            PresentedState { idle_expires_at, used_at: None, retry_until: None, successor: SuccessorState::Absent };
        return (unused, None);
    }
    let successor = match (row.successor_created_at, row.successor_used_at) {
        (None, _) => SuccessorState::Absent,
        (Some(_), None) => SuccessorState::Unused,
        (Some(_), Some(_)) => SuccessorState::Used,
    };
    let sealed = row.successor_sealed.zip(row.successor_sealed_until);
    let presented = PresentedState {
        idle_expires_at,
        used_at: row.used_at.map(Into::into),
        retry_until: sealed.as_ref().map(|(_, until)| until.0),
        successor,
    };
    (presented, sealed.map(|(sealed, _)| sealed))
}

/// Binds $1–$5, what every claim of a [`Claim`] starts with: the presented token's digest,
/// the time, the successor's digest, and the sealed successor with until when it is kept.
macro_rules! bind_claim {
    ($query:expr, $claim:expr) => {
        $query
            .bind($claim.presented.as_str())
            .bind(Timestamp::from($claim.now))
            .bind($claim.successor.as_str())
            .bind($claim.sealed.as_ref().map(|(sealed, _)| &**sealed))
            .bind($claim.sealed.as_ref().map(|(_, until)| *until))
    };
}

mod postgres_together;
mod together;
pub(super) use postgres_together::PostgresRotations;
pub(super) use together::RotationQueue;

/// The outcome of a decision that writes nothing; `None` for Rotate and RevokeFamily.
fn unwritten(decision: RotationDecision, family: TokenFamily, sealed: Option<Vec<u8>>) -> Option<Rotation> {
    match decision {
        RotationDecision::Retry => {
            // Nothing was claimed (the token was used), so nothing to roll back.
            let successor_sealed = sealed.expect("decide retries only while a sealed successor is kept");
            Some(Rotation::Retried { family, successor_sealed })
        }
        // Another client's presentation, a dead family, an idle-expired token or too wide a
        // scope changes nothing.
        RotationDecision::Invalid => Some(Rotation::Invalid),
        RotationDecision::ScopeExceeded => Some(Rotation::ScopeExceeded),
        RotationDecision::WrongDpopKey => Some(Rotation::WrongDpopKey),
        RotationDecision::Rotate | RotationDecision::RevokeFamily => None,
    }
}

/// Busy (SQLite 5, 517, 6) or serialization/deadlock (PostgreSQL 40001, 40P01): try again.
fn is_retryable(error: &StorageError) -> bool {
    match error {
        StorageError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("5" | "6" | "517" | "40001" | "40P01"))
        }
        StorageError::Database(sqlx::Error::PoolTimedOut) => true,
        _ => false,
    }
}

/// What one rotation attempt binds. It borrows what the request holds, so that on
/// PostgreSQL an attempt copies nothing; on SQLite the attempt moves to the writer
/// thread, which may outlive the request, and [`ToWriter`] copies what it borrows then,
/// once. The successor's digest is computed here for both.
#[derive(Clone)]
struct Claim<'a> {
    presented: Cow<'a, SecretDigest>,
    successor: SecretDigest,
    now: DateTime<Utc>,
    /// The sealed successor and until when it is kept; `None` without a retry window.
    sealed: Option<(Cow<'a, [u8]>, Timestamp)>,
    client_id: Cow<'a, ClientId>,
    requested_scope: Option<Cow<'a, ScopeSet>>,
    /// `now` + the idle TTL; capped at the family's absolute expiry.
    idle_expires_at: DateTime<Utc>,
    /// What revoking the family on reuse records.
    reuse: Cow<'a, Revocation>,
    /// The request's DPoP key thumbprint, if it carried a proof.
    dpop_jkt: Option<Cow<'a, str>>,
}

impl<'a> Claim<'a> {
    fn of(req: &RotationRequest<'a>) -> Self {
        Self {
            presented: Cow::Borrowed(req.presented),
            successor: SecretDigest::of(req.successor),
            // Truncated as stored, so the decision and the SQL compare the same instants.
            now: Timestamp::from(req.now).0,
            sealed: (!req.retry_window.is_zero())
                .then(|| (Cow::Borrowed(req.successor_sealed), Timestamp::from(req.now + req.retry_window))),
            client_id: Cow::Borrowed(req.client_id),
            requested_scope: req.requested_scope.map(Cow::Borrowed),
            idle_expires_at: req.now + req.idle_ttl,
            reuse: Cow::Borrowed(req.reuse),
            dpop_jkt: req.dpop_jkt.map(Cow::Borrowed),
        }
    }

    /// What [`refresh::decide`] weighs of this presentation.
    fn presentation(&self) -> Presentation<'_> {
        Presentation {
            client_id: &self.client_id,
            requested_scope: self.requested_scope.as_deref(),
            now: self.now,
            dpop_jkt: self.dpop_jkt.as_deref(),
        }
    }
}

impl ToWriter for Claim<'_> {
    type Owned = Claim<'static>;
    fn to_writer(self) -> Claim<'static> {
        fn owned<T: ToOwned + ?Sized + 'static>(value: Cow<'_, T>) -> Cow<'static, T> {
            Cow::Owned(value.into_owned())
        }
        Claim {
            presented: owned(self.presented),
            successor: self.successor,
            now: self.now,
            sealed: self.sealed.map(|(sealed, until)| (owned(sealed), until)),
            client_id: owned(self.client_id),
            requested_scope: self.requested_scope.map(owned),
            idle_expires_at: self.idle_expires_at,
            reuse: owned(self.reuse),
            dpop_jkt: self.dpop_jkt.map(owned),
        }
    }
}

/// Which families a revocation ends, named by what they belong to. Each kind names its
/// column in a fixed SQL text: the owner is only ever bound, never spliced into SQL.
#[derive(Clone, Copy)]
pub(super) enum FamiliesOf<'a> {
    /// The one family with this id.
    Id(&'a FamilyId),
    /// Every family of this user.
    User(&'a UserId),
    /// Every family created in this SSO session.
    Session(&'a SessionId),
}

impl<'a> FamiliesOf<'a> {
    pub(super) fn revoke_sql(self) -> &'static str {
        match self {
            Self::Id(_) => {
                "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL"
            }
            Self::User(_) => {
                "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL"
            }
            Self::Session(_) => {
                "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE sid = $1 AND revoked_at IS NULL"
            }
        }
    }

    pub(super) fn owner(self) -> &'a str {
        match self {
            Self::Id(id) => id.as_str(),
            Self::User(id) => id.as_str(),
            Self::Session(id) => id.as_str(),
        }
    }
}

impl SqlStorage {
    /// One rotation attempt. On PostgreSQL, the claim with the rotations waiting beside it
    /// ([`postgres_together`]) first; on SQLite without a
    /// requested scope, with the rotations waiting beside it ([`together`]); then what they
    /// left open, in the transaction (on SQLite on the writer thread): claim, read the facts,
    /// [`refresh::decide`], and carry the decision out: insert the successor (Rotate),
    /// revoke the family (RevokeFamily), or change nothing (the rest roll back).
    async fn rotate_once(&self, claim: Claim<'_>) -> Result<Rotation, StorageError> {
        match &self.backend {
            Backend::Postgres { kept, rotations, .. } => {
                if let Some(family) = rotations.claim(kept.pool_for_write(), claim.clone().to_writer()).await? {
                    return Ok(Rotation::Rotated(family));
                }
            }
            // Only without a requested scope: SQLite has no arrays to compare scopes with in
            // SQL, and narrowing the scope at refresh is the rare case.
            Backend::Sqlite { writer, rotations, .. } if claim.requested_scope.is_none() => {
                if let Some(rotation) = rotations.settle(writer, claim.clone().to_writer()).await? {
                    return Ok(rotation);
                }
            }
            Backend::Sqlite { .. } => {}
        }
        let (rotation, owed) = on_writer!(self, [claim], pool => {
            let c = &claim;
            let now = Timestamp::from(c.now);
            let mut tx = pool.begin().await?;
            // The claim comes first: it takes the write lock, so the read below sees the
            // outcome of any concurrent rotation of the same token. It only sets `used_at`
            // where it was unset (exactly one of N concurrent presentations does) and
            // decides nothing: it records the successor in the same statement, and if the
            // decision is not Rotate, the transaction is dropped and all of it rolls back.
            let claimed = bind_claim!(sqlx::query(
                "UPDATE refresh_tokens SET used_at = $2, successor_digest = $3, successor_sealed = $4, successor_sealed_until = $5 \
                 WHERE token_digest = $1 AND used_at IS NULL"), c)
                .execute(&mut *tx).await?.rows_affected() == 1;
            let Some(row) = sqlx::query_as::<_, TokenRow>(TOKEN_QUERY).bind(c.presented.as_str()).fetch_optional(&mut *tx).await? else {
                return Ok((Rotation::Invalid, 0)); // unknown token
            };
            let is_user_disabled = row.is_user_withdrawn.unwrap_or(false);
            let (presented, sealed) = presented_state(row.state, claimed);
            let family = TokenFamily::try_from(row.family)?;
            match refresh::decide(&presented, &FamilyState::of(&family, is_user_disabled), &c.presentation()) {
                RotationDecision::Rotate if claimed => {
                    // Four statements in all (claim, read, insert, commit): the rotation's cost
                    // is round trips, so nothing else happens in here. A family's last use is
                    // derived from its newest token (see `family_columns_with_last_use!`) rather
                    // than written on every rotation.
                    let idle = Timestamp::from(c.idle_expires_at.min(family.absolute_expires_at));
                    sqlx::query("INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at) VALUES ($1, $2, $3, $4)")
                        .bind(c.successor.as_str()).bind(family.id.as_str()).bind(now).bind(idle).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok((Rotation::Rotated(family), 0))
                }
                // Unused, yet not claimed: the row appeared after the claim looked (PostgreSQL,
                // READ COMMITTED). Only the claim rotates; this presentation changes nothing.
                RotationDecision::Rotate => Ok((Rotation::Invalid, 0)),
                RotationDecision::RevokeFamily => {
                    // RFC 9700 §4.14.2: a used token presented again: revoke the whole family,
                    // and tell the receivers (its session-revoked event, in this transaction).
                    let families = FamiliesOf::Id(&family.id);
                    let revoked = sqlx::query(families.revoke_sql())
                        .bind(families.owner()).bind(now).bind(c.reuse.reason).execute(&mut *tx).await?
                        .rows_affected() == 1;
                    sqlx::query("UPDATE refresh_tokens SET successor_sealed = NULL, successor_sealed_until = NULL WHERE family_id = $1")
                        .bind(family.id.as_str()).execute(&mut *tx).await?;
                    let events = if revoked { c.reuse.family_ended(&family.user_id, &family.sid, &family.id) } else { Vec::new() };
                    let owed = owe_events!(tx, events);
                    tx.commit().await?;
                    Ok((Rotation::Reused(family), owed))
                }
                // The rest writes nothing: dropping the transaction rolls any claim back.
                decision => Ok((unwritten(decision, family, sealed).expect("Rotate and RevokeFamily are matched above"), 0)),
            }
        })?;
        self.wake_if(owed);
        Ok(rotation)
    }
}

#[async_trait]
impl RefreshStore for SqlStorage {
    async fn create_family(
        &self,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        on_writer!(self, [family, token], pool => {
            let mut tx = pool.begin().await?;
            insert_family!(tx, family, token, idle_expires_at);
            tx.commit().await?;
            Ok(())
        })
    }

    async fn rotate_refresh_token(&self, request: &RotationRequest<'_>) -> Result<Rotation, StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.rotate_once(Claim::of(request)).await {
                Err(error) if attempt < ROTATION_ATTEMPTS && is_retryable(&error) => {
                    tracing::debug!(attempt, "refresh rotation conflicted; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn find_refresh_token(
        &self,
        token: &SecretDigest,
    ) -> Result<Option<(RefreshTokenState, TokenFamily)>, StorageError> {
        let row: Option<TokenRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(TOKEN_QUERY).bind(token.as_str()).fetch_optional(pool).await?))?;
        row.map(|row| {
            let state = RefreshTokenState {
                created_at: row.state.token_created_at.into(),
                idle_expires_at: row.state.idle_expires_at.into(),
                used_at: row.state.used_at.map(Into::into),
            };
            Ok((state, TokenFamily::try_from(row.family)?))
        })
        .transpose()
    }

    async fn find_family(&self, id: &FamilyId) -> Result<Option<TokenFamily>, StorageError> {
        let sql = concat!("SELECT ", family_columns_with_last_use!(), " FROM token_families f WHERE f.id = $1");
        let row: Option<FamilyRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(id.as_str()).fetch_optional(pool).await?))?;
        row.map(TokenFamily::try_from).transpose()
    }

    async fn list_families_of_user(&self, user_id: &UserId, newest: i64) -> Result<Vec<TokenFamily>, StorageError> {
        let sql = concat!(
            "SELECT ",
            family_columns_with_last_use!(),
            " FROM token_families f WHERE f.user_id = $1 ORDER BY f.created_at DESC, f.id DESC LIMIT $2"
        );
        let mut rows: Vec<FamilyRow> = on_pool!(self, pool => {
            Ok(sqlx::query_as(sql).bind(user_id.as_str()).bind(newest).fetch_all(pool).await?)
        })?;
        rows.reverse();
        rows.into_iter().map(TokenFamily::try_from).collect()
    }

    async fn purge_expired(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, StorageError> {
        // Each batch is chosen in the order of its cutoff column's index: without the ORDER
        // BY, PostgreSQL may plan a sequential scan under `LIMIT` when its statistics still
        // count rows an earlier batch deleted (117 ms over 1 M families on the big-table
        // bench, bench/README.md finding 11); with it, the index answers, on both backends.
        // Used refresh tokens are kept while their family lives: they are what reuse
        // detection recognises. A family goes once it expired, or a day after revocation
        // (long enough for introspection to say "inactive" rather than "unknown").
        let grace = Timestamp::from(now - chrono::Duration::days(1));
        let now = Timestamp::from(now);
        let statements: [(&str, Timestamp); 10] = [
            ("UPDATE refresh_tokens SET successor_sealed = NULL, successor_sealed_until = NULL WHERE token_digest IN \
              (SELECT token_digest FROM refresh_tokens WHERE successor_sealed_until < $1 ORDER BY successor_sealed_until LIMIT $2)", now),
            ("DELETE FROM token_families WHERE id IN (SELECT id FROM token_families WHERE absolute_expires_at < $1 ORDER BY absolute_expires_at LIMIT $2)", now),
            ("DELETE FROM token_families WHERE id IN (SELECT id FROM token_families WHERE revoked_at < $1 ORDER BY revoked_at LIMIT $2)", grace),
            ("DELETE FROM authorization_codes WHERE code_digest IN (SELECT code_digest FROM authorization_codes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", grace),
            ("DELETE FROM pending_authorizations WHERE id_digest IN (SELECT id_digest FROM pending_authorizations WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", now),
            ("DELETE FROM sessions WHERE id_digest IN (SELECT id_digest FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", now),
            ("DELETE FROM revoked_access_tokens WHERE jti IN (SELECT jti FROM revoked_access_tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", now),
            ("DELETE FROM opaque_access_tokens WHERE token_digest IN (SELECT token_digest FROM opaque_access_tokens \
              WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", now),
            ("DELETE FROM dpop_proofs WHERE proof_digest IN (SELECT proof_digest FROM dpop_proofs WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)", now),
            ("DELETE FROM login_throttles WHERE subject IN (SELECT subject FROM login_throttles WHERE window_start < $1 \
              AND (locked_until IS NULL OR locked_until < $1) ORDER BY window_start LIMIT $2)", grace),
        ];
        let mut total = 0;
        for (sql, cutoff) in statements {
            total += on_writer!(self, [], pool => {
                Ok(sqlx::query(sql).bind(cutoff).bind(batch).execute(pool).await?.rows_affected())
            })?;
        }
        Ok(total)
    }
}
