//! Authorization codes (RFC 6749 §4.1.2): random, single use, short-lived, bound to
//! everything the token request must match. Only the code's digest is stored.

use super::Context;
use crate::domain::authorization::{AuthorizationGrant, PendingAuthorization, Session};
use crate::domain::secret::GeneratedSecret;
use crate::storage::StorageError;

/// Issues a code for `pending`, signed in through `session`; returns the code to send.
pub async fn issue(ctx: &Context, pending: &PendingAuthorization, session: &Session) -> Result<String, StorageError> {
    let code = GeneratedSecret::generate("");
    let now = ctx.now();
    let grant = AuthorizationGrant {
        client_id: pending.client_id.clone(),
        user_id: session.user_id.clone(),
        sid: session.sid.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        scope: pending.scope.clone(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + ctx.settings.code_ttl,
    };
    ctx.storage().insert_code(&code.digest(), &grant).await?;
    Ok(code.expose().to_owned())
}
