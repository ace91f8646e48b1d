//! The error of the Shared Signals endpoints. SSF §8 defines status codes only; bodies
//! use the RFC 6749 §5.2 shape (`error`, `error_description`) every OAuth client parses,
//! and token problems are RFC 6750 §3 challenges (the CAEP interoperability profile
//! §2.7.3).

use crate::http::bearer::NoBearer;
use crate::storage::StorageError;
use actix_web::http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::borrow::Cow;

type Text = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum SsfError {
    /// No bearer token (401, a bare challenge).
    #[error("missing bearer token")]
    MissingToken,
    /// The token is not a live access token of a client of this issuer (401).
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// The token lacks `scope` (403, RFC 6750 §3.1).
    #[error("insufficient_scope: {0}")]
    InsufficientScope(&'static str),
    /// Unparsable or invalid (400).
    #[error("invalid_request: {0}")]
    InvalidRequest(Text),
    /// No such stream for this receiver (404): another receiver's stream is not found
    /// either, so stream ids reveal nothing.
    #[error("not_found")]
    NotFound,
    /// The receiver has as many streams as it may (409, SSF §8.1.1.1).
    #[error("conflict: {0}")]
    Conflict(Text),
    /// Verification asked for sooner than `min_verification_interval` (429).
    #[error("too many requests")]
    TooSoon { retry_after_seconds: i64 },
    #[error("server_error")]
    Unexpected(#[from] anyhow::Error),
}

impl SsfError {
    pub fn invalid(description: impl Into<Text>) -> Self {
        Self::InvalidRequest(description.into())
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => "invalid_token",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::InvalidRequest(_) => "invalid_request",
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TooSoon { .. } => "too_many_requests",
            Self::Unexpected(_) => "server_error",
        }
    }

    fn description(&self) -> Cow<'_, str> {
        match self {
            Self::MissingToken => "an access token is required".into(),
            Self::InvalidToken(d) | Self::InsufficientScope(d) => Cow::Borrowed(d),
            Self::InvalidRequest(d) | Self::Conflict(d) => Cow::Borrowed(d),
            Self::NotFound => "no such stream".into(),
            Self::TooSoon { .. } => "verification was requested too recently".into(),
            Self::Unexpected(_) => "the server could not complete the request".into(),
        }
    }
}

impl From<StorageError> for SsfError {
    fn from(error: StorageError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<NoBearer> for SsfError {
    fn from(error: NoBearer) -> Self {
        match error {
            NoBearer::Missing => Self::MissingToken,
            NoBearer::Malformed(description) => Self::invalid(description),
        }
    }
}

impl ResponseError for SsfError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "Shared Signals request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store"));
        match self {
            Self::MissingToken => {
                response.insert_header((WWW_AUTHENTICATE, r#"Bearer realm="tessera""#));
            }
            Self::InvalidToken(d) => {
                response.insert_header((
                    WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="tessera", error="invalid_token", error_description="{d}""#),
                ));
            }
            Self::InsufficientScope(scope) => {
                response.insert_header((
                    WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="tessera", error="insufficient_scope", scope="{scope}""#),
                ));
            }
            Self::TooSoon { retry_after_seconds } => {
                response.insert_header((RETRY_AFTER, (*retry_after_seconds).max(1).to_string()));
            }
            _ => {}
        }
        response.json(json!({ "error": self.code(), "error_description": self.description() }))
    }
}
