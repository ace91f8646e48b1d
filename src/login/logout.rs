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

use super::flow::origin_of;
use super::pages::{self, LoggedOutPage, LogoutConfirmPage};
use super::signed_form::Purpose;
use super::{session, LoginConfig};
use crate::domain::client::ClientId;
use crate::domain::secret::SecretDigest;
use crate::oauth::form::FormParams;
use crate::storage::Storage;
use crate::tokens::TokenIssuer;
use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use url::Url;

pub async fn get(
    req: HttpRequest,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
    issuer: web::Data<TokenIssuer>,
) -> HttpResponse {
    match FormParams::parse_query(req.query_string()) {
        Ok(params) => logout(&req, &params, false, &**storage, &config, &issuer).await,
        Err(error) => pages::error_page(StatusCode::BAD_REQUEST, "Invalid logout request", error.description()),
    }
}

pub async fn post(
    req: HttpRequest,
    form: Result<FormParams, crate::oauth::error::OAuthError>,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
    issuer: web::Data<TokenIssuer>,
) -> HttpResponse {
    match form {
        Ok(params) => {
            let is_confirmed = params.get("confirm") == Some("yes");
            logout(&req, &params, is_confirmed, &**storage, &config, &issuer).await
        }
        Err(error) => pages::error_page(StatusCode::BAD_REQUEST, "Invalid logout request", error.description()),
    }
}

/// Ends the SSO session: its unused codes go, and the refresh-token families created in
/// it are revoked.
async fn end_session(
    storage: &dyn Storage,
    config: &LoginConfig,
    digest: &SecretDigest,
) -> Result<Option<String>, crate::storage::StorageError> {
    let Some(session) = storage.delete_session(digest).await? else { return Ok(None) };
    storage.delete_unused_codes_of_session(&session.sid).await?;
    storage.revoke_families_of_session(&session.sid, config.clock.now(), "logout").await?;
    Ok(Some(session.sid))
}

/// The confirmation form's CSRF token for the session whose id has `digest` (without a
/// session, a fixed input: there is nothing to end, and so nothing to protect).
fn confirmation_token(config: &LoginConfig, digest: Option<&SecretDigest>) -> String {
    config.forms.tag(Purpose::LogoutConfirmation, session_key(digest))
}

fn session_key(digest: Option<&SecretDigest>) -> &[u8] {
    digest.map_or(b"no session", |d| d.as_str().as_bytes())
}

async fn logout(
    req: &HttpRequest,
    params: &FormParams,
    is_confirmed: bool,
    storage: &dyn Storage,
    config: &LoginConfig,
    issuer: &TokenIssuer,
) -> HttpResponse {
    let bad = |message: &str| pages::error_page(StatusCode::BAD_REQUEST, "Invalid logout request", message);
    let hint = match params.get("id_token_hint") {
        Some(hint) => match issuer.verify_id_token_hint(hint) {
            Ok(claims) => Some(claims),
            Err(_) => return bad("The id_token_hint was not issued by Tessera."),
        },
        None => None,
    };
    let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), params.get("client_id")) {
        (Some(hinted), Some(given)) if hinted != given => return bad("client_id does not match the id_token_hint."),
        (Some(hinted), _) => Some(hinted.to_owned()),
        (None, given) => given.map(str::to_owned),
    };
    // §3: redirect only to a URI registered for the client; never to anything else.
    let mut target = None;
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        let Some(client_id) = client_id.as_deref() else {
            return bad("post_logout_redirect_uri needs an id_token_hint or client_id.");
        };
        let client = match ClientId::parse(client_id) {
            Ok(id) => storage.find_client(&id).await,
            Err(_) => Ok(None),
        };
        match client {
            Ok(Some(client)) if client.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                target = Some(uri.to_owned())
            }
            Ok(_) => return bad("The post_logout_redirect_uri is not registered for this application."),
            Err(error) => return super::internal_error(error.into()),
        }
    }
    let current = match session::current(req, storage, config).await {
        Ok(current) => current,
        Err(error) => return super::internal_error(error.into()),
    };
    let session_digest = current.as_ref().map(|(digest, _)| digest);
    let is_hint_of_this_session = match (&hint, &current) {
        (Some(h), Some((_, session))) => {
            h.sub == session.user_id && h.sid.as_deref().is_none_or(|sid| sid == session.sid)
        }
        // No session: nothing of anyone's ends, so any valid hint may skip the question.
        (Some(_), None) => true,
        (None, _) => false,
    };
    let token = confirmation_token(config, session_digest);
    let has_confirmed = is_confirmed
        && params.get("csrf_token").is_some_and(|given| {
            config.forms.is_valid_tag(Purpose::LogoutConfirmation, session_key(session_digest), given)
        });
    if !is_hint_of_this_session && !has_confirmed {
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
        return pages::render(StatusCode::OK, &LogoutConfirmPage { fields }, form_target.as_deref());
    }
    if let Some(digest) = session_digest {
        match end_session(storage, config, digest).await {
            Ok(Some(sid)) => tracing::info!(event = "logout", sid = %sid, "session ended"),
            Ok(None) => {}
            Err(error) => return super::internal_error(error.into()),
        }
    }
    let mut response = match target.as_deref().and_then(|uri| Url::parse(uri).ok()) {
        Some(mut url) => {
            if let Some(state) = params.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            HttpResponse::SeeOther()
                .insert_header((LOCATION, url.as_str()))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        None => pages::render(StatusCode::OK, &LoggedOutPage, target.as_deref().and_then(origin_of).as_deref()),
    };
    let _ = response.add_removal_cookie(&session::removal(config, session::session_cookie_name(config)));
    response
}
