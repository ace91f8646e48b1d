//! UserInfo endpoint (OpenID Connect Core §5.3), GET and POST, with a Bearer access token
//! (RFC 6750 §2.1). Claims by scope per §5.4. Errors per RFC 6750 §3.

use crate::storage::Storage;
use crate::tokens::TokenIssuer;
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

/// RFC 6750 §3.1 errors, answered with a `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials: a bare challenge, no error code (§3.1).
    #[error("missing bearer token")]
    Missing,
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    #[error("insufficient_scope")]
    InsufficientScope(&'static str),
    #[error("server_error")]
    Unexpected(#[from] anyhow::Error),
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let challenge = match self {
            Self::Missing => r#"Bearer realm="tessera""#.to_owned(),
            Self::InvalidRequest(d) => {
                format!(r#"Bearer realm="tessera", error="invalid_request", error_description="{d}""#)
            }
            Self::InvalidToken(d) => {
                format!(r#"Bearer realm="tessera", error="invalid_token", error_description="{d}""#)
            }
            Self::InsufficientScope(scope) => {
                format!(r#"Bearer realm="tessera", error="insufficient_scope", scope="{scope}""#)
            }
            Self::Unexpected(cause) => {
                tracing::error!(error = ?cause, "userinfo failed");
                return HttpResponse::InternalServerError()
                    .insert_header((CACHE_CONTROL, "no-store"))
                    .json(json!({"error": "server_error"}));
            }
        };
        HttpResponse::build(self.status_code())
            .insert_header((WWW_AUTHENTICATE, challenge))
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish()
    }
}

pub async fn get(
    req: HttpRequest,
    storage: web::Data<dyn Storage>,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, BearerError> {
    let token = bearer_token(&req)?;
    let claims = super::introspect::live_access_token(token, &**storage, &issuer)
        .await
        .map_err(anyhow::Error::new)?
        .ok_or(BearerError::InvalidToken("the access token is invalid, expired or revoked"))?;
    if !claims.has_scope("openid") {
        return Err(BearerError::InsufficientScope("openid"));
    }
    let user = storage.find_user_by_id(&claims.sub).await.map_err(anyhow::Error::new)?;
    let Some(user) = user else {
        return Err(BearerError::InvalidToken("the access token is not a user's"));
    };
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.id));
    if claims.has_scope("profile") {
        body.insert("preferred_username".into(), json!(user.username.as_str()));
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        body.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if claims.has_scope("email") {
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            body.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(Value::Object(body)))
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`.
fn bearer_token(req: &HttpRequest) -> Result<&str, BearerError> {
    let Some(header) = req.headers().get(AUTHORIZATION) else { return Err(BearerError::Missing) };
    let header = header.to_str().map_err(|_| BearerError::InvalidRequest("malformed Authorization header"))?;
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(BearerError::InvalidRequest("expected Authorization: Bearer <token>")),
    }
}
