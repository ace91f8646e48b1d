//! Token introspection (RFC 7662), client-authenticated. Inactive tokens of every kind
//! answer only `{"active": false}` (§2.2), so nothing leaks about why. A live token is
//! reported only to a client that may see it (§4): an access token to its own client, to a
//! resource server serving one of its audiences, or to one registered to introspect any
//! token; a refresh token only to its own client. To any other it is just inactive.
//! Access tokens of both formats (JWT and opaque, the client's `access_token_format`) are
//! answered alike, from the same claims (`tokens::live`).

use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use crate::clock::Clock;
use crate::domain::client::{Client, ClientId, ClientType};
use crate::domain::refresh::REFRESH_TOKEN_PREFIX;
use crate::domain::secret::SecretDigest;
use crate::storage::Storage;
use crate::tokens::live::{bound_jkt, live_access_token};
use crate::tokens::TokenIssuer;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

pub async fn post(
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, OAuthError> {
    let token = authenticated.token()?;
    let client = &authenticated.client;
    // RFC 7662 §2.1 requires authorization: a public client proves nothing by its id.
    if client.client_type() == ClientType::Public {
        return Err(OAuthError::invalid_client("introspection requires a confidential client"));
    }
    let body = if token.starts_with(REFRESH_TOKEN_PREFIX) {
        refresh_token(token, &client.id, &**storage, &**clock, &issuer).await?
    } else {
        access_token(token, client, &**storage, &issuer).await?
    };
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(body.unwrap_or_else(|| json!({ "active": false }))))
}

/// A live access token is reported only to a client allowed to see it (RFC 7662 §4, see
/// [`Client::may_introspect`]); to any other, it is as inactive as garbage (§2.2).
async fn access_token(
    token: &str,
    caller: &Client,
    storage: &dyn Storage,
    issuer: &TokenIssuer,
) -> Result<Option<Value>, OAuthError> {
    let Some(claims) = live_access_token(token, storage, issuer).await? else { return Ok(None) };
    let audiences: Vec<&str> = claims.aud.iter().map(String::as_str).collect();
    if !caller.may_introspect(&claims.client_id, &audiences) {
        return Ok(None);
    }
    // `aud` as the token has it (RFC 7519 §4.1.3): a string for one audience.
    let aud = match claims.aud.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    // RFC 9449 §6.2: a DPoP-bound token is reported as such, with its key's thumbprint.
    let jkt = bound_jkt(&claims);
    let mut body = json!({
        "active": true,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
    });
    if !claims.scope.is_empty() {
        body["scope"] = json!(claims.scope.to_string());
    }
    if let Some(jkt) = jkt {
        body["cnf"] = json!({ "jkt": jkt });
    }
    if let Some(sid) = claims.sid {
        body["sid"] = json!(sid);
    }
    // RFC 7662 §2.2 allows further members: the ones a resource server would read from the
    // JWT, so a verifier maps an opaque token's answer to the same claims (`tessera-verify`).
    if let Some(fid) = claims.fid {
        body["fid"] = json!(fid);
    }
    if let Some(auth_time) = claims.extra.get("auth_time").filter(|t| t.is_i64()) {
        body["auth_time"] = auth_time.clone();
    }
    Ok(Some(body))
}

/// A refresh token is active while it is its family's live token, the family is alive,
/// and its user is enabled. Only the client it was issued to may learn about it.
async fn refresh_token(
    token: &str,
    client: &ClientId,
    storage: &dyn Storage,
    clock: &dyn Clock,
    issuer: &TokenIssuer,
) -> Result<Option<Value>, OAuthError> {
    let now = clock.now();
    let Some((state, family)) = storage.find_refresh_token(&SecretDigest::of(token)).await? else { return Ok(None) };
    if &family.client_id != client || !family.is_active(now) || state.used_at.is_some() || state.idle_expires_at <= now
    {
        return Ok(None);
    }
    if storage.find_user_by_id(&family.user_id).await?.is_none_or(|u| u.disabled_at.is_some()) {
        return Ok(None);
    }
    Ok(Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "client_id": family.client_id.as_str(),
        "sub": family.user_id.as_str(),
        "scope": family.scope.to_string(),
        "iss": issuer.issuer.as_str(),
        "iat": state.created_at.timestamp(),
        "exp": state.idle_expires_at.min(family.absolute_expires_at).timestamp(),
        "sid": family.sid.as_str(),
    })))
}
