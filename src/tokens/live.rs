//! Whether one of Tessera's access tokens is still live, beyond its signature and expiry:
//! what `/userinfo` and introspection both ask, so both say the same about a token.

use super::TokenIssuer;
use crate::domain::access_token::{is_opaque_access_token, OpaqueAccessToken};
use crate::domain::client::ClientId;
use crate::domain::refresh::FamilyId;
use crate::domain::secret::SecretDigest;
use crate::domain::user::UserId;
use crate::storage::{Storage, StorageError};
use tessera_verify::Claims;

/// The claims of one of our access tokens if it is live: a valid signature, `exp` and
/// `iss`, and nothing behind it revoked or disabled — the token (`jti`), its refresh
/// family, its client, and its user (none for client credentials).
///
/// Everything behind it is checked in one round trip (`access_token_standing`). The
/// token's client is read from storage, not the client cache: disabling a client stops its
/// tokens at once, where the cache would let them live for its TTL.
pub async fn live_access_token(
    token: &str,
    storage: &dyn Storage,
    issuer: &TokenIssuer,
) -> Result<Option<Claims>, StorageError> {
    let claims = if is_opaque_access_token(token) {
        let now = issuer.clock.now();
        match storage.find_opaque_access_token(&SecretDigest::of(token), now).await? {
            Some(record) => match opaque_claims(record, issuer.issuer.as_str()) {
                Some(claims) => claims,
                None => return Ok(None),
            },
            None => return Ok(None),
        }
    } else {
        let Ok(claims) = issuer.verify_access_token(token) else { return Ok(None) };
        claims
    };
    // Every token, a user's too, dies with its client: a disabled client must not keep
    // acting for its users through the access tokens it still holds. The client is read
    // from the database, not the client cache, so disabling it stops its tokens at once.
    let Ok(client_id) = ClientId::parse(&claims.client_id) else { return Ok(None) };
    let family = match &claims.fid {
        Some(fid) => match FamilyId::parse(fid) {
            Ok(fid) => Some(fid),
            Err(_) => return Ok(None),
        },
        None => None,
    };
    let is_client_token = claims.sid.is_none() && claims.sub == claims.client_id;
    let user = if is_client_token {
        None
    } else {
        match UserId::parse(&claims.sub) {
            Ok(user) => Some(user),
            Err(_) => return Ok(None),
        }
    };
    if !storage.access_token_standing(&claims.jti, family.as_ref(), &client_id, user.as_ref()).await? {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// The claims an opaque token's JWT form would have carried (RFC 9068 §2.2), so that
/// every check and every answer after this point is the same for both formats.
fn opaque_claims(record: OpaqueAccessToken, issuer: &str) -> Option<Claims> {
    let mut claims = serde_json::json!({
        "iss": issuer,
        "sub": record.subject,
        "aud": record.audiences,
        "client_id": record.client_id.as_str(),
        "iat": record.issued_at.timestamp(),
        "exp": record.expires_at.timestamp(),
        "jti": record.jti,
    });
    if !record.scope.is_empty() {
        claims["scope"] = record.scope.to_string().into();
    }
    if let Some(sid) = record.sid {
        claims["sid"] = sid.into();
    }
    if let Some(auth_time) = record.auth_time {
        claims["auth_time"] = auth_time.timestamp().into();
    }
    if let Some(fid) = record.family_id {
        claims["fid"] = fid.into();
    }
    if let Some(jkt) = record.dpop_jkt {
        claims["cnf"] = serde_json::json!({ "jkt": jkt });
    }
    // Every member `from_trusted_json` requires is set above.
    Claims::from_trusted_json(&claims).ok()
}

/// The `cnf.jkt` of a verified access token (RFC 9449 §6.1): the thumbprint of the DPoP
/// key it is bound to, if it is bound. tessera-verify parses `cnf` into [`Claims::cnf`]
/// (it is no longer among the `extra` claims).
pub fn bound_jkt(claims: &Claims) -> Option<&str> {
    claims.dpop_jkt()
}

/// The claims and client of a live access token that a client obtained for itself with
/// client credentials, presented as a plain Bearer token, and meant for this issuer: what
/// Tessera's own APIs (Shared Signals management, the admin API) accept. `Err` says why
/// the token is not one (an RFC 6750 `invalid_token` description).
///
/// - RFC 9449 §7.1: a DPoP-bound token is worth nothing without a proof of its key; these
///   APIs take Bearer tokens only, so a bound one is refused rather than accepted from
///   whoever holds it.
/// - The client acts for itself (`sub` is the client, no login session): a token a user
///   delegated to a client gives the client no power of its own here.
/// - RFC 9068 §4: the resource server checks `aud`; here Tessera is it.
pub async fn own_client_token(
    token: &str,
    storage: &dyn Storage,
    issuer: &TokenIssuer,
) -> Result<Result<(ClientId, Claims), &'static str>, StorageError> {
    let Some(claims) = live_access_token(token, storage, issuer).await? else {
        return Ok(Err("the access token is invalid, expired or revoked"));
    };
    if bound_jkt(&claims).is_some() {
        return Ok(Err("the access token is DPoP-bound: this API takes Bearer tokens"));
    }
    if claims.sid.is_some() || claims.sub != claims.client_id {
        return Ok(Err("this API takes a token a client obtained with client credentials"));
    }
    if !claims.aud.iter().any(|aud| aud == issuer.issuer.as_str()) {
        return Ok(Err("the access token is not meant for this issuer"));
    }
    let Ok(client_id) = ClientId::parse(&claims.client_id) else {
        return Ok(Err("the access token names no valid client"));
    };
    Ok(Ok((client_id, claims)))
}
