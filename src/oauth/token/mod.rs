//! Token endpoint (RFC 6749 §3.2): authenticates the client, checks its DPoP proof if it
//! sent one (RFC 9449 §5), then dispatches per grant. Every response carries
//! `Cache-Control: no-store` (§5.1).

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;
mod request;

use super::client_auth::AuthenticatedClient;
use super::dpop::token_request_proof;
use super::error::{OAuthError, DPOP_NONCE};
use super::refresh_cookie::{from_the_app, RefreshCookie, CSRF_HEADER};
use crate::clock::Clock;
use crate::domain::client::Client;
use crate::domain::client::GrantType;
use crate::http::form::FormParams;
use crate::metrics::Metrics;
use crate::signals::Emitter;
use crate::storage::Storage;
use crate::tokens::dpop::DpopPolicy;
use crate::tokens::refresh::RefreshPolicy;
use crate::tokens::TokenIssuer;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{web, HttpRequest, HttpResponse};
use request::TokenRequest;
use serde::Serialize;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (RFC 9449 §5).
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
    /// The thumbprint of the key of the request's DPoP proof (RFC 9449 §5): what the
    /// access token is bound to (`cnf.jkt`), and what a public client's refresh-token
    /// family is bound to or must match.
    pub dpop_jkt: Option<&'a str>,
}

/// `token_type` of a token response (RFC 6749 §5.1; RFC 9449 §5).
pub fn token_type(dpop_jkt: Option<&str>) -> &'static str {
    if dpop_jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn post(
    req: HttpRequest,
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
    refresh: web::Data<RefreshPolicy>,
    clock: web::Data<dyn Clock>,
    events: web::Data<Emitter>,
    dpop: web::Data<DpopPolicy>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, OAuthError> {
    let AuthenticatedClient { client, form } = authenticated;
    // A first-party SPA's answers set its refresh cookie, so every token request of such a
    // client must come from its app, not only the cookie refreshes: a form another site
    // posts (a top-level navigation, which may set SameSite=Strict cookies) could otherwise
    // plant the poster's own refresh token in the victim's cookie (login CSRF). Checked
    // before anything is used up: a refused code or refresh token stays as it was.
    if client.first_party_spa && !from_the_app(&req, &client) {
        return Err(OAuthError::invalid_request(format!(
            "a first-party SPA's token requests must come from one of its web origins with {CSRF_HEADER}: 1"
        )));
    }
    let cookies = RefreshCookie::for_issuer(&issuer.issuer);
    let request = match cookie_refresh(&req, &client, &form, &cookies)? {
        Some(request) => request,
        None => TokenRequest::parse(&form)?,
    };
    let grant = request.grant_type();
    // After the client authenticated and the request parsed: only then is the proof's
    // jti recorded (RFC 9449 §11.1). A public client authenticates with its id alone, so
    // a stranger can still add rows; they expire with the proof window and are purged.
    let proof = token_request_proof(&req, &client, &dpop, &**storage).await?;
    let ctx = GrantContext {
        storage: &**storage,
        issuer: &issuer,
        refresh: &refresh,
        clock: &**clock,
        events: &events,
        metrics: &metrics,
        dpop_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
    };
    let mut response = match request {
        TokenRequest::AuthorizationCode { code, redirect_uri, verifier } => {
            authorization_code::exchange(&client, &code, &redirect_uri, &verifier, &ctx).await?
        }
        TokenRequest::RefreshToken { token, scope } => refresh_token::rotate(&client, &token, scope, &ctx).await?,
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials::issue(&client, scope, &resources, &ctx).await?
        }
        TokenRequest::DeviceCode { device_code } => device_code::exchange(&client, &device_code, &ctx).await?,
    };
    // The device grant's URN is its name on the wire; the metric's label is the short one.
    let label = match grant {
        GrantType::DeviceCode => "device_code",
        other => other.as_str(),
    };
    metrics.tokens_issued.with_label_values(&[label, "access_token"]).inc();
    if response.id_token.is_some() {
        metrics.tokens_issued.with_label_values(&[label, "id_token"]).inc();
    }
    if response.refresh_token.is_some() {
        metrics.tokens_issued.with_label_values(&[label, "refresh_token"]).inc();
    }
    let mut ok = HttpResponse::Ok();
    ok.insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache"));
    // A first-party SPA's refresh token goes into its cookie, never into the body its
    // JavaScript reads.
    if client.first_party_spa {
        if let Some(token) = response.refresh_token.take() {
            ok.cookie(cookies.holding(token));
        }
    }
    // RFC 9449 §8.2: the proof's nonce was the previous period's; hand over the current one.
    if let Some(nonce) = proof.and_then(|p| p.next_nonce) {
        ok.insert_header((DPOP_NONCE, nonce));
    }
    Ok(ok.json(response))
}

/// A first-party SPA's refresh without `refresh_token`: the token from its cookie (the
/// caller has checked that the request comes from the app, `refresh_cookie::from_the_app`).
/// `None` for every other request.
fn cookie_refresh(
    req: &HttpRequest,
    client: &Client,
    form: &FormParams,
    cookies: &RefreshCookie,
) -> Result<Option<TokenRequest>, OAuthError> {
    if !client.first_party_spa || form.get("grant_type") != Some("refresh_token") || form.get("refresh_token").is_some()
    {
        return Ok(None);
    }
    let token =
        cookies.token(req).ok_or_else(|| OAuthError::InvalidGrant("no refresh_token, and no refresh cookie".into()))?;
    TokenRequest::refresh_from_cookie(form, token).map(Some)
}

/// Any method but POST (RFC 6749 §3.2: "The client MUST use the HTTP POST method").
pub async fn method_not_allowed() -> Result<HttpResponse, OAuthError> {
    Err(OAuthError::MethodNotAllowed)
}
