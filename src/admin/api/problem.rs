//! The one error of the admin API: an RFC 9457 problem (`application/problem+json`), with
//! RFC 6750 §3 challenges for token problems.

use crate::admin::error::ServiceError;
use crate::http::bearer::NoBearer;
use crate::storage::StorageError;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The scope an access token needs for the admin API.
pub const ADMIN_SCOPE: &str = "tessera:admin";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization` header (401 with a bare challenge, RFC 6750 §3.1).
    #[error("an access token is required")]
    MissingToken,
    /// Not a live client-credentials token of this issuer (401 `invalid_token`).
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// A valid token without `tessera:admin` (403 `insufficient_scope`).
    #[error("the access token lacks the scope tessera:admin")]
    InsufficientScope,
    /// A request the API refuses (400); `field` names the member at fault when one is.
    #[error("{detail}")]
    BadRequest { field: Option<&'static str>, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Shown as a bare 500; the cause goes to the log only.
    #[error("unexpected failure")]
    Unexpected(#[from] anyhow::Error),
}

/// RFC 9457 §3.1 problem details, with `field` (an extension member) naming the
/// request member at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status code says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

/// The media type of every error the API answers (RFC 9457 §3).
const PROBLEM_JSON: &str = "application/problem+json";

impl Problem {
    fn new(status: StatusCode, detail: String, field: Option<&'static str>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            field,
        }
    }

    /// A builder for this problem's response: its status, its media type, never cached.
    fn builder(&self) -> HttpResponseBuilder {
        let mut response =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        response.insert_header((CACHE_CONTROL, "no-store")).insert_header((CONTENT_TYPE, PROBLEM_JSON));
        response
    }

    fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Errors actix answers before any handler of the API runs come as problems too: a path
/// no route matches (404), a method the resource lacks (405, whose `Allow` header is
/// kept), a body over the bound (413). Actix answers them in plain text or with no body,
/// and a client of the API should parse one kind of error (RFC 9457 §3). The `ErrorHandlers`
/// middleware of the `/admin` scope calls this for every error response; the API's own
/// problems pass through unchanged.
pub(super) fn from_framework<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if response.headers().get(CONTENT_TYPE).is_some_and(|media| media == PROBLEM_JSON) {
        return Ok(ErrorHandlerResponse::Response(response.map_into_left_body()));
    }
    let status = response.status();
    let detail = match status {
        StatusCode::NOT_FOUND => "no resource of the admin API has this path".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => {
            "the resource does not take this method; the Allow header lists those it takes".to_owned()
        }
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is larger than {} bytes", super::BODY_LIMIT),
        other => other.canonical_reason().unwrap_or("the request failed").to_lowercase(),
    };
    let problem = Problem::new(status, detail, None);
    let mut builder = problem.builder();
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH && name != CACHE_CONTROL {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    let (request, _) = response.into_parts();
    let replaced = ServiceResponse::new(request, builder.body(problem.body()));
    Ok(ErrorHandlerResponse::Response(replaced.map_into_right_body()))
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest { field: None, detail: detail.into() }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid { field, message } => {
                Self::BadRequest { field: Some(field), detail: format!("{field}: {message}") }
            }
            error @ ServiceError::NotFound { .. } => Self::NotFound(error.to_string()),
            ServiceError::Conflict(detail) => Self::Conflict(detail),
            ServiceError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<NoBearer> for ApiError {
    fn from(error: NoBearer) -> Self {
        match error {
            NoBearer::Missing => Self::MissingToken,
            NoBearer::Malformed(detail) => Self::bad_request(detail),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "admin API request failed");
        }
        let detail = match self {
            Self::Unexpected(_) => "the server could not complete the request".to_owned(),
            other => other.to_string(),
        };
        let field = match self {
            Self::BadRequest { field, .. } => *field,
            _ => None,
        };
        let problem = Problem::new(self.status_code(), detail, field);
        let mut response = problem.builder();
        match self {
            Self::MissingToken => {
                response.insert_header((WWW_AUTHENTICATE, r#"Bearer realm="tessera-admin""#));
            }
            Self::InvalidToken(detail) => {
                response.insert_header((
                    WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="tessera-admin", error="invalid_token", error_description="{detail}""#),
                ));
            }
            Self::InsufficientScope => {
                response.insert_header((
                    WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="tessera-admin", error="insufficient_scope", scope="{ADMIN_SCOPE}""#),
                ));
            }
            _ => {}
        }
        response.body(problem.body())
    }
}
