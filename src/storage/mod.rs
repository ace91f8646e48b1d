//! Persistence: one trait per aggregate, one implementation for both backends.
//!
//! Design: handlers see `Arc<dyn Storage>` and never a backend. Behind it sits
//! [`sql::SqlStorage`], which holds either a SQLite or a PostgreSQL database. Each method
//! is written once — one SQL text (`$1` placeholders, `RETURNING`, `ON CONFLICT`,
//! values bound from Rust rather than `NOW()`: the dialect both engines share) and one
//! bind list — and the `on_pool!` and `on_writer!` macros instantiate it for each driver,
//! so the compiler type-checks every query against both. Dialect differences are
//! confined to the migrations (`migrations/sqlite`, `migrations/postgres`, same file
//! names) and to [`timestamp::Timestamp`]. This avoids both `sqlx::Any` (no chrono
//! types) and two hand-maintained copies of every query; the contract suite in
//! `tests/storage/` runs every method of every store on both backends.
//!
//! Every method is atomic on its own: one statement, or one transaction. What the
//! methods guarantee under concurrency (a code redeemed once, one winner among claims of a
//! refresh token or a pending request, throttle reservations that never exceed the limit)
//! is stated on each and checked by that suite.
//!
//! ## A dropped request
//!
//! actix-web drops a handler's future when its client goes away, and shutdown drops what
//! is still running after its grace period. What that does to a write in progress
//! differs between the backends:
//! - PostgreSQL runs the write in the request's future: dropped inside a transaction, the
//!   transaction rolls back (a statement already sent may still complete on the server);
//! - SQLite runs it on the writer thread (`sql::writer`): once handed over, it runs to its
//!   end whatever becomes of the request, and commits or rolls back as its own code decides.
//!
//! Either way a write happens entirely or not at all, and the request may not learn which.
//! That is acceptable because every flow must survive it anyway: a response lost on the
//! network after the commit looks the same. A refresh rotation that completes for a client
//! that went away is answered again from its sealed successor inside the retry window (and
//! after it, presenting the old token is reuse: RFC 9700 §4.14.2), a redeemed code stays
//! redeemed (RFC 6749 §4.1.2), a pending request claimed is gone as it would be after a
//! lost response. What no caller may rely on is a drop undoing a write, nor a sequence of
//! calls (`reserve_attempt` then `settle_failure`, `redeem_code` then
//! `create_family_for_code`) running to its end: it can stop between any two calls, on
//! both backends. A throttle reservation that is never settled, for one, holds its place
//! until the window restarts.

mod access_tokens;
mod backchannel;
pub mod client_cache;
pub mod client_requests;
pub mod device;
mod revocations;
mod rows;
mod signals;
pub mod sql;
pub mod timestamp;

pub use access_tokens::AccessTokenStore;
pub use backchannel::{BackchannelStore, LogoutAttempt, LogoutOutcome, LogoutStats};
pub use client_requests::ClientRequestStore;
pub use device::DeviceStore;
pub use revocations::RevocationStore;
pub use signals::{PendingSet, PushAttempt, PushOutcome, SignalStore, Verification};

