//! The browser side: login and consent pages, the SSO session, logout.

pub mod consent;
pub mod flow;
pub mod logout;
pub mod pages;
pub mod session;
pub mod sign_in;
pub mod throttle;

use crate::clock::Clock;
use crate::config::{Issuer, Settings};
use crate::domain::authorization::PendingAuthorization;
use crate::domain::client::Client;
use crate::domain::secret::SecretDigest;
use crate::oauth::error::OAuthError;
use crate::oauth::form::FormParams;
use crate::storage::Storage;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Settings of the browser flows, derived once from `Settings`.
pub struct LoginConfig {
    pub issuer: Issuer,
    pub is_https: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub code_ttl: Duration,
    pub max_failures: u32,
    pub failure_window: Duration,
    pub lockout: Duration,
    pub max_lockout: Duration,
    pub clock: Arc<dyn Clock>,
    pub trust_forwarded_headers: bool,
}

impl LoginConfig {
    pub fn from_settings(settings: &Settings, clock: Arc<dyn Clock>) -> Self {
        let duration = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
        Self {
            issuer: settings.issuer.clone(),
            is_https: settings.issuer.is_https(),
            session_idle: duration(settings.sessions.idle_timeout.0),
            session_absolute: duration(settings.sessions.absolute_timeout.0),
            code_ttl: duration(settings.tokens.authorization_code_ttl.0),
            max_failures: settings.login.max_failures.max(1),
            failure_window: duration(settings.login.failure_window.0),
            lockout: duration(settings.login.lockout.0),
            max_lockout: duration(settings.login.max_lockout.0),
            clock,
            trust_forwarded_headers: settings.http.trust_forwarded_headers,
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(sign_in::post))
        .route("/consent", web::post().to(consent::post))
        .route("/logout", web::get().to(logout::get))
        .route("/logout", web::post().to(logout::post))
        .route("/static/tessera.css", web::get().to(pages::stylesheet));
}

/// A form post's pending request, after the CSRF check: the token in the form must match
/// both the cookie (double submit) and the digest stored with the request.
pub struct CheckedForm {
    pub digest: SecretDigest,
    pub pending: PendingAuthorization,
    pub client: Client,
}

pub async fn check_form(
    req: &HttpRequest,
    storage: &dyn Storage,
    config: &LoginConfig,
    form: Result<FormParams, OAuthError>,
) -> Result<(FormParams, CheckedForm), HttpResponse> {
    let Ok(form) = form else {
        return Err(pages::error_page(StatusCode::BAD_REQUEST, "Invalid form", "The form could not be read."));
    };
    let checked = check_pending(req, storage, config, form.get("pending"), form.get("csrf_token")).await?;
    Ok((form, checked))
}

async fn check_pending(
    req: &HttpRequest,
    storage: &dyn Storage,
    config: &LoginConfig,
    pending_id: Option<&str>,
    csrf_token: Option<&str>,
) -> Result<CheckedForm, HttpResponse> {
    let expired = || {
        pages::error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired",
            "Sign-in requests are valid for 15 minutes and only once.",
        )
    };
    let (Some(pending_id), Some(csrf_token)) = (pending_id, csrf_token) else {
        return Err(pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form is missing its security token.",
        ));
    };
    let cookie_matches = req
        .cookie(session::csrf_cookie_name(config))
        .is_some_and(|c| bool::from(c.value().as_bytes().ct_eq(csrf_token.as_bytes())));
    let digest = SecretDigest::of(pending_id);
    let internal = |e: crate::storage::StorageError| {
        tracing::error!(error = ?e, "loading a pending authorization failed");
        pages::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Tessera could not complete the request.",
        )
    };
    let Some(pending) = storage.find_pending(&digest, config.clock.now()).await.map_err(internal)? else {
        return Err(expired());
    };
    if !cookie_matches || !pending.csrf_digest.matches(csrf_token) {
        return Err(pages::error_page(
            StatusCode::FORBIDDEN,
            "Invalid form",
            "The form's security token does not match. Go back to the application and start again.",
        ));
    }
    let client = storage.find_client(&pending.client_id).await.map_err(internal)?.filter(|c| !c.is_disabled());
    let Some(client) = client else { return Err(expired()) };
    Ok(CheckedForm { digest, pending, client })
}

/// The page for an unexpected failure, with the cause in the log only.
pub fn internal_error(error: anyhow::Error) -> HttpResponse {
    tracing::error!(error = ?error, "browser request failed");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Tessera could not complete the request.",
    )
}
