//! Every way access ends, each in one transaction: the change, its cascade (what the
//! ended grant's holder could still use), and the Shared Signals events that report it
//! (`domain::signals::Revocation` builds them from the rows the change touched). So a
//! crash cannot leave half a cascade, and an event exists exactly when its revocation
//! committed. Refresh-token reuse revokes its family inside the rotation's own transaction
//! (`RefreshStore::rotate_refresh_token`).

use super::{CodeTokens, StorageError};
use crate::domain::authorization::Session;
use crate::domain::client::ClientId;
use crate::domain::refresh::FamilyId;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Revocation;
use crate::domain::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Ends the SSO session whose id has `id` (logout): the session, its unused codes, and
    /// the refresh-token families created in it. The session, when it existed.
    async fn end_session(&self, id: &SecretDigest, revocation: &Revocation) -> Result<Option<Session>, StorageError>;

    /// Ends everything `user` obtained: every SSO session, every unused code, every
    /// family. Returns how many families were revoked.
    async fn end_user_access(&self, user: &UserId, revocation: &Revocation) -> Result<u64, StorageError>;

    /// Disables `user` and ends everything they obtained; false (nothing changed) when
    /// there is no such user or it was disabled already. Their credentials count as
    /// changed, so a code issued before cannot be redeemed after.
    async fn disable_user(&self, user: &UserId, revocation: &Revocation) -> Result<bool, StorageError>;

    /// Enables a disabled `user` again; false when there is no such disabled user.
    async fn enable_user(&self, user: &UserId, revocation: &Revocation) -> Result<bool, StorageError>;

    /// Sets `user`'s password hash and ends everything obtained with the old password;
    /// false when there is no such user.
    async fn set_password_hash(&self, user: &UserId, hash: &str, revocation: &Revocation)
        -> Result<bool, StorageError>;

    /// Disables a client: every token it holds, its users' included, stops being live.
    /// False when there is no such enabled client.
    async fn disable_client(&self, client: &ClientId, revocation: &Revocation) -> Result<bool, StorageError>;

    /// Revokes one family; false when it was revoked already or does not exist.
    async fn revoke_family(&self, family: &FamilyId, revocation: &Revocation) -> Result<bool, StorageError>;

    /// Remembers an access token as revoked until it expires; false when it was already.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        revocation: &Revocation,
    ) -> Result<bool, StorageError>;

    /// A used code presented again by its owner (RFC 6749 §4.1.2): marks it replayed, which
    /// keeps a family from ever starting from it (see `GrantStore::create_family_for_code`,
    /// ordered against this on the code's row), and revokes what its redemption issued.
    /// Returns that, or `None` when the code is unknown or unused.
    async fn revoke_replayed_code(
        &self,
        code: &SecretDigest,
        revocation: &Revocation,
    ) -> Result<Option<CodeTokens>, StorageError>;
}
