//! Refresh-token policy (RFC 6749 §6, RFC 9700 §4.14): when one is issued, how long it
//! lives, and the start of its family.

use crate::config::Settings;
use crate::domain::authorization::{AuthorizationGrant, SessionId};
use crate::domain::client::{Client, GrantType};
use crate::domain::refresh::{FamilyId, TokenFamily, REFRESH_TOKEN_PREFIX};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{GeneratedSecret, SecretDigest};
use crate::domain::user::UserId;
use crate::keys::kek::KeyEncryptionKey;
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// What a new family comes from: the user, their session and sign-in time, the scope.
#[derive(Clone, Copy)]
pub struct FamilyOrigin<'a> {
    pub user_id: &'a UserId,
    pub sid: &'a SessionId,
    pub scope: &'a ScopeSet,
    pub auth_time: DateTime<Utc>,
}

pub struct RefreshPolicy {
    pub idle_ttl: Duration,
    pub absolute_ttl: Duration,
    pub retry_window: Duration,
    /// Seals the successor kept for the retry window.
    pub kek: Arc<KeyEncryptionKey>,
}

impl RefreshPolicy {
    pub fn from_settings(settings: &Settings, kek: Arc<KeyEncryptionKey>) -> Self {
        Self {
            idle_ttl: settings.refresh_tokens.idle_ttl.chrono(),
            absolute_ttl: settings.refresh_tokens.absolute_ttl.chrono(),
            retry_window: settings.refresh_tokens.retry_window.chrono(),
            kek,
        }
    }

    /// OpenID Connect Core §11: a refresh token for `offline_access`, or for clients
    /// registered to always get one; never without the refresh_token grant.
    pub fn should_issue(client: &Client, scope: &ScopeSet) -> bool {
        client.allows_grant(GrantType::RefreshToken)
            && (scope.contains("offline_access") || client.always_issue_refresh_token)
    }

    /// Creates the family of a redeemed code with its first token, bound to `dpop_jkt` if
    /// given (RFC 9449 §5: a public client's DPoP key); returns the raw token,
    /// or `None` when the code was replayed (or its session ended) meanwhile and nothing
    /// may be issued from it (`GrantStore::create_family_for_code`).
    pub async fn start_family(
        &self,
        storage: &dyn Storage,
        code: &SecretDigest,
        client: &Client,
        grant: &AuthorizationGrant,
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<(GeneratedSecret, TokenFamily)>, StorageError> {
        let origin =
            FamilyOrigin { user_id: &grant.user_id, sid: &grant.sid, scope: &grant.scope, auth_time: grant.auth_time };
        let (token, family, idle_expires_at) = self.new_family(client, origin, dpop_jkt, now);
        let created = storage.create_family_for_code(code, &family, &token.digest(), idle_expires_at).await?;
        Ok(created.then_some((token, family)))
    }

    /// Creates the family of a redeemed device code (RFC 8628 §3.5), tied to the session
    /// that approved it as a code's family is to its session; `None` when that session
    /// ended meanwhile (`DeviceStore::create_family_for_session`).
    pub async fn start_family_for_session(
        &self,
        storage: &dyn Storage,
        client: &Client,
        origin: FamilyOrigin<'_>,
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<(GeneratedSecret, TokenFamily)>, StorageError> {
        let (token, family, idle_expires_at) = self.new_family(client, origin, dpop_jkt, now);
        let created = storage.create_family_for_session(&family, &token.digest(), idle_expires_at).await?;
        Ok(created.then_some((token, family)))
    }

    fn new_family(
        &self,
        client: &Client,
        origin: FamilyOrigin<'_>,
        dpop_jkt: Option<&str>,
        now: DateTime<Utc>,
    ) -> (GeneratedSecret, TokenFamily, DateTime<Utc>) {
        let token = GeneratedSecret::generate(REFRESH_TOKEN_PREFIX);
        let family = TokenFamily {
            id: FamilyId::generate(),
            client_id: client.id.clone(),
            user_id: origin.user_id.clone(),
            sid: origin.sid.clone(),
            scope: origin.scope.clone(),
            auth_time: origin.auth_time,
            created_at: now,
            last_used_at: now,
            absolute_expires_at: now + self.absolute_ttl,
            revoked_at: None,
            dpop_jkt: dpop_jkt.map(str::to_owned),
        };
        let idle_expires_at = (now + self.idle_ttl).min(family.absolute_expires_at);
        (token, family, idle_expires_at)
    }
}
