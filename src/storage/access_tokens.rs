//! Opaque access tokens (a client's `access_token_format = opaque`): what each stands for,
//! under the SHA-256 of the token. Revocation is by `jti` (`RevocationStore`), as for JWTs.

use super::StorageError;
use crate::domain::access_token::OpaqueAccessToken;
use crate::domain::secret::SecretDigest;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait AccessTokenStore: Send + Sync {
    /// Stores what the token whose digest is `digest` stands for, until it expires
    /// (housekeeping deletes it after `expires_at`). One insert.
    async fn insert_opaque_access_token(
        &self,
        digest: &SecretDigest,
        token: &OpaqueAccessToken,
    ) -> Result<(), StorageError>;

    /// The token whose digest is `digest`, if it has not expired at `now`. Whether it was
    /// revoked, or what it depends on ended, is the caller's to check (`tokens::live`).
    async fn find_opaque_access_token(
        &self,
        digest: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<OpaqueAccessToken>, StorageError>;
}
