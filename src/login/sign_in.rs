//! POST /login: checks the password (argon2id, off the async workers, bounded in number),
//! throttles guessing, starts a fresh SSO session, then continues the authorization (or
//! goes back to the device verification page that asked for the sign-in).

use super::throttle::{self, Attempted, Settle};
use super::{device, CheckedForm, LoginSettings};
use crate::authorization::decision::{self, SignedIn, ValidRequest};
use crate::authorization::pages::PageError;
use crate::authorization::pending::{login_form, without_csrf_cookie, PendingHandle};
use crate::authorization::{session, Context};
use crate::domain::authorization::{PendingAuthorization, ThrottleSubject};
use crate::domain::client::Client;
use crate::domain::secret::SecretDigest;
use crate::domain::user::{User, Username};
use crate::http::client_ip::{self, client_ip};
use crate::metrics::Metrics;
use crate::password::{self, PasswordChecks};
use crate::storage::Storage;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// Same words whether the user is unknown, disabled, or the password wrong.
const LOGIN_FAILED: &str = "The username or password is incorrect.";
const LOCKED: &str = "Too many failed attempts. Try again in a few minutes.";
const BUSY: &str = "Too many sign-ins at this moment. Try again in a few seconds.";

/// What a sign-in continues to: an authorization request, or the device verification
/// page (RFC 8628 §3.3) that sent the person here to sign in first.
enum Continuation {
    /// The authorization request the form carries, opened: untouched and unexpired,
    /// issued with this form's CSRF token, for a client that is still enabled.
    Authorization { pending: Box<PendingAuthorization>, client: Box<Client> },
    /// Back to `/device`, with the user code it was opened with, if any.
    Device { user_code: Option<String> },
}

/// A login form's request, opened, and the handle it was posted with.
struct LoginRequest {
    continuation: Continuation,
    handle: PendingHandle,
}

impl LoginRequest {
    async fn open(ctx: &Context, form: &CheckedForm) -> Result<Self, PageError> {
        let handle = PendingHandle { id: form.pending.clone(), csrf_token: form.csrf_token.clone() };
        if let Some(device) = ctx.forms.open_device_login(&form.pending, ctx.now()) {
            if !SecretDigest::from_stored(device.csrf_digest).matches(&form.csrf_token) {
                return Err(PageError::Forged);
            }
            return Ok(Self { continuation: Continuation::Device { user_code: device.user_code }, handle });
        }
        let pending = ctx.forms.open_login_request(&form.pending, ctx.now()).ok_or(PageError::Expired)?;
        if !pending.csrf_digest.matches(&form.csrf_token) {
            return Err(PageError::Forged);
        }
        let client = ctx.storage().find_client(&pending.client_id).await?;
        let client = client.filter(|c| !c.is_disabled()).ok_or(PageError::Expired)?;
        Ok(Self {
            continuation: Continuation::Authorization { pending: Box::new(pending), client: Box::new(client) },
            handle,
        })
    }

    /// For the audit events: the client signed in to, `-` for the device page.
    fn client_id(&self) -> &str {
        match &self.continuation {
            Continuation::Authorization { client, .. } => client.id.as_str(),
            Continuation::Device { .. } => "-",
        }
    }

    /// The same form again, for `username`, with `message` (wrong password, locked, busy).
    fn again(&self, ctx: &Context, username: &str, message: &str, status: StatusCode) -> HttpResponse {
        match &self.continuation {
            Continuation::Authorization { pending, client } => {
                login_form(ctx, client, &self.handle, &pending.redirect_uri, username, Some(message), status)
            }
            Continuation::Device { .. } => {
                device::device_login_form(ctx, &self.handle, username, Some(message), status)
            }
        }
    }
}

