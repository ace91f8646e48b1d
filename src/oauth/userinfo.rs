//! UserInfo endpoint (OpenID Connect Core §5.3), GET and POST, with a Bearer access token
//! (RFC 6750 §2.1) or a DPoP-bound one with its proof (RFC 9449 §7). Claims by scope per
//! §5.4. Errors per RFC 6750 §3, and RFC 9449 §7.1 for DPoP.

use super::cors::answered_client;
use super::dpop::userinfo_proof;
use super::error::BearerError;
use crate::domain::client::ClientId;
use crate::domain::user::UserId;
use crate::http::bearer::{access_token, Scheme};
use crate::storage::client_cache::ClientCache;
use crate::storage::Storage;
use crate::tokens::dpop::DpopPolicy;
use crate::tokens::live::{bound_jkt, live_access_token};
use crate::tokens::TokenIssuer;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

pub async fn get(
    req: HttpRequest,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
    dpop: web::Data<DpopPolicy>,
    clients: web::Data<ClientCache>,
) -> Result<HttpResponse, BearerError> {
    let (scheme, token) = access_token(&req)?;
    let claims = live_access_token(token, &**storage, &issuer).await?;
    let claims = match (scheme, claims) {
        (Scheme::Bearer, None) => {
            return Err(BearerError::InvalidToken("the access token is invalid, expired or revoked"))
        }
        (Scheme::Dpop, None) => {
            return Err(BearerError::DpopInvalidToken("the access token is invalid, expired or revoked"))
        }
        (scheme, Some(claims)) => {
            // CORS: the token's client is the one whose web origins may read the answer
            // (also a DPoP or scope error, so the app can react to it).
            if let Ok(id) = ClientId::parse(&claims.client_id) {
                if let Some(found) = clients.get(&id).await? {
                    answered_client(&req, found.client);
                }
            }
            match (scheme, bound_jkt(&claims)) {
                // RFC 9449 §7.1: a bound token used as a bearer token is refused, or stealing it
                // would be enough after all.
                (Scheme::Bearer, Some(_)) => {
                    return Err(BearerError::DpopInvalidToken("the access token is DPoP-bound: use the DPoP scheme"))
                }
                (Scheme::Bearer, None) => claims,
                (Scheme::Dpop, None) => {
                    return Err(BearerError::DpopInvalidToken(
                        "the access token is not DPoP-bound: use the Bearer scheme",
                    ))
                }
                (Scheme::Dpop, Some(jkt)) => {
                    userinfo_proof(&req, token, jkt, &dpop, &**storage).await?;
                    claims
                }
            }
        }
    };
    if !claims.scope.contains("openid") {
        return Err(BearerError::InsufficientScope("openid"));
    }
    // A live token's `sub` is a user id or, for client credentials, the client's id.
    let user = match UserId::parse(&claims.sub) {
        Ok(user_id) => storage.find_user_by_id(&user_id).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        return Err(BearerError::InvalidToken("the access token is not a user's"));
    };
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.id.as_str()));
    if claims.scope.contains("profile") {
        body.insert("preferred_username".into(), json!(user.username.as_str()));
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if claims.scope.contains("email") {
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            body.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(Value::Object(body)))
}