use crate::config::{DatabaseSettings, DatabaseUrl};
use crate::domain::authorization::{
    AuthorizationGrant, CodePresentation, CodeRedemption, PendingAuthorization, Session, SessionId,
};
use crate::domain::client::{Client, ClientId};
use crate::domain::refresh::{FamilyId, RefreshTokenState, Rotation, RotationRequest, TokenFamily};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::{User, UserId, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Failures of the storage layer. `Conflict` is the only one callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A uniqueness rule was violated (e.g. a username that is taken).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// SQLite: the writer thread did not finish the write. Either the storage is being
    /// dropped (its thread stopped) or the write panicked; in both cases its transaction,
    /// if it had not committed, rolled back.
    #[error("the SQLite writer stopped before the write finished")]
    WriterStopped,
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_client(&self, client: &Client) -> Result<(), StorageError>;
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StorageError>;
    async fn list_clients(&self) -> Result<Vec<Client>, StorageError>;
    /// Up to `limit` clients after the client `after` (all from the first when `None`),
    /// in the order of `list_clients` (creation, then id): a keyset page that neither
    /// skips nor repeats a client whatever is registered meanwhile. Empty when `after`
    /// names no client.
    async fn list_clients_page(&self, after: Option<&ClientId>, limit: i64) -> Result<Vec<Client>, StorageError>;
    /// Writes the parts of a registration an operator may change (name, scope, audiences,
    /// redirect URIs, flags), never its secret, grant types, keys or disabled mark: a
    /// change made from an older read cannot undo a rotation or a disable. Writes only if
    /// the client is still at `revision` (read with [`ClientStore::client_revision`]
    /// before the client itself) and bumps it: false when there is no such client or
    /// another change came first, so concurrent changes never undo each other.
    async fn update_client(&self, client: &Client, revision: i64, now: DateTime<Utc>) -> Result<bool, StorageError>;
    /// The client's revision, counted up by every [`ClientStore::update_client`].
    async fn client_revision(&self, id: &ClientId) -> Result<Option<i64>, StorageError>;
    /// Returns false when no such client exists.
    async fn set_client_secret(
        &self,
        id: &ClientId,
        digest: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, user: &User) -> Result<(), StorageError>;
    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StorageError>;
    async fn find_user_by_id(&self, id: &UserId) -> Result<Option<User>, StorageError>;
    async fn list_users(&self) -> Result<Vec<User>, StorageError>;
    /// Up to `limit` users with a username after `after`, by username.
    async fn list_users_page(&self, after: Option<&Username>, limit: i64) -> Result<Vec<User>, StorageError>;
    /// The user's revision, counted up by every [`UserStore::update_user_profile`].
    async fn user_revision(&self, id: &UserId) -> Result<Option<i64>, StorageError>;
    /// Sets a user's e-mail address, whether it is verified and display name if the user is still at `revision`
    /// (read before the user itself), bumping it; false when there is no such user or
    /// another change came first.
    async fn update_user_profile(
        &self,
        id: &UserId,
        email: Option<&str>,
        name: Option<&str>,
        email_verified: bool,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
}

/// A signing key as stored: the private half is encrypted (see `keys::kek`).
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub state: KeyState,
    pub encrypted_private_key: Vec<u8>,
    pub public_jwk: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Lifecycle of a signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing: verifiers learn it before it is used.
    Next,
    /// Signs new tokens and is published in the JWKS.
    Current,
    /// No longer signs; still published so the tokens it signed keep verifying.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Retired => "retired",
        }
    }
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StorageError>;
    /// Inserts a key; returns false (and changes nothing) when the kid exists or, for a
    /// `current` key, when another replica already made a different key current.
    async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool, StorageError>;
    /// In one transaction: `current_kid` becomes retired and `next_kid` current. False (and
    /// nothing changed) when either is no longer in the expected state (another replica won).
    async fn promote_next_key(
        &self,
        current_kid: &str,
        next_kid: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    /// Deletes a key that is in `state`; false when it is not (any more).
    async fn delete_signing_key(&self, kid: &str, state: KeyState) -> Result<bool, StorageError>;
}

