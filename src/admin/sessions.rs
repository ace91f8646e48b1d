//! A user's logins as refresh-token families, and revoking one or all of them.

use super::error::{invalid_as, ServiceError};
use crate::domain::refresh::{FamilyId, TokenFamily};
use crate::domain::signals::Reason;
use crate::domain::user::User;
use crate::signals::Emitter;
use crate::storage::Storage;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Most families listed for one user: the newest are shown (a user who logs in from
/// many places has many; revoking them all is one call and needs no list).
pub const MAX_LISTED: i64 = 500;

/// One login of a user at a client (a refresh-token family).
#[derive(Debug, Serialize, ToSchema)]
pub struct FamilyView {
    pub family_id: String,
    pub client_id: String,
    pub sid: String,
    pub scope: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub active: bool,
}

impl FamilyView {
    pub fn new(family: &TokenFamily, now: DateTime<Utc>) -> Self {
        Self {
            family_id: family.id.as_str().to_owned(),
            client_id: family.client_id.as_str().to_owned(),
            sid: family.sid.as_str().to_owned(),
            scope: family.scope.to_string(),
            created_at: family.created_at.to_rfc3339(),
            last_used_at: family.last_used_at.to_rfc3339(),
            expires_at: family.absolute_expires_at.to_rfc3339(),
            revoked_at: family.revoked_at.map(|t| t.to_rfc3339()),
            active: family.is_active(now),
        }
    }
}

/// The user's families in login order (the newest [`MAX_LISTED`]).
pub async fn list(storage: &dyn Storage, user: &User) -> Result<Vec<TokenFamily>, ServiceError> {
    Ok(storage.list_families_of_user(&user.id, MAX_LISTED).await?)
}

/// What revoking one family did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
}

/// Revokes one family (its refresh tokens and the access tokens issued from them).
pub async fn revoke_family(storage: &dyn Storage, events: &Emitter, raw_id: &str) -> Result<Revoked, ServiceError> {
    let id = FamilyId::parse(raw_id).map_err(invalid_as("family_id"))?;
    if storage.revoke_family(&id, &events.revocation(Reason::RevokedByOperator, Utc::now())).await? {
        Ok(Revoked::Now)
    } else if storage.find_family(&id).await?.is_some() {
        Ok(Revoked::Already)
    } else {
        Err(ServiceError::not_found("refresh-token family", raw_id))
    }
}

/// Revokes every family of `user` and ends their SSO sessions; how many families.
pub async fn revoke_all(storage: &dyn Storage, events: &Emitter, user: &User) -> Result<u64, ServiceError> {
    let revocation = events.revocation(Reason::RevokedByOperator, Utc::now());
    Ok(storage.end_user_access(&user.id, &revocation).await?)
}
