//! The device verification page (RFC 8628 §3.3): `GET /device` asks a signed-in person
//! for the code their device shows (prefilled from `verification_uri_complete`), `POST
//! /device` looks it up, `POST /device/decision` records the person's answer.
//!
//! - Signed in first: without an SSO session the page is the sign-in form, which comes
//!   back here afterwards (`/login` opens its signed `DeviceLogin` state).
//! - Guessing is throttled (§5.1): every wrong code counts against the account (across
//!   all its sessions), the session and the client IP, with the login throttle's reservations and lockouts; past
//!   `device.max_user_code_failures` even the right code is refused until the lock ends.
//! - A prefilled code is never acted on by itself (§5.4, remote phishing): the person
//!   submits it, then sees the client, the scopes and the code, and allows or denies.
//! - The forms carry CSRF tokens bound to the session (and, for the decision, to the
//!   code) by the form signer's HMAC, double-submitted in the CSRF cookie as everywhere.

use super::throttle::{self, Attempted, Settle};
use super::{CheckedForm, LoginSettings};
use crate::authorization::device::DevicePolicy;
use crate::authorization::pages::{
    self, DeviceConfirmPage, DeviceDonePage, DevicePage, LoginPage, PageError, ScopeDescription,
};
use crate::authorization::pending::{with_csrf_cookie, without_csrf_cookie, PendingHandle};
use crate::authorization::signed_form::{DeviceLoginState, Purpose};
use crate::authorization::{session, Context};
use crate::domain::authorization::{Session, SessionId, ThrottleSubject};
use crate::domain::device::{DeviceApproval, DeviceRequest, UserCode};
use crate::domain::secret::GeneratedSecret;
use crate::domain::user::UserId;
use crate::http::client_ip::client_ip;
use crate::http::form::FormParams;
use crate::metrics::Metrics;
use actix_web::http::header::{HeaderValue, LOCATION, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

const WRONG_CODE: &str = "That code is not valid or has expired. Check the code on your device and try again.";
const LOCKED: &str = "Too many wrong codes. Try again in a few minutes.";
const BUSY: &str = "Too many codes are being checked at this moment. Try again in a few seconds.";

/// How long the sign-in form shown by this page stays usable.
const LOGIN_FORM_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// What the sign-in form calls the place it continues to.
const DEVICE_SIGN_IN: &str = "Connect a device";

pub async fn get(req: HttpRequest, ctx: Context) -> Result<HttpResponse, PageError> {
    let params = FormParams::parse_query(req.query_string())?;
    // Only a well-formed code is carried along; it is looked up when the person submits it.
    let prefilled = params.get("user_code").and_then(UserCode::parse);
    let Some((_, session)) = session::current(&req, &ctx).await? else {
        let handle = device_login_handle(&ctx, prefilled.as_ref());
        return Ok(device_login_form(&ctx, &handle, "", None, StatusCode::OK));
    };
    let username = username_of(&ctx, &session).await?;
    let shown = prefilled.map(|code| code.display()).unwrap_or_default();
    Ok(entry_page(&ctx, &session, &username, &shown, None, StatusCode::OK))
}

pub async fn post(
    req: HttpRequest,
    form: CheckedForm,
    ctx: Context,
    policy: web::Data<DevicePolicy>,
    login: web::Data<LoginSettings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, PageError> {
    let session = signed_in(&req, &ctx).await?;
    if !ctx.forms.is_valid_tag(Purpose::DeviceEntry, session.sid.as_str().as_bytes(), &form.csrf_token) {
        return Err(PageError::Forged);
    }
    let storage = ctx.storage();
    let username = username_of(&ctx, &session).await?;
    let typed = form.params.get("user_code").unwrap_or_default();
    // Echoed back only when well-formed: never reflect an arbitrary string into the field.
    let echoed = UserCode::parse(typed).map(|code| code.display()).unwrap_or_default();
    let now = ctx.now();
    let settings = throttle_settings(&policy, &login);
    let ip = match throttle::ip_subject(client_ip(&req, login.trust_forwarded_headers)) {
        ThrottleSubject::ClientIp(key) => ThrottleSubject::DeviceIp(key),
        other => other,
    };
    // The account's budget holds across its sessions (a new sign-in is no new budget);
    // the IP's, `IP_FACTOR` times larger, bounds one client across accounts without
    // locking out the people behind the same address at the first stranger's guesses.
    let subjects = vec![
        ThrottleSubject::DeviceAccount(session.user_id.as_str().to_owned()),
        ThrottleSubject::DeviceSession(session.sid.as_str().to_owned()),
        ip,
    ];
    let code = UserCode::parse(typed);
    let digest = code.as_ref().map(|code| policy.user_code_digest(code));
    let (user_id, sid, task_metrics) = (session.user_id.clone(), session.sid.clone(), metrics.clone());
    let attempted = throttle::attempt(ctx.storage.clone(), settings, subjects, now, move |storage| async move {
        let found = match &digest {
            Some(digest) => storage.find_device_request(digest, now).await,
            None => Ok(None),
        };
        let found = found.map(|found| found.map(|request| FoundCode::new(request, &user_id, &sid)));
        // A right code releases its place and clears nothing: an attacker who asks for
        // codes of its own (a public client's id is enough) cannot wash its failures away.
        let settle = match &found {
            Ok(Some(_)) | Err(_) => Settle::Release,
            Ok(None) => {
                // Recorded here, not by the handler: a guess whose client hung up counts as
                // a failure, so it leaves its trace as one.
                task_metrics.device_user_code_failures.inc();
                crate::audit!(info, "device_user_code", "failure", user_id = %user_id, sid = %sid);
                Settle::Failure
            }
        };
        (settle, found)
    })
    .await?;
    let found = match attempted {
        Attempted::Checked(found) => found,
        Attempted::Locked => {
            crate::audit!(warn, "device_user_code", "locked", user_id = %session.user_id, sid = %session.sid);
            return Ok(entry_page(&ctx, &session, &username, &echoed, Some(LOCKED), StatusCode::TOO_MANY_REQUESTS));
        }
        Attempted::Busy => {
            crate::audit!(info, "device_user_code", "busy", user_id = %session.user_id, sid = %session.sid);
            let mut busy = entry_page(&ctx, &session, &username, &echoed, Some(BUSY), StatusCode::TOO_MANY_REQUESTS);
            busy.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(busy);
        }
    };
    let found = found?;
    let (Some(code), Some(mut found)) = (code, found) else {
        // Recorded by the check.
        return Ok(entry_page(&ctx, &session, &username, &echoed, Some(WRONG_CODE), StatusCode::BAD_REQUEST));
    };
    found.recorded(); // the answer is the confirmation page, shown to the one who typed it
    let request = found.request.clone();
    let client = storage.find_client(&request.client_id).await?.filter(|c| !c.is_disabled());
    let Some(client) = client else {
        return Ok(entry_page(&ctx, &session, &username, &echoed, Some(WRONG_CODE), StatusCode::BAD_REQUEST));
    };
    let handle = PendingHandle {
        id: code.as_str().to_owned(),
        csrf_token: ctx.forms.tag(Purpose::DeviceApproval, &approval_key(&session, &code)),
    };
    let shown = code.display();
    let page = DeviceConfirmPage {
        base: &ctx.settings.base_path,
        client_name: &client.name,
        username: &username,
        user_code: &shown,
        pending: &handle.id,
        csrf_token: &handle.csrf_token,
        scopes: request.scope.iter().map(ScopeDescription::of).collect(),
    };
    Ok(with_csrf_cookie(&ctx, &handle, pages::render(StatusCode::OK, &page, None)))
}

pub async fn decide(
    req: HttpRequest,
    form: CheckedForm,
    ctx: Context,
    policy: web::Data<DevicePolicy>,
) -> Result<HttpResponse, PageError> {
    let session = signed_in(&req, &ctx).await?;
    // The token was issued for this session and this code, after the code was found.
    let code = UserCode::parse(&form.pending).ok_or(PageError::Forged)?;
    if !ctx.forms.is_valid_tag(Purpose::DeviceApproval, &approval_key(&session, &code), &form.csrf_token) {
        return Err(PageError::Forged);
    }
    let is_allowed = form.params.get("decision") == Some("allow");
    let approval = is_allowed.then(|| DeviceApproval {
        user_id: session.user_id.clone(),
        sid: session.sid.clone(),
        auth_time: session.auth_time,
    });
    let decided =
        ctx.storage().decide_device_request(&policy.user_code_digest(&code), approval.as_ref(), ctx.now()).await?;
    let Some(client_id) = decided else {
        return Err(PageError::bad_request(
            "This code can no longer be used",
            "It has expired or was already answered. Start again on your device.",
        ));
    };
    let page = if is_allowed {
        crate::audit!(info, "device_authorization", "approved", user_id = %session.user_id, client_id = %client_id,
            sid = %session.sid);
        DeviceDonePage {
            base: &ctx.settings.base_path,
            title: "Device connected",
            message: "You can return to your device; it will continue.",
        }
    } else {
        crate::audit!(info, "device_authorization", "denied", user_id = %session.user_id, client_id = %client_id,
            sid = %session.sid);
        DeviceDonePage {
            base: &ctx.settings.base_path,
            title: "Request denied",
            message: "The device was not given access. You can close this window.",
        }
    };
    Ok(without_csrf_cookie(&ctx, pages::render(StatusCode::OK, &page, None)))
}

/// The sign-in form's handle for a sign-in that continues here, with the prefilled code.
pub fn device_login_handle(ctx: &Context, user_code: Option<&UserCode>) -> PendingHandle {
    let csrf = GeneratedSecret::generate("");
    let state = DeviceLoginState {
        csrf_digest: csrf.digest().as_str().to_owned(),
        user_code: user_code.map(|code| code.as_str().to_owned()),
        expires_at: (ctx.now() + LOGIN_FORM_LIFETIME).timestamp(),
    };
    PendingHandle { id: ctx.forms.seal_device_login(&state), csrf_token: csrf.expose().to_owned() }
}

/// The sign-in form (login.html, posted to `/login`) of a sign-in that continues here.
pub fn device_login_form(
    ctx: &Context,
    handle: &PendingHandle,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let page = LoginPage {
        base: &ctx.settings.base_path,
        client_name: DEVICE_SIGN_IN,
        pending: &handle.id,
        csrf_token: &handle.csrf_token,
        username,
        error,
    };
    with_csrf_cookie(ctx, handle, pages::render(status, &page, None))
}

/// Where a sign-in started here continues: back to this page, with the code it carried.
pub fn after_sign_in(ctx: &Context, user_code: Option<&str>) -> HttpResponse {
    let page = ctx.settings.issuer.endpoint("/device");
    let location = match user_code.and_then(UserCode::parse) {
        // Canonical codes are letters only: nothing to escape.
        Some(code) => format!("{page}?user_code={}", code.as_str()),
        None => page,
    };
    HttpResponse::SeeOther().insert_header((LOCATION, location)).finish()
}

fn entry_page(
    ctx: &Context,
    session: &Session,
    username: &str,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let handle = PendingHandle {
        id: "entry".to_owned(),
        csrf_token: ctx.forms.tag(Purpose::DeviceEntry, session.sid.as_str().as_bytes()),
    };
    let page = DevicePage { base: &ctx.settings.base_path, username, csrf_token: &handle.csrf_token, user_code, error };
    with_csrf_cookie(ctx, &handle, pages::render(status, &page, None))
}

async fn signed_in(req: &HttpRequest, ctx: &Context) -> Result<Session, PageError> {
    match session::current(req, ctx).await? {
        Some((_, session)) => Ok(session),
        None => Err(PageError::bad_request(
            "You are not signed in",
            "Your session ended before you answered. Open the link on your device again.",
        )),
    }
}

async fn username_of(ctx: &Context, session: &Session) -> Result<String, PageError> {
    let user = ctx.storage().find_user_by_id(&session.user_id).await?;
    Ok(user.map(|u| u.username.as_str().to_owned()).unwrap_or_default())
}

/// What the decision form's token is bound to: the session and the code.
fn approval_key(session: &Session, code: &UserCode) -> Vec<u8> {
    [session.sid.as_str().as_bytes(), b"\0", code.as_str().as_bytes()].concat()
}

/// A right user code, found in the attempt's task: dropped before the handler takes it
/// (its client hung up, or the throttle could not be settled), it records
/// `device_user_code abandoned`, so a right guess leaves a trace as a wrong one does (see
/// `throttle::attempt`).
struct FoundCode {
    request: DeviceRequest,
    /// The user and session that typed it; `None` once the handler has it.
    unrecorded: Option<(UserId, SessionId)>,
}

impl FoundCode {
    fn new(request: DeviceRequest, user_id: &UserId, sid: &SessionId) -> Self {
        Self { request, unrecorded: Some((user_id.clone(), sid.clone())) }
    }

    fn recorded(&mut self) {
        self.unrecorded = None;
    }
}

impl Drop for FoundCode {
    fn drop(&mut self) {
        if let Some((user_id, sid)) = self.unrecorded.take() {
            crate::audit!(warn, "device_user_code", "abandoned", user_id = %user_id, sid = %sid);
        }
    }
}

/// The login throttle, counting wrong user codes instead of wrong passwords.
fn throttle_settings(policy: &DevicePolicy, login: &LoginSettings) -> LoginSettings {
    LoginSettings {
        max_failures: policy.max_user_code_failures.max(1),
        failure_window: login.failure_window,
        lockout: login.lockout,
        max_lockout: login.max_lockout,
        trust_forwarded_headers: login.trust_forwarded_headers,
        attempts_in_flight: login.attempts_in_flight.clone(),
    }
}
