//! POST /login: checks the password (argon2id, off the async workers, bounded in number),
//! throttles guessing, starts a fresh SSO session, then continues the authorization.

use super::flow::{self, SignedIn};
use super::throttle;
use super::{check_login_form, internal_error, session, unreadable, LoginConfig, LoginForm};
use crate::domain::authorization::ThrottleSubject;
use crate::domain::user::{User, Username};
use crate::oauth::error::OAuthError;
use crate::oauth::form::FormParams;
use crate::password;
use crate::storage::Storage;
use actix_web::http::header::RETRY_AFTER;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Same words whether the user is unknown, disabled, or the password wrong.
const LOGIN_FAILED: &str = "The username or password is incorrect.";
const LOCKED: &str = "Too many failed attempts. Try again in a few minutes.";
const BUSY: &str = "Too many sign-ins at this moment. Try again in a few seconds.";

pub async fn post(
    req: HttpRequest,
    form: Result<FormParams, OAuthError>,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
) -> HttpResponse {
    let storage = &**storage;
    let Ok(form) = form else { return unreadable() };
    let login = match check_login_form(&req, storage, &config, &form).await {
        Ok(login) => login,
        Err(page) => return page,
    };
    let username_raw = form.get("username").unwrap_or_default();
    let password_raw = form.get("password").unwrap_or_default().to_owned();
    let again = |message: &str, status: StatusCode| login.again(&config, username_raw, message, status);
    let now = config.clock.now();
    let username = Username::parse(username_raw).ok();
    // The IP first: an IP at its limit then creates no row for yet another username, so a
    // stranger cannot fill the table with one row per made-up account.
    let mut subjects = vec![throttle::ip_subject(throttle::client_ip(&req, config.trust_forwarded_headers))];
    if let Some(username) = &username {
        subjects.push(ThrottleSubject::account(username.as_str()));
    }
    let reservation = match throttle::reserve(storage, &config, subjects, now).await {
        Ok(Some(reservation)) => reservation,
        Ok(None) => return again(LOCKED, StatusCode::TOO_MANY_REQUESTS),
        Err(error) => return internal_error(error.into()),
    };
    // Bounded: beyond the bound, answer at once rather than queue. Taken after the
    // reservation, so requests the throttle refuses never hold a place.
    let Some(permit) = config.password_checks.try_start() else {
        if let Err(error) = throttle::release(storage, reservation).await {
            return internal_error(error.into());
        }
        let mut busy = again(BUSY, StatusCode::TOO_MANY_REQUESTS);
        busy.headers_mut().insert(RETRY_AFTER, actix_web::http::header::HeaderValue::from_static("1"));
        return busy;
    };
    let checked = check_password(storage, permit, username.as_ref(), password_raw).await;
    let settled = match &checked {
        Ok(Some(_)) => throttle::settle_success(storage, reservation).await,
        Ok(None) => throttle::settle_failure(storage, &config, reservation, now).await,
        Err(_) => throttle::release(storage, reservation).await,
    };
    let user = match (checked, settled) {
        (Ok(user), Ok(())) => user,
        (Err(error), _) => return internal_error(error),
        (_, Err(error)) => return internal_error(error.into()),
    };
    let Some(user) = user else {
        tracing::info!(event = "login_failed", client_id = %login.client.id, "failed login");
        return again(LOGIN_FAILED, StatusCode::UNAUTHORIZED);
    };
    start_session(&req, storage, &config, &login, &user).await.unwrap_or_else(internal_error)
}

/// The user if `candidate` is their password and they are enabled. Unknown and disabled
/// users are checked against a dummy hash, so timing does not tell them apart.
async fn check_password(
    storage: &dyn Storage,
    permit: password::CheckPermit,
    username: Option<&Username>,
    candidate: String,
) -> anyhow::Result<Option<User>> {
    let user = match username {
        Some(username) => storage.find_user_by_username(username).await?,
        None => None,
    };
    let active = user.filter(|u| u.disabled_at.is_none());
    let is_valid = password::verify(permit, active.as_ref().map(|u| u.password_hash.clone()), candidate).await?;
    Ok(active.filter(|_| is_valid))
}

async fn start_session(
    req: &HttpRequest,
    storage: &dyn Storage,
    config: &LoginConfig,
    login: &LoginForm,
    user: &User,
) -> anyhow::Result<HttpResponse> {
    // Whatever session the cookie names is replaced: no need to load or touch it first.
    let previous = session::cookie_digest(req, config);
    let now = config.clock.now();
    let Some((session, cookie)) = session::start(storage, config, user, previous.as_ref(), now).await? else {
        // The password changed (or the user was disabled) while it was being checked.
        return Ok(login.again(config, user.username.as_str(), LOGIN_FAILED, StatusCode::UNAUTHORIZED));
    };
    tracing::info!(event = "login", user_id = %user.id, client_id = %login.client.id, "user logged in");
    let who = SignedIn { session: &session, user, has_interacted: true };
    flow::after_login(storage, config, &login.client, &login.pending, who, vec![cookie]).await
}
