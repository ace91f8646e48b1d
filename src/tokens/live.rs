//! Whether one of Tessera's access tokens is still live, beyond its signature and expiry:
//! what `/userinfo` and introspection both ask, so both say the same about a token.

use super::TokenIssuer;
use crate::domain::client::ClientId;
use crate::domain::refresh::FamilyId;
use crate::domain::user::UserId;
use crate::storage::{Storage, StorageError};
use tessera_verify::Claims;

/// The claims of one of our access tokens if it is live: a valid signature, `exp` and
/// `iss`, and nothing behind it revoked or disabled — the token (`jti`), its refresh
/// family, its client, and its user (none for client credentials).
///
/// The token's client is read from storage, not the client cache: disabling a client
/// stops its tokens at once, where the cache would let them live for its TTL.
pub async fn live_access_token(
    token: &str,
    storage: &dyn Storage,
    issuer: &TokenIssuer,
) -> Result<Option<Claims>, StorageError> {
    let Ok(claims) = issuer.verify_access_token(token) else { return Ok(None) };
    if storage.is_access_token_revoked(&claims.jti).await? {
        return Ok(None);
    }
    if let Some(fid) = &claims.fid {
        let Ok(fid) = FamilyId::parse(fid) else { return Ok(None) };
        if storage.find_family(&fid).await?.is_none_or(|f| f.revoked_at.is_some()) {
            return Ok(None);
        }
    }
    // Every token, a user's too, dies with its client: a disabled client must not keep
    // acting for its users through the access tokens it still holds.
    let Ok(client_id) = ClientId::parse(&claims.client_id) else { return Ok(None) };
    if storage.find_client(&client_id).await?.is_none_or(|c| c.is_disabled()) {
        return Ok(None);
    }
    let is_client_token = claims.sid.is_none() && claims.sub == claims.client_id;
    if !is_client_token {
        let Ok(user_id) = UserId::parse(&claims.sub) else { return Ok(None) };
        if storage.find_user_by_id(&user_id).await?.is_none_or(|u| u.disabled_at.is_some()) {
            return Ok(None);
        }
    }
    Ok(Some(claims))
}

/// The `cnf.jkt` of a verified access token (RFC 9449 §6.1): the thumbprint of the DPoP
/// key it is bound to, if it is bound. tessera-verify parses `cnf` into [`Claims::cnf`]
/// (it is no longer among the `extra` claims).
pub fn bound_jkt(claims: &Claims) -> Option<&str> {
    claims.dpop_jkt()
}
