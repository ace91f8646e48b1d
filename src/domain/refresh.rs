//! Refresh-token families (RFC 9700 §4.14.2): every rotation of one original grant stays
//! in one family, and a replayed token revokes the family, not the user's other sessions.

use super::client::ClientId;
use super::scope::ScopeSet;
use super::secret::SecretDigest;
use chrono::{DateTime, Utc};

/// Prefix of refresh tokens, so secret scanners can recognise leaked ones.
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";

#[derive(Clone, Debug)]
pub struct TokenFamily {
    pub id: String,
    pub client_id: ClientId,
    pub user_id: String,
    /// The SSO session the family was created in.
    pub sid: String,
    /// What the user granted; refreshes may narrow it per access token, never widen it.
    pub scope: ScopeSet,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenFamily {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.absolute_expires_at > now
    }
}

/// A presented refresh token as stored, for introspection and revocation.
#[derive(Clone, Debug)]
pub struct RefreshTokenState {
    pub created_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What one rotation attempt needs; the successor is prepared before the transaction.
pub struct RotationRequest<'a> {
    /// The digest of the presented token (computed once: it also binds the sealed successor).
    pub presented: &'a SecretDigest,
    pub client_id: &'a ClientId,
    pub now: DateTime<Utc>,
    pub successor: &'a str,
    /// The successor sealed with the key-encryption key, kept for the retry window.
    pub successor_sealed: &'a [u8],
    pub idle_ttl: chrono::Duration,
    /// Zero disables the idempotent-retry window.
    pub retry_window: chrono::Duration,
    /// A narrower scope asked for; checked before anything changes (RFC 6749 §6).
    pub requested_scope: Option<&'a ScopeSet>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// First use: the successor in the request is now the family's live token.
    Rotated(TokenFamily),
    /// The token was rotated moments ago and its successor is still unused: answer with
    /// that same successor (sealed) instead of branching the family.
    Retried { family: TokenFamily, successor_sealed: Vec<u8> },
    /// Used before, outside the window: the family is now revoked.
    Reused(TokenFamily),
    /// Unknown, expired, revoked, or another client's.
    Invalid,
    /// The requested scope is not within the family's grant; nothing changed.
    ScopeExceeded,
}
