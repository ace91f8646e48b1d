//! Token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches per grant.
//! Every response carries `Cache-Control: no-store` (§5.1).

mod authorization_code;
mod client_credentials;
mod refresh_token;
mod request;

use super::client_auth::AuthenticatedClient;
use super::error::OAuthError;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::signals::Emitter;
use crate::storage::Storage;
use crate::tokens::refresh::RefreshPolicy;
use crate::tokens::TokenIssuer;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{web, HttpResponse};
use request::TokenRequest;
use serde::Serialize;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// OpenID Connect Core §3.1.3.3, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 6749 §5.1 / §6: a new refresh token on every use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// What the grants need besides the client.
pub struct GrantContext<'a> {
    pub storage: &'a dyn Storage,
    pub issuer: &'a TokenIssuer,
    pub refresh: &'a RefreshPolicy,
    pub clock: &'a dyn Clock,
    /// What a replayed code or a reused refresh token records (Shared Signals).
    pub events: &'a Emitter,
    pub metrics: &'a Metrics,
}

pub async fn post(
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
    refresh: web::Data<RefreshPolicy>,
    clock: web::Data<dyn Clock>,
    events: web::Data<Emitter>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, OAuthError> {
    let AuthenticatedClient { client, form } = authenticated;
    let request = TokenRequest::parse(&form)?;
    let grant = request.grant_type();
    let ctx = GrantContext {
        storage: &**storage,
        issuer: &issuer,
        refresh: &refresh,
        clock: &**clock,
        events: &events,
        metrics: &metrics,
    };
    let response = match request {
        TokenRequest::AuthorizationCode { code, redirect_uri, verifier } => {
            authorization_code::exchange(&client, &code, &redirect_uri, &verifier, &ctx).await?
        }
        TokenRequest::RefreshToken { token, scope } => refresh_token::rotate(&client, &token, scope, &ctx).await?,
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials::issue(&client, scope, &resources, &issuer)?
        }
    };
    let issued = metrics.tokens_issued.with_label_values(&[grant.as_str(), "access_token"]);
    issued.inc();
    if response.id_token.is_some() {
        metrics.tokens_issued.with_label_values(&[grant.as_str(), "id_token"]).inc();
    }
    if response.refresh_token.is_some() {
        metrics.tokens_issued.with_label_values(&[grant.as_str(), "refresh_token"]).inc();
    }
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache")).json(response))
}

/// Any method but POST (RFC 6749 §3.2: "The client MUST use the HTTP POST method").
pub async fn method_not_allowed() -> Result<HttpResponse, OAuthError> {
    Err(OAuthError::MethodNotAllowed)
}
