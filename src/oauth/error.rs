//! Errors of the token-style endpoints (`/token`, later `/revoke`, `/introspect`):
//! RFC 6749 §5.2 JSON bodies with the right status.

use actix_web::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::borrow::Cow;

type Text = Cow<'static, str>;

/// RFC 6749 §5.2 error codes, plus RFC 8707 `invalid_target`. Descriptions are written
/// for client developers; internal causes only reach the log.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Missing, repeated, or malformed parameter; unsupported content type.
    #[error("invalid_request: {0}")]
    InvalidRequest(Text),
    /// The body exceeds the size limit (answered 413, code `invalid_request`).
    #[error("invalid_request: request body too large")]
    BodyTooLarge,
    /// Wrong HTTP method (answered 405, code `invalid_request`).
    #[error("invalid_request: method not allowed")]
    MethodNotAllowed,
    /// Client authentication failed (§5.2): unknown client, wrong secret, no credentials.
    #[error("invalid_client: {0}")]
    InvalidClient(Text),
    #[error("invalid_grant: {0}")]
    InvalidGrant(Text),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(Text),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(Text),
    #[error("invalid_scope: {0}")]
    InvalidScope(Text),
    /// RFC 8707 §2: a `resource` the client may not obtain tokens for.
    #[error("invalid_target: {0}")]
    InvalidTarget(Text),
    /// Shown to clients as `server_error`; the cause chain goes to the log only.
    #[error("server_error")]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::BodyTooLarge | Self::MethodNotAllowed => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::Unexpected(_) => "server_error",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d) => d,
            Self::BodyTooLarge => "the request body is larger than 16 KiB",
            Self::MethodNotAllowed => "this endpoint accepts POST only",
            Self::Unexpected(_) => "the server could not complete the request",
        }
    }

    pub fn invalid_request(description: impl Into<Text>) -> Self {
        Self::InvalidRequest(description.into())
    }

    pub fn invalid_client(description: impl Into<Text>) -> Self {
        Self::InvalidClient(description.into())
    }
}

impl From<crate::storage::StorageError> for OAuthError {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            // RFC 6749 §5.2 allows 401 for invalid_client and requires it (with
            // WWW-Authenticate) when the client used the Authorization header; HTTP
            // requires the header on every 401, so it is always sent.
            Self::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache"));
        match self {
            Self::InvalidClient(_) => {
                response.insert_header((WWW_AUTHENTICATE, r#"Basic realm="tessera", charset="UTF-8""#));
            }
            Self::MethodNotAllowed => {
                response.insert_header(("Allow", "POST"));
            }
            _ => {}
        }
        response.json(ErrorBody { error: self.code(), error_description: self.description() })
    }
}
