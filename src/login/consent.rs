//! POST /consent: the user allows or denies the client's requested scopes. Allowing is
//! remembered per user and client; a later request for more scopes asks again.

use super::flow::{self, ClientRedirect};
use super::{check_form, internal_error, pages, session, LoginConfig};
use crate::oauth::form::FormParams;
use crate::storage::Storage;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

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
    let result = async {
        let Some((_, session)) = session::current(&req, storage, &config).await? else {
            return Ok(pages::error_page(
                StatusCode::BAD_REQUEST,
                "You are not signed in",
                "Your session ended before you answered. Start again from the application.",
            ));
        };
        let pending = &checked.pending;
        storage.delete_pending(&checked.digest).await?;
        let redirect = ClientRedirect {
            redirect_uri: &pending.redirect_uri,
            state: pending.state.as_deref(),
            issuer: config.issuer.as_str(),
        };
        match form.get("decision") {
            Some("allow") => {
                let mut granted = storage.find_consent(&session.user_id, &checked.client.id).await?.unwrap_or_default();
                granted = granted.union(&pending.scope);
                storage.save_consent(&session.user_id, &checked.client.id, &granted, config.clock.now()).await?;
                let code = flow::issue_code(storage, &config, pending, &session).await?;
                Ok(redirect.code(&code))
            }
            _ => Ok(redirect.error("access_denied", "the user denied the request")),
        }
    }
    .await;
    result.unwrap_or_else(internal_error)
}
