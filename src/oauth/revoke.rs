//! Token revocation (RFC 7009), client-authenticated. A refresh token revokes its whole
//! family; an access token, JWT or opaque, is remembered as revoked until it expires (an
//! opaque one is inactive at the next introspection). Unknown tokens,
//! and tokens of other clients, answer 200 and change nothing (§2.2).

use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use super::refresh_cookie::{from_the_app, RefreshCookie};
use crate::clock::Clock;
use crate::domain::access_token::is_opaque_access_token;
use crate::domain::refresh::REFRESH_TOKEN_PREFIX;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Reason;
use crate::signals::Emitter;
use crate::storage::Storage;
use crate::tokens::TokenIssuer;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, TimeZone, Utc};

pub async fn post(
    req: HttpRequest,
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
    clock: web::Data<dyn Clock>,
    events: web::Data<Emitter>,
) -> Result<HttpResponse, OAuthError> {
    let token = authenticated.token()?;
    let client = &authenticated.client;
    let now = clock.now();
    // `token_type_hint` only orders lookups (§2.1) and an unknown one is ignored; the
    // prefix tells a refresh token anyway, so the hint is not consulted at all.
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        if let Some((_, family)) = storage.find_refresh_token(&SecretDigest::of(token)).await? {
            let revocation = events.revocation(Reason::RevokedByClient, now);
            if family.client_id == client.id && storage.revoke_family(&family.id, &revocation).await? {
                crate::audit!(info, "token_revoked", "success", token_kind = "refresh_token", family_id = %family.id,
                    client_id = %client.id, user_id = %family.user_id);
            }
        }
    } else if let Some((jti, owner, expires_at)) = access_token(token, &**storage, &issuer, now).await? {
        if owner == client.id.as_str() {
            storage.revoke_access_token(&jti, expires_at, &events.revocation(Reason::RevokedByClient, now)).await?;
            crate::audit!(info, "token_revoked", "success", token_kind = "access_token", jti = %jti,
                client_id = %client.id);
        }
    }
    let mut ok = HttpResponse::Ok();
    ok.insert_header((CACHE_CONTROL, "no-store"));
    // A first-party SPA's refresh cookie goes too: it ends the app's sign-in in this browser
    // even when the app revoked its access token (the cookie never reaches /revoke). Only
    // for the app itself: another site's form post must not sign the person out.
    if client.first_party_spa && from_the_app(&req, client) {
        ok.cookie(RefreshCookie::for_issuer(&issuer.issuer).cleared());
    }
    Ok(ok.finish())
}

/// The `jti`, client and expiry of one of our access tokens, of either format: a JWT with
/// our valid signature, or an opaque token we stored. Revoking either remembers its `jti`
/// until it expires, so both end the same way (and report the same Shared Signals event).
async fn access_token(
    token: &str,
    storage: &dyn Storage,
    issuer: &TokenIssuer,
    now: DateTime<Utc>,
) -> Result<Option<(String, String, DateTime<Utc>)>, OAuthError> {
    if is_opaque_access_token(token) {
        let record = storage.find_opaque_access_token(&SecretDigest::of(token), now).await?;
        return Ok(record.map(|r| (r.jti, r.client_id.as_str().to_owned(), r.expires_at)));
    }
    let Ok(claims) = issuer.verify_access_token(token) else { return Ok(None) };
    let expires_at = Utc.timestamp_opt(claims.exp, 0).single().unwrap_or(now);
    Ok(Some((claims.jti, claims.client_id, expires_at)))
}
