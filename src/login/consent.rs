//! POST /consent: the user allows or denies the client's requested scopes. Allowing is
//! remembered per user and client; a later request for more scopes asks again.
//!
//! Only a request that reached the consent stage in this browser's session is accepted,
//! and it is taken (deleted) in the statement that finds it: a login-stage request cannot
//! skip `prompt=login` or `max_age` by posting here (OIDC Core §3.1.2.1), another
//! session's request is not found, and a form submitted twice issues one code.

use super::flow::{self, ClientRedirect};
use super::{expired, forged, internal_error, is_csrf_cookie, missing_token, pages, session, unreadable, LoginConfig};
use crate::domain::secret::SecretDigest;
use crate::oauth::error::OAuthError;
use crate::oauth::form::FormParams;
use crate::storage::Storage;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn post(
    req: HttpRequest,
    form: Result<FormParams, OAuthError>,
    storage: web::Data<dyn Storage>,
    config: web::Data<LoginConfig>,
) -> HttpResponse {
    let storage = &**storage;
    let Ok(form) = form else { return unreadable() };
    let (Some(pending_id), Some(csrf_token)) = (form.get("pending"), form.get("csrf_token")) else {
        return missing_token();
    };
    if !is_csrf_cookie(&req, &config, csrf_token) {
        return forged();
    }
    let result = async {
        let Some((_, session)) = session::current(&req, storage, &config).await? else {
            return Ok(pages::error_page(
                StatusCode::BAD_REQUEST,
                "You are not signed in",
                "Your session ended before you answered. Start again from the application.",
            ));
        };
        let claimed = storage.claim_pending(&SecretDigest::of(pending_id), &session.sid, config.clock.now()).await?;
        let Some(pending) = claimed else { return Ok(expired()) };
        if !pending.csrf_digest.matches(csrf_token) {
            return Ok(forged());
        }
        let client = storage.find_client(&pending.client_id).await?.filter(|c| !c.is_disabled());
        let Some(client) = client else { return Ok(expired()) };
        let redirect = ClientRedirect {
            redirect_uri: &pending.redirect_uri,
            state: pending.state.as_deref(),
            issuer: config.issuer.as_str(),
        };
        match form.get("decision") {
            Some("allow") => {
                let mut granted = storage.find_consent(&session.user_id, &client.id).await?.unwrap_or_default();
                granted = granted.union(&pending.scope);
                storage.save_consent(&session.user_id, &client.id, &granted, config.clock.now()).await?;
                let code = flow::issue_code(storage, &config, &pending, &session).await?;
                Ok(redirect.code(&code))
            }
            _ => Ok(redirect.error("access_denied", "the user denied the request")),
        }
    }
    .await;
    result.unwrap_or_else(internal_error)
}
