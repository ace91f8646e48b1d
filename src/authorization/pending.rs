//! The authorization request while the person signs in and consents, and the forms that
//! carry it from page to page with a CSRF token (double submit: the form's field must
//! match the cookie, and the request's signed or stored digest of it).
//!
//! Login stage: nothing is stored; the request travels signed in the form (`signed_form`),
//! so an unauthenticated `/authorize` costs no row. Consent stage: the person is signed
//! in, and the request is stored, one per session and client, under a random id.

use super::pages::{self, LoginPage};
use super::redirect::origin_of;
use super::{session, Context};
use crate::domain::authorization::{PendingAuthorization, SessionId};
use crate::domain::client::Client;
use crate::domain::secret::GeneratedSecret;
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

/// What a form carries to identify its request — the signed request itself (login
/// stage) or the random id of a stored one (consent stage) — and its CSRF token.
pub struct PendingHandle {
    pub id: String,
    pub csrf_token: String,
}

/// The login form's handle for `pending`: nothing is stored (see `signed_form`).
pub fn login_request_handle(ctx: &Context, mut pending: PendingAuthorization) -> PendingHandle {
    let csrf = GeneratedSecret::generate("");
    pending.csrf_digest = csrf.digest();
    PendingHandle { id: ctx.forms.seal_login_request(&pending), csrf_token: csrf.expose().to_owned() }
}

/// Stores `pending` at the consent stage of session `sid` under a fresh id and CSRF token.
pub async fn save_consent_request(
    ctx: &Context,
    mut pending: PendingAuthorization,
    sid: &SessionId,
) -> Result<PendingHandle, StorageError> {
    let id = GeneratedSecret::generate("");
    let csrf = GeneratedSecret::generate("");
    pending.csrf_digest = csrf.digest();
    ctx.storage().insert_pending(&id.digest(), sid, &pending).await?;
    Ok(PendingHandle { id: id.expose().to_owned(), csrf_token: csrf.expose().to_owned() })
}

/// The login form for `pending`, setting the CSRF cookie that must accompany the post.
/// `username` prefills the field; `error` says why the form is shown again.
pub fn login_form(
    ctx: &Context,
    client: &Client,
    handle: &PendingHandle,
    redirect_uri: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let page = LoginPage {
        base: &ctx.settings.base_path,
        client_name: &client.name,
        pending: &handle.id,
        csrf_token: &handle.csrf_token,
        username,
        error,
    };
    // The login post may answer with a 303 to the client (consent already given, or a
    // first-party client); CSP `form-action` governs that redirect too, so the client's
    // origin must be allowed beside 'self' or Chromium blocks the final hop.
    let form_target = origin_of(redirect_uri);
    let response = pages::render(status, &page, form_target.as_deref());
    with_csrf_cookie(ctx, handle, response)
}

/// Sets the CSRF cookie that must come back with the form's token (double submit).
pub fn with_csrf_cookie(ctx: &Context, handle: &PendingHandle, mut response: HttpResponse) -> HttpResponse {
    let settings = &ctx.settings;
    let cookie = session::cookie(settings, session::csrf_cookie_name(settings), handle.csrf_token.clone(), None);
    let _ = response.add_cookie(&cookie);
    response
}

/// Drops the CSRF cookie once the form it protected has done its work (a sign-in that
/// answered with a redirect, a logout), unless `response` sets a fresh one (the consent
/// page). A login form resubmitted from the browser's history, on a shared computer, then
/// no longer matches a cookie and signs nobody in.
pub fn without_csrf_cookie(ctx: &Context, mut response: HttpResponse) -> HttpResponse {
    let name = session::csrf_cookie_name(&ctx.settings);
    if response.cookies().all(|cookie| cookie.name() != name) {
        let _ = response.add_removal_cookie(&session::removal(&ctx.settings, name));
    }
    response
}
