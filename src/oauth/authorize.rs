//! Authorization endpoint (RFC 6749 §3.1, §4.1.1; OpenID Connect Core §3.1.2), GET and POST.
//!
//! Validation follows §4.1.2.1: until `client_id` and `redirect_uri` are verified, errors
//! are an HTML page and never a redirect (an open redirector otherwise); after that,
//! errors go back to the client with `error`, `state` and `iss`.

use super::form::FormParams;
use crate::domain::authorization::{PendingAuthorization, Prompt};
use crate::domain::client::{Client, ClientId, GrantType};
use crate::domain::pkce::CodeChallenge;
use crate::domain::redirect_uri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::User;
use crate::login::flow::{self, ClientRedirect, SignedIn};
use crate::login::{pages, session, LoginConfig};
use crate::storage::Storage;
use crate::tokens::TokenIssuer;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

/// Longest `state`, `nonce` or `login_hint` accepted; longer values are not legitimate.
const MAX_VALUE_LEN: usize = 2048;

pub async fn get(
    req: HttpRequest,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
    issuer: web::Data<TokenIssuer>,
) -> HttpResponse {
    match FormParams::parse_query(req.query_string()) {
        Ok(params) => authorize(&req, params, &**storage, &config, &issuer).await,
        Err(error) => bad_request(error.description()),
    }
}

pub async fn post(
    req: HttpRequest,
    params: Result<FormParams, super::error::OAuthError>,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
    issuer: web::Data<TokenIssuer>,
) -> HttpResponse {
    match params {
        Ok(params) => authorize(&req, params, &**storage, &config, &issuer).await,
        Err(error) => bad_request(error.description()),
    }
}

fn bad_request(message: &str) -> HttpResponse {
    pages::error_page(StatusCode::BAD_REQUEST, "Invalid request", message)
}

async fn authorize(
    req: &HttpRequest,
    params: FormParams,
    storage: &dyn Storage,
    config: &LoginConfig,
    issuer: &TokenIssuer,
) -> HttpResponse {
    match try_authorize(req, &params, storage, config, issuer).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(error = ?error, "authorization request failed");
            pages::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Tessera could not complete the request.",
            )
        }
    }
}

async fn try_authorize(
    req: &HttpRequest,
    params: &FormParams,
    storage: &dyn Storage,
    config: &LoginConfig,
    issuer: &TokenIssuer,
) -> anyhow::Result<HttpResponse> {
    // §4.1.2.1 step one: the client and its redirect URI, or an error page.
    let Some(raw_client_id) = params.get("client_id") else {
        return Ok(bad_request("The request has no client_id."));
    };
    let client = match ClientId::parse(raw_client_id) {
        Ok(id) => storage.find_client(&id).await?,
        Err(_) => None,
    };
    let Some(client) = client.filter(|c| !c.is_disabled()) else {
        return Ok(bad_request("The application that sent you here is not registered with Tessera."));
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return Ok(bad_request("The request has no redirect_uri."));
    };
    if !redirect_uri::is_registered(redirect_uri, &client.redirect_uris) {
        return Ok(bad_request("The redirect URI is not registered for this application."));
    }
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_VALUE_LEN) {
        return Ok(bad_request("The state parameter is too long."));
    }
    let redirect = ClientRedirect { redirect_uri, state, issuer: config.issuer.as_str() };

    // Step two: everything else is reported to the client.
    let pending = match parse_request(params, &client, redirect_uri, config.clock.now()) {
        Ok(pending) => pending,
        Err((code, description)) => return Ok(redirect.error(code, &description)),
    };
    // OIDC Core §3.1.2.1: `id_token_hint` names the user the client expects; a session of
    // anyone else does not answer this request (with prompt=none: `login_required`).
    let hinted_user = match params.get("id_token_hint") {
        Some(hint) => match issuer.verify_id_token_hint(hint) {
            Ok(claims) => Some(claims.sub),
            Err(_) => return Ok(redirect.error("invalid_request", "id_token_hint is not an ID token of this issuer")),
        },
        None => None,
    };

    let now = config.clock.now();
    let current = session::current(req, storage, config).await?;
    let mut user = None;
    if let Some((_, session)) = &current {
        user = storage.find_user_by_id(&session.user_id).await?.filter(|u| u.disabled_at.is_none());
    }
    let is_fresh_enough = |auth_time: chrono::DateTime<Utc>| {
        pending.max_age.is_none_or(|max_age| (now - auth_time).num_seconds() <= max_age)
    };
    let is_hinted = |user: &User| hinted_user.as_deref().is_none_or(|sub| sub == user.id);
    match (&current, &user) {
        (Some((_, session)), Some(user))
            if !pending.prompt.login && is_fresh_enough(session.auth_time) && is_hinted(user) =>
        {
            let who = SignedIn { session, user, has_interacted: false };
            flow::after_login(storage, config, &client, &pending, who, vec![]).await
        }
        _ if pending.prompt.none => Ok(redirect.error("login_required", "the user is not logged in")),
        _ => {
            // Nothing is stored until the person signs in: the request travels signed in
            // the form, so an unauthenticated request costs no row.
            let hint = pending.login_hint.clone().unwrap_or_default();
            let redirect_uri = pending.redirect_uri.clone();
            let handle = flow::login_request_handle(config, pending);
            Ok(flow::login_form(config, &client, &handle, &redirect_uri, &hint, None, StatusCode::OK))
        }
    }
}

/// Parses the request parameters that are reported by redirect (OIDC Core §3.1.2.6).
pub fn parse_request(
    params: &FormParams,
    client: &Client,
    redirect_uri: &str,
    now: chrono::DateTime<Utc>,
) -> Result<PendingAuthorization, (&'static str, String)> {
    let invalid = |message: String| ("invalid_request", message);
    if params.get("request").is_some() {
        return Err(("request_not_supported", "request objects are not supported".into()));
    }
    if params.get("request_uri").is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported".into()));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => return Err(("unsupported_response_type", "only response_type=code is supported".into())),
        None => return Err(invalid("missing response_type".into())),
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(invalid("only response_mode=query is supported".into()));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(("unauthorized_client", "the client may not use the authorization code flow".into()));
    }
    let code_challenge = CodeChallenge::parse(params.get("code_challenge"), params.get("code_challenge_method"))
        .map_err(|e| invalid(e.to_string()))?;
    let scope = match params.get("scope") {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| ("invalid_scope", e.to_string()))?,
        None => client.scopes.clone(),
    };
    if !scope.is_subset_of(&client.scopes) {
        return Err(("invalid_scope", "the requested scope exceeds the scopes registered for the client".into()));
    }
    let prompt = Prompt::parse(params.get("prompt")).map_err(|e| invalid(e.to_string()))?;
    let max_age = params
        .get("max_age")
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| invalid("max_age must be a non-negative integer".into()))
        })
        .transpose()?;
    let bounded = |name: &'static str| -> Result<Option<String>, (&'static str, String)> {
        match params.get(name) {
            Some(value) if value.len() > MAX_VALUE_LEN => Err(invalid(format!("{name} is too long"))),
            other => Ok(other.map(str::to_owned)),
        }
    };
    Ok(PendingAuthorization {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: bounded("state")?,
        nonce: bounded("nonce")?,
        code_challenge,
        login_hint: bounded("login_hint")?,
        max_age,
        prompt,
        csrf_digest: SecretDigest::from_stored(String::new()),
        created_at: now,
        // Time enough to type a password, not to leave a form open overnight.
        expires_at: now + chrono::Duration::minutes(15),
    })
}
