//! The browser side: login and consent pages, the SSO session, logout.

pub mod consent;
pub mod flow;
pub mod logout;
pub mod pages;
pub mod session;
pub mod sign_in;
pub mod signed_form;
pub mod throttle;

use crate::clock::Clock;
use crate::config::{Issuer, Settings};
use crate::domain::authorization::PendingAuthorization;
use crate::domain::client::Client;
use crate::keys::kek::KeyEncryptionKey;
use crate::oauth::form::FormParams;
use crate::password::PasswordChecks;
use crate::storage::Storage;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use flow::PendingHandle;
use signed_form::FormSigner;
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
    /// Signs the state the browser carries between pages.
    pub forms: FormSigner,
    pub password_checks: PasswordChecks,
}

impl LoginConfig {
    pub fn from_settings(settings: &Settings, clock: Arc<dyn Clock>, kek: &KeyEncryptionKey) -> Self {
        // Settings are bounded at load (config.rs), so these conversions cannot saturate.
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
            forms: FormSigner::new(kek),
            password_checks: PasswordChecks::new(settings.login.max_concurrent_password_checks),
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

/// A login form post after its checks: the signed request it carries is untouched and
/// unexpired, and its CSRF token matches both the cookie (double submit) and the digest
/// signed into the request.
pub struct LoginForm {
    pub pending: PendingAuthorization,
    pub handle: PendingHandle,
    pub client: Client,
}

pub async fn check_login_form(
    req: &HttpRequest,
    storage: &dyn Storage,
    config: &LoginConfig,
    form: &FormParams,
) -> Result<LoginForm, HttpResponse> {
    let (Some(value), Some(csrf_token)) = (form.get("pending"), form.get("csrf_token")) else {
        return Err(missing_token());
    };
    let Some(pending) = config.forms.open_login_request(value, config.clock.now()) else {
        return Err(expired());
    };
    if !is_csrf_cookie(req, config, csrf_token) || !pending.csrf_digest.matches(csrf_token) {
        return Err(forged());
    }
    let client = storage.find_client(&pending.client_id).await.map_err(|e| internal_error(e.into()))?;
    let Some(client) = client.filter(|c| !c.is_disabled()) else { return Err(expired()) };
    let handle = PendingHandle { id: value.to_owned(), csrf_token: csrf_token.to_owned() };
    Ok(LoginForm { pending, handle, client })
}

impl LoginForm {
    /// The same form again, for `username`, with `message` (wrong password, locked, busy).
    pub fn again(&self, config: &LoginConfig, username: &str, message: &str, status: StatusCode) -> HttpResponse {
        let redirect_uri = &self.pending.redirect_uri;
        flow::login_form(config, &self.client, &self.handle, redirect_uri, username, Some(message), status)
    }
}

/// Does the CSRF cookie hold `token`? Constant time.
pub fn is_csrf_cookie(req: &HttpRequest, config: &LoginConfig, token: &str) -> bool {
    req.cookie(session::csrf_cookie_name(config))
        .is_some_and(|c| bool::from(c.value().as_bytes().ct_eq(token.as_bytes())))
}

/// A form post whose body is not a form at all (or too large).
pub fn unreadable() -> HttpResponse {
    pages::error_page(StatusCode::BAD_REQUEST, "Invalid form", "The form could not be read.")
}

pub fn missing_token() -> HttpResponse {
    pages::error_page(StatusCode::BAD_REQUEST, "Invalid form", "The form is missing its security token.")
}

pub fn expired() -> HttpResponse {
    pages::error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request has expired",
        "Sign-in requests are valid for 15 minutes and only once.",
    )
}

pub fn forged() -> HttpResponse {
    pages::error_page(
        StatusCode::FORBIDDEN,
        "Invalid form",
        "The form's security token does not match. Go back to the application and start again.",
    )
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
