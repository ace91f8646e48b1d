//! POST /login: checks the password (argon2id, off the async workers), throttles
//! failures, starts a fresh SSO session, then continues the authorization.

use super::flow::{self, PendingHandle};
use super::{check_form, internal_error, session, throttle, LoginConfig};
use crate::domain::user::Username;
use crate::oauth::form::FormParams;
use crate::password;
use crate::storage::Storage;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Same words whether the user is unknown, disabled, or the password wrong.
const LOGIN_FAILED: &str = "The username or password is incorrect.";

pub async fn post(
    req: HttpRequest,
    form: Result<FormParams, crate::oauth::error::OAuthError>,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
) -> HttpResponse {
    let storage = &**storage;
    let (form, checked) = match check_form(&req, storage, &config, form).await {
        Ok(checked) => checked,
        Err(page) => return page,
    };
    let handle = PendingHandle {
        id: form.get("pending").unwrap_or_default().to_owned(),
        csrf_token: form.get("csrf_token").unwrap_or_default().to_owned(),
    };
    let username_raw = form.get("username").unwrap_or_default();
    let password_raw = form.get("password").unwrap_or_default().to_owned();
    let result = async {
        let now = config.clock.now();
        let account = throttle::account_subject(username_raw);
        let ip = throttle::ip_subject(&throttle::client_ip(&req, config.trust_forwarded_headers));
        let locked = match throttle::locked_until(storage, &account, now).await? {
            Some(until) => Some(until),
            None => throttle::locked_until(storage, &ip, now).await?,
        };
        if let Some(until) = locked {
            let seconds = (until - now).num_seconds().max(1);
            let message = format!("Too many failed attempts. Try again in {seconds} seconds.");
            return Ok(flow::login_form(
                &config,
                &checked.client,
                &handle,
                &checked.pending.redirect_uri,
                username_raw,
                Some(&message),
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        let user = match Username::parse(username_raw) {
            Ok(username) => storage.find_user_by_username(&username).await?,
            Err(_) => None,
        };
        let active = user.filter(|u| u.disabled_at.is_none());
        // Verify even for unknown users (against a dummy hash) so timing does not tell.
        let is_valid = password::verify(active.as_ref().map(|u| u.password_hash.clone()), password_raw).await?;
        let Some(user) = active.filter(|_| is_valid) else {
            throttle::record_failure(storage, &config, &account, false, now).await?;
            throttle::record_failure(storage, &config, &ip, true, now).await?;
            tracing::info!(event = "login_failed", client_id = %checked.client.id, "failed login");
            return Ok(flow::login_form(
                &config,
                &checked.client,
                &handle,
                &checked.pending.redirect_uri,
                username_raw,
                Some(LOGIN_FAILED),
                StatusCode::UNAUTHORIZED,
            ));
        };
        storage.clear_throttle(&account).await?;
        // Whatever session the cookie names is replaced: no need to load or touch it first.
        let previous = session::cookie_digest(&req, &config);
        let (session, cookie) = session::start(storage, &config, &user.id, previous.as_ref(), now).await?;
        tracing::info!(event = "login", user_id = %user.id, client_id = %checked.client.id, "user logged in");
        flow::after_login(
            storage,
            &config,
            &checked.client,
            &checked.pending,
            Some((&checked.digest, &handle)),
            &session,
            &user,
            vec![cookie],
        )
        .await
    }
    .await;
    result.unwrap_or_else(internal_error)
}
