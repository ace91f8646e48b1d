//! Token endpoint (RFC 6749 §3.2): authenticates the client, then dispatches per grant.
//! Every response carries `Cache-Control: no-store` (§5.1).

mod authorization_code;
mod client_credentials;
mod request;

use super::client_auth::{self, PresentedCredentials};
use super::error::OAuthError;
use super::form::FormParams;
use crate::storage::Storage;
use crate::tokens::TokenIssuer;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{web, HttpRequest, HttpResponse};
use request::TokenRequest;
use serde::Serialize;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// OpenID Connect Core §3.1.3.3, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

pub async fn post(
    req: HttpRequest,
    form: FormParams,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, OAuthError> {
    let presented = PresentedCredentials::from_request(&req, &form)?;
    let request = TokenRequest::parse(&form)?;
    let client = client_auth::authenticate(&**storage, presented).await?;
    let response = match request {
        TokenRequest::AuthorizationCode { code, redirect_uri, verifier } => {
            authorization_code::exchange(&client, &code, &redirect_uri, &verifier, &**storage, &issuer).await?
        }
        TokenRequest::ClientCredentials { scope, resources } => {
            client_credentials::issue(&client, scope, &resources, &issuer)?
        }
    };
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache")).json(response))
}

/// Any method but POST (RFC 6749 §3.2: "The client MUST use the HTTP POST method").
pub async fn method_not_allowed() -> Result<HttpResponse, OAuthError> {
    Err(OAuthError::MethodNotAllowed)
}
