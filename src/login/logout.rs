//! RP-Initiated Logout 1.0 (`end_session_endpoint`, §2–§3): ends the SSO session, then
//! redirects to a registered `post_logout_redirect_uri` (exact match) or shows a page.
//!
//! The user is asked first (§2: the OP "MUST ask the End-User" whether to log out) unless
//! the `id_token_hint` names the very session being ended: its `sub` is the session's
//! user and its `sid`, when present, the session's. Any other Tessera-signed ID token —
//! an attacker's own, in a link — only leads to the question. The question is a form that
//! posts back here with `confirm=yes` and a CSRF token bound to the session (an HMAC of
//! the session id's digest); that post also carries the session cookie only from
//! Tessera's own page (`SameSite=Lax`), so no other site can log a user out.

use crate::authorization::pages::{self, LoggedOutPage, LogoutConfirmPage, PageError};
use crate::authorization::pending::without_csrf_cookie;
use crate::authorization::redirect::origin_of;
use crate::authorization::signed_form::Purpose;
use crate::authorization::{session, Context};
use crate::domain::client::ClientId;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Reason;
use crate::http::form::{FormError, FormParams};
use crate::tokens::TokenIssuer;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use url::Url;

const INVALID: &str = "Invalid logout request";

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> PageError {
    PageError::bad_request(INVALID, message)
}

pub async fn get(req: HttpRequest, ctx: Context, issuer: web::Data<TokenIssuer>) -> Result<HttpResponse, PageError> {
    let params = FormParams::parse_query(req.query_string()).map_err(|e| invalid(e.to_string()))?;
    logout(&req, &params, false, &ctx, &issuer).await
}

pub async fn post(
    req: HttpRequest,
    form: Result<FormParams, FormError>,
    ctx: Context,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, PageError> {
    let params = form.map_err(|e| invalid(e.to_string()))?;
    let is_confirmed = params.get("confirm") == Some("yes");
    // Only the confirmation form's post is checked for its origin: RP-Initiated Logout
    // §2 lets a relying party's page post the request itself here, from its own origin.
    if is_confirmed {
        super::check_same_origin(&req, &ctx.settings.issuer)?;
    }
    logout(&req, &params, is_confirmed, &ctx, &issuer).await
}

/// The confirmation form's CSRF token for the session whose id has `digest` (without a
/// session, a fixed input: there is nothing to end, and so nothing to protect).
fn confirmation_token(ctx: &Context, digest: Option<&SecretDigest>) -> String {
    ctx.forms.tag(Purpose::LogoutConfirmation, session_key(digest))
}

fn session_key(digest: Option<&SecretDigest>) -> &[u8] {
    digest.map_or(b"no session", |d| d.as_str().as_bytes())
}

async fn logout(
    req: &HttpRequest,
    params: &FormParams,
    is_confirmed: bool,
    ctx: &Context,
    issuer: &TokenIssuer,
) -> Result<HttpResponse, PageError> {
    let storage = ctx.storage();
    let hint = match params.get("id_token_hint") {
        Some(hint) => Some(
            issuer.verify_id_token_hint(hint).map_err(|_| invalid("The id_token_hint was not issued by Tessera."))?,
        ),
        None => None,
    };
    // Tessera's ID tokens have one audience, the client (OpenID Connect Core §2).
    let hinted_client = hint.as_ref().and_then(|h| h.aud.first()).map(String::as_str);
    let client_id = match (hinted_client, params.get("client_id")) {
        (Some(hinted), Some(given)) if hinted != given => {
            return Err(invalid("client_id does not match the id_token_hint."))
        }
        (Some(hinted), _) => Some(hinted.to_owned()),
        (None, given) => given.map(str::to_owned),
    };
    // §3: redirect only to a URI registered for the client; never to anything else.
    let mut target = None;
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        let client_id = client_id
            .as_deref()
            .ok_or_else(|| invalid("post_logout_redirect_uri needs an id_token_hint or client_id."))?;
        let client = match ClientId::parse(client_id) {
            Ok(id) => storage.find_client(&id).await?,
            Err(_) => None,
        };
        if !client.is_some_and(|client| client.post_logout_redirect_uris.iter().any(|r| r == uri)) {
            return Err(invalid("The post_logout_redirect_uri is not registered for this application."));
        }
        target = Some(uri.to_owned());
    }
    let current = session::current(req, ctx).await?;
    let session_digest = current.as_ref().map(|(digest, _)| digest);
    let is_hint_of_this_session = match (&hint, &current) {
        (Some(h), Some((_, session))) => {
            h.sub == session.user_id.as_str() && h.sid.as_deref().is_none_or(|sid| sid == session.sid.as_str())
        }
        // No session: nothing of anyone's ends, so any valid hint may skip the question.
        (Some(_), None) => true,
        (None, _) => false,
    };
    let has_confirmed = is_confirmed
        && params.get("csrf_token").is_some_and(|given| {
            ctx.forms.is_valid_tag(Purpose::LogoutConfirmation, session_key(session_digest), given)
        });
    if !is_hint_of_this_session && !has_confirmed {
        let token = confirmation_token(ctx, session_digest);
        let mut fields: Vec<(&str, &str)> = Vec::new();
        if let Some(client_id) = client_id.as_deref() {
            fields.push(("client_id", client_id));
        }
        for name in ["post_logout_redirect_uri", "state"] {
            if let Some(value) = params.get(name) {
                fields.push((name, value));
            }
        }
        fields.push(("csrf_token", &token));
        // The confirmed post answers with a 303 to the registered post-logout URI, which
        // CSP `form-action` must allow, or Chromium blocks it.
        let form_target = target.as_deref().and_then(origin_of);
        return Ok(pages::render(
            StatusCode::OK,
            &LogoutConfirmPage { base: &ctx.settings.base_path, fields },
            form_target.as_deref(),
        ));
    }
    if let Some(digest) = session_digest {
        let revocation = ctx.events.revocation(Reason::Logout, ctx.now());
        if let Some(session) = storage.end_session(digest, &revocation).await? {
            crate::audit!(info, "logout", "success", sid = %session.sid, user_id = %session.user_id);
        }
    }
    let mut response = match target.as_deref().and_then(|uri| Url::parse(uri).ok()) {
        Some(mut url) => {
            if let Some(state) = params.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            HttpResponse::SeeOther()
                .insert_header((LOCATION, url.as_str()))
                .insert_header((CACHE_CONTROL, "no-store"))
                .finish()
        }
        None => pages::render(
            StatusCode::OK,
            &LoggedOutPage { base: &ctx.settings.base_path },
            target.as_deref().and_then(origin_of).as_deref(),
        ),
    };
    let settings = &ctx.settings;
    let _ = response.add_removal_cookie(&session::removal(settings, session::session_cookie_name(settings)));
    Ok(without_csrf_cookie(ctx, response))
}
