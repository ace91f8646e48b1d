//! Every way a person's access ends, written once, so that no path forgets a step: an SSO
//! session ends with its unused codes and the refresh-token families created in it; a
//! user's access ends with all of their sessions, codes and families.
//!
//! The CLI, logout and (later) the admin API call these; what each revocation must also
//! tell the outside world is added here, not at each caller.

use crate::domain::authorization::Session;
use crate::domain::secret::SecretDigest;
use crate::domain::user::UserId;
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Utc};

/// Ends the SSO session whose id has `digest` (logout): its unused codes go and the
/// refresh-token families created in it are revoked. The session if it existed.
pub async fn end_session(
    storage: &dyn Storage,
    digest: &SecretDigest,
    now: DateTime<Utc>,
) -> Result<Option<Session>, StorageError> {
    let Some(session) = storage.delete_session(digest).await? else { return Ok(None) };
    storage.delete_unused_codes_of_session(&session.sid).await?;
    storage.revoke_families_of_session(&session.sid, now, "logout").await?;
    Ok(Some(session))
}

/// Ends everything a user obtained (disable, password change, an operator's revocation):
/// every SSO session, every unused authorization code, every refresh-token family. Returns
/// how many families were revoked. (A code redeemed concurrently is refused anyway:
/// redemption needs its session alive and the user's credentials unchanged since the code
/// was issued.)
pub async fn end_user_access(
    storage: &dyn Storage,
    user_id: &UserId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    storage.delete_sessions_of_user(user_id).await?;
    storage.delete_unused_codes_of_user(user_id).await?;
    storage.revoke_families_of_user(user_id, now, reason).await
}