/// Browser login state: SSO sessions, pending authorizations, consents, throttles.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts the session only if its user is still enabled with the password hash that was
    /// just verified (`password_hash`): a check that raced a password change or a disable
    /// starts no session after the cascade ran. False, nothing inserted, otherwise.
    async fn insert_session(
        &self,
        id: &SecretDigest,
        session: &Session,
        password_hash: &str,
    ) -> Result<bool, StorageError>;
    /// Renews the session `previous` of `session.user_id` for a new sign-in (`prompt=login`,
    /// `max_age`): the same `sid` (its families and codes stay tied to it, and the next
    /// logout ends them) under a new id (no fixation), with the new `auth_time` and expiry;
    /// only if the user is still enabled with the password hash just verified. False,
    /// nothing changed, otherwise.
    async fn renew_session(
        &self,
        previous: &SecretDigest,
        id: &SecretDigest,
        session: &Session,
        password_hash: &str,
    ) -> Result<bool, StorageError>;
    /// The session if it exists and `now` is before its absolute expiry and within
    /// `idle_cutoff` (sessions last seen before it are treated as gone).
    async fn find_session(
        &self,
        id: &SecretDigest,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Option<Session>, StorageError>;
    async fn touch_session(&self, id: &SecretDigest, now: DateTime<Utc>) -> Result<(), StorageError>;

    /// Stores a request that reached the consent stage in session `sid`, replacing the
    /// session's earlier one for the same client: at most one per session and client, so
    /// a signed-in user cannot pile rows up. (Login-stage requests are not stored at all:
    /// they travel signed in the login form.)
    async fn insert_pending(
        &self,
        id: &SecretDigest,
        sid: &SessionId,
        pending: &PendingAuthorization,
    ) -> Result<(), StorageError>;
    /// Takes (deletes and returns, in one statement) the consent-stage request `id` of
    /// session `sid`, if unexpired: a form submitted twice is answered once.
    async fn claim_pending(
        &self,
        id: &SecretDigest,
        sid: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StorageError>;

    /// The scopes the user granted the client, if any.
    async fn find_consent(&self, user_id: &UserId, client_id: &ClientId) -> Result<Option<ScopeSet>, StorageError>;
    async fn save_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &ScopeSet,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Reserves one password check for `subject` before it runs, in one statement: counts
    /// failures plus checks in flight within the window (a window that started before
    /// `window_cutoff` restarts at `now`) and refuses (false, nothing changed) when the
    /// subject is locked or that count has reached `limit`. Concurrent attempts therefore
    /// cannot all pass a check made before any of them failed.
    async fn reserve_attempt(
        &self,
        subject: &str,
        limit: i64,
        now: DateTime<Utc>,
        window_cutoff: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    /// Settles a reserved attempt as failed; returns the failures now counted.
    async fn settle_failure(&self, subject: &str) -> Result<i64, StorageError>;
    /// Settles a reserved attempt that checked nothing (or succeeded for a client IP).
    async fn release_attempt(&self, subject: &str) -> Result<(), StorageError>;
    /// Locks `subject` until `until` (never shortening a longer lock).
    async fn lock(&self, subject: &str, until: DateTime<Utc>) -> Result<(), StorageError>;
    /// Settles a reserved attempt that succeeded: the subject's failures and lock are reset.
    async fn clear_throttle(&self, subject: &str) -> Result<(), StorageError>;
}

/// Authorization codes, and whether an access token was revoked (revoking is
/// [`RevocationStore`]'s).
#[async_trait]
pub trait GrantStore: Send + Sync {
    async fn insert_code(&self, code: &SecretDigest, grant: &AuthorizationGrant) -> Result<(), StorageError>;
    /// Redeems the code in one statement that checks everything the presentation must
    /// match (client, redirect URI, PKCE challenge, live session, unchanged user), marks it
    /// used and records the access token's `jti`: redeemable once (RFC 6749 §4.1.2), and a
    /// wrong presentation changes nothing. When nothing matched, tells why.
    async fn redeem_code(
        &self,
        code: &SecretDigest,
        presented: &CodePresentation,
    ) -> Result<CodeRedemption, StorageError>;
    /// Creates the family of a redeemed code, in one transaction that first records the
    /// family on the code's row unless the code was replayed meanwhile (and its session
    /// and user are still as they were): false, and nothing created, otherwise. The row
    /// lock orders it against [`RevocationStore::revoke_replayed_code`], so a replay either finds
    /// the family to revoke or prevents it.
    async fn create_family_for_code(
        &self,
        code: &SecretDigest,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
    /// Whether nothing behind an access token has ended: its `jti` is not revoked, its
    /// refresh-token `family` (if it has one) exists unrevoked, its `client` exists enabled,
    /// its `user` (none for a client's own token) exists enabled, and its SSO session
    /// (`sid`, given for a user's token without a family) still exists: every cascade that
    /// ends a session (logout, sign-in as someone else, a new password, revoking a user's
    /// access) deletes it, so such a token ends with it as a family's tokens end with the
    /// family. One statement, one round trip: what introspection and `/userinfo` ask on
    /// every call.
    async fn access_token_standing(&self, token: &TokenStanding<'_>) -> Result<bool, StorageError>;
}

/// What [`HealthCheck::pool_state`] reports.
#[derive(Clone, Copy, Debug)]
pub struct PoolState {
    /// Open connections: the read pool's on SQLite.
    pub open: u32,
    /// Idle in the pool.
    pub idle: usize,
    /// Idle, but kept out of the pool for the next read (`sql::kept`).
    pub kept: usize,
    /// SQLite: writes waiting for the one writer connection or running on it, the wait
    /// every SQLite write goes through. `None` on PostgreSQL, where sqlx 0.8's pool does
    /// not say how many tasks wait for a connection.
    pub writes_queued: Option<usize>,
}

/// What an access token depends on, for [`GrantStore::access_token_standing`].
#[derive(Clone, Copy, Debug)]
pub struct TokenStanding<'a> {
    pub jti: &'a str,
    pub family: Option<&'a FamilyId>,
    pub client: &'a ClientId,
    pub user: Option<&'a UserId>,
    pub sid: Option<&'a str>,
}

/// What a redeemed code issued.
#[derive(Clone, Debug, Default)]
pub struct CodeTokens {
    pub access_token_jti: Option<String>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub family_id: Option<FamilyId>,
}

/// Refresh-token families and their rotation.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Creates a family with its first token.
    async fn create_family(
        &self,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError>;
    /// One rotation attempt, in one transaction (RFC 9700 §4.14.2); retried internally on
    /// serialization failures, so concurrent presentations never see a database error.
    async fn rotate_refresh_token(&self, request: &RotationRequest<'_>) -> Result<Rotation, StorageError>;
    async fn find_refresh_token(
        &self,
        token: &SecretDigest,
    ) -> Result<Option<(RefreshTokenState, TokenFamily)>, StorageError>;
    async fn find_family(&self, id: &FamilyId) -> Result<Option<TokenFamily>, StorageError>;
    /// The user's newest `newest` families, oldest first (a user who logs in from many
    /// places has many; what is shown is bounded).
    async fn list_families_of_user(&self, user_id: &UserId, newest: i64) -> Result<Vec<TokenFamily>, StorageError>;
    /// Deletes sessions and the codes, tokens (opaque access tokens too), families and
    /// DPoP proof records nobody can use any more, at most
    /// `batch` rows per table per call; returns how many rows went.
    async fn purge_expired(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, StorageError>;
}

/// How many expired proof records each new record deletes on SQLite: more than one, so
/// that the expired records shrink while proofs keep coming, whatever the rate.
pub const EXPIRED_PROOFS_TAKEN_PER_RECORD: i64 = 2;

/// DPoP proofs already accepted (RFC 9449 §11.1), shared by every replica.
#[async_trait]
pub trait DpopProofStore: Send + Sync {
    /// Records an accepted proof (`proof`: a digest of its key's thumbprint and its `jti`)
    /// until `expires_at`, when its `iat` stops being acceptable anyway. The insert is
    /// `INSERT … ON CONFLICT DO NOTHING`: true for the first presentation, false for every
    /// other while the record is kept, however many race.
    ///
    /// On SQLite the same round trip deletes up to [`EXPIRED_PROOFS_TAKEN_PER_RECORD`]
    /// records that expired before `trim_before`, so that a table anyone naming a public
    /// client can feed never outgrows its purge, however seldom housekeeping gets the one
    /// writer under load. The caller passes a cutoff a whole acceptance window in the
    /// past, so that a replica whose clock runs behind (or whose window is longer) never
    /// finds a record gone that it would still need. PostgreSQL's purge has connections of
    /// its own, and there the trim only left dead index entries for every request to walk
    /// while a long snapshot was open (the review of this change measured 16 → 35 ms), so
    /// PostgreSQL only inserts.
    async fn record_dpop_proof(
        &self,
        proof: &SecretDigest,
        expires_at: DateTime<Utc>,
        trim_before: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
}

#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// One round trip to the database, for `/readyz`.
    async fn ping(&self) -> Result<(), StorageError>;
    /// The connection pool's state, for the metrics.
    fn pool_state(&self) -> PoolState;
    /// Closes the connections once the server has stopped: the SQLite writer finishes the
    /// writes queued on it first.
    async fn close(&self);
}

pub trait Storage:
    ClientStore
    + UserStore
    + KeyStore
    + SessionStore
    + GrantStore
    + RefreshStore
    + RevocationStore
    + SignalStore
    + ClientRequestStore
    + DeviceStore
    + DpopProofStore
    + BackchannelStore
    + AccessTokenStore
    + HealthCheck
{
}
impl<T> Storage for T where
    T: ClientStore
        + UserStore
        + KeyStore
        + SessionStore
        + GrantStore
        + RefreshStore
        + RevocationStore
        + SignalStore
        + ClientRequestStore
        + DeviceStore
        + DpopProofStore
        + BackchannelStore
        + AccessTokenStore
        + HealthCheck
{
}

/// Opens the database named by `url`, creating a SQLite file (and its directory) if
/// needed, and runs pending migrations.
pub async fn connect(url: &DatabaseUrl, settings: &DatabaseSettings) -> anyhow::Result<Arc<dyn Storage>> {
    let storage = sql::SqlStorage::connect(url, settings).await?;
    storage.migrate().await?;
    Ok(Arc::new(storage))
}