pub async fn post(
    req: HttpRequest,
    form: CheckedForm,
    ctx: Context,
    login: web::Data<LoginSettings>,
    checks: web::Data<PasswordChecks>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, PageError> {
    let outcome = |outcome: &str| metrics.logins.with_label_values(&[outcome]).inc();
    let request = LoginRequest::open(&ctx, &form).await?;
    let username_raw = form.params.get("username").unwrap_or_default();
    let password_raw = form.params.get("password").unwrap_or_default().to_owned();
    let again = |message: &str, status: StatusCode| request.again(&ctx, username_raw, message, status);
    let now = ctx.now();
    let username = Username::parse(username_raw).ok();
    // The IP first: an IP at its limit then creates no row for yet another username, so a
    // stranger cannot fill the table with one row per made-up account.
    let ip = client_ip(&req, login.trust_forwarded_headers);
    let mut subjects = vec![throttle::ip_subject(ip)];
    let ip = client_ip::shown(ip);
    if let Some(username) = &username {
        subjects.push(ThrottleSubject::account(username.as_str()));
    }
    let username_known = username.is_some();
    let (client_id, shown_ip, task_metrics) = (request.client_id().to_owned(), ip.clone(), metrics.clone());
    let attempted =
        throttle::attempt(ctx.storage.clone(), login.get_ref().clone(), subjects, now, move |storage| async move {
            // Bounded: beyond the bound, answer at once rather than queue. Taken after the
            // reservation, so requests the throttle refuses never hold a place.
            let Some(permit) = checks.try_start() else {
                return (Settle::Release, None);
            };
            let checked = check_password(storage.get_ref(), permit, username.as_ref(), password_raw).await;
            let checked =
                checked.map(|user| user.map(|user| Verified::new(user, &client_id, &shown_ip, &task_metrics)));
            let settle = match &checked {
                Ok(Some(_)) => Settle::Success,
                Ok(None) => {
                    // Recorded here, not by the handler: a guess whose client hung up counts
                    // as a failure, so it leaves its trace as one.
                    crate::audit!(info, "login", "failure", client_id = %client_id, client_ip = %shown_ip,
                        username_known);
                    task_metrics.logins.with_label_values(&["failure"]).inc();
                    Settle::Failure
                }
                Err(_) => Settle::Release,
            };
            (settle, Some(checked))
        })
        .await?;
    let checked = match attempted {
        Attempted::Checked(Some(checked)) => checked,
        Attempted::Locked => {
            outcome("locked");
            crate::audit!(info, "login", "locked", client_id = %request.client_id(), client_ip = %ip);
            return Ok(again(LOCKED, StatusCode::TOO_MANY_REQUESTS));
        }
        // Too many attempts in flight, or too many password checks: nothing was checked.
        Attempted::Busy | Attempted::Checked(None) => {
            outcome("busy");
            let bound = if matches!(attempted, Attempted::Busy) { "attempts" } else { "password_checks" };
            crate::audit!(info, "login", "busy", client_id = %request.client_id(), client_ip = %ip, bound);
            let mut busy = again(BUSY, StatusCode::TOO_MANY_REQUESTS);
            busy.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(busy);
        }
    };
    let Some(mut verified) = checked? else {
        return Ok(again(LOGIN_FAILED, StatusCode::UNAUTHORIZED)); // recorded by the check
    };
    start_session(&req, &ctx, &request, &mut verified, &metrics, &ip).await
}

/// A user whose password was just verified, and the login not yet recorded. Made in the
/// attempt's task, so that it records `login abandoned` when dropped so, whichever way the
/// login goes no further: its client hung up before the answer (the answer is dropped
/// with the attempt's channel) or while the session was being started, the throttle could
/// not be settled, or the session could not be started. An attacker hanging up after
/// each guess would otherwise learn from the throttle's counts which one was right
/// without a trace (the right one clears the account's failures).
struct Verified {
    user: User,
    /// What the record needs; `None` once the login is recorded otherwise.
    unrecorded: Option<(String, String, web::Data<Metrics>)>,
}

impl Verified {
    fn new(user: User, client_id: &str, ip: &str, metrics: &web::Data<Metrics>) -> Self {
        Self { user, unrecorded: Some((client_id.to_owned(), ip.to_owned(), metrics.clone())) }
    }

    fn recorded(&mut self) {
        self.unrecorded = None;
    }
}

impl Drop for Verified {
    fn drop(&mut self) {
        if let Some((client_id, ip, metrics)) = self.unrecorded.take() {
            let user_id = &self.user.id;
            crate::audit!(warn, "login", "abandoned", client_id = %client_id, client_ip = %ip, user_id = %user_id);
            metrics.logins.with_label_values(&["abandoned"]).inc();
        }
    }
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
    ctx: &Context,
    request: &LoginRequest,
    verified: &mut Verified,
    metrics: &Metrics,
    ip: &str,
) -> Result<HttpResponse, PageError> {
    // Whatever session the cookie names is replaced: no need to load or touch it first.
    let previous = session::cookie_digest(req, &ctx.settings);
    // An error here leaves `verified` unrecorded: it is recorded as abandoned.
    let started = session::start(ctx, &verified.user, previous.as_ref(), ctx.now()).await?;
    verified.recorded(); // as what follows says
    let user = &verified.user;
    let Some((session, cookie)) = started else {
        // The password changed (or the user was disabled) while it was being checked.
        metrics.logins.with_label_values(&["failure"]).inc();
        return Ok(request.again(ctx, user.username.as_str(), LOGIN_FAILED, StatusCode::UNAUTHORIZED));
    };
    crate::audit!(info, "login", "success", user_id = %user.id, client_id = %request.client_id(), client_ip = %ip);
    metrics.logins.with_label_values(&["success"]).inc();
    let answer = match &request.continuation {
        Continuation::Authorization { pending, client } => {
            let who = SignedIn { session: &session, user, has_interacted: true };
            let valid = ValidRequest { client, pending };
            decision::obtain(ctx, &valid, who).await?
        }
        Continuation::Device { user_code } => device::after_sign_in(ctx, user_code.as_deref()),
    };
    let mut response = without_csrf_cookie(ctx, answer);
    let _ = response.add_cookie(&cookie);
    Ok(response)
}
