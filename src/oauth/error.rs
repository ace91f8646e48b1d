//! The error of each protocol surface, typed by how it is delivered:
//! - [`OAuthError`]: `/token`, `/revoke`, `/introspect` — RFC 6749 §5.2 JSON bodies;
//! - [`AuthorizeError`]: `/authorize` — an HTML page until the client and redirect URI are
//!   verified, a redirect to the client after (RFC 6749 §4.1.2.1);
//! - [`BearerError`]: `/userinfo` — RFC 6750 §3 `WWW-Authenticate: Bearer` challenges, and
//!   RFC 9449 §7.1 `DPoP` ones for DPoP-bound tokens.

use crate::authorization::pages::PageError;
use crate::authorization::redirect::ClientRedirect;
use crate::http::bearer::NoBearer;
use crate::http::form::FormError;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;
use std::borrow::Cow;

type Text = Cow<'static, str>;

/// RFC 9449 §8.1: the header a server nonce travels in.
pub const DPOP_NONCE: &str = "DPoP-Nonce";

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
    /// An authorization request refused at the PAR endpoint with an RFC 6749 §4.1.2.1 (or
    /// OpenID Connect Core §3.1.2.6) code, as RFC 9126 §2.3 says: `unsupported_response_type`,
    /// `request_not_supported` …
    #[error("{code}: {description}")]
    AuthorizationRequest { code: &'static str, description: Text },
    /// The client or the server holds as many pushed requests as allowed (RFC 9126 §2.3:
    /// 429, code `invalid_request`).
    #[error("invalid_request: {0}")]
    TooManyRequests(Text),
    /// RFC 9449 §5: a missing (when required), repeated or invalid DPoP proof.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(Text),
    /// RFC 9449 §8: the proof must carry this server nonce, sent in `DPoP-Nonce`.
    #[error("use_dpop_nonce")]
    UseDpopNonce(String),
    /// RFC 8628 §3.5: the person has not decided yet; poll again after the interval.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polled too soon; the interval is now this many seconds.
    #[error("slow_down")]
    SlowDown { interval_seconds: i64 },
    /// RFC 8628 §3.5: the person denied the request.
    #[error("access_denied: {0}")]
    AccessDenied(Text),
    /// RFC 8628 §3.5: the device code expired; start again.
    #[error("expired_token")]
    ExpiredToken,
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
            Self::InvalidRequest(_) | Self::BodyTooLarge | Self::MethodNotAllowed | Self::TooManyRequests(_) => {
                "invalid_request"
            }
            Self::AuthorizationRequest { code, .. } => code,
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce(_) => "use_dpop_nonce",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown { .. } => "slow_down",
            Self::AccessDenied(_) => "access_denied",
            Self::ExpiredToken => "expired_token",
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
            | Self::InvalidTarget(d)
            | Self::TooManyRequests(d)
            | Self::AuthorizationRequest { description: d, .. }
            | Self::InvalidDpopProof(d)
            | Self::AccessDenied(d) => d,
            Self::AuthorizationPending => "the user has not yet approved or denied the request",
            Self::SlowDown { .. } => "polling too fast: the interval is now 5 seconds longer",
            Self::ExpiredToken => "the device_code has expired; start a new device authorization request",
            Self::UseDpopNonce(_) => "the authorization server requires a nonce in the DPoP proof",
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

/// A body or query the form parser refused: `invalid_request` (413 for one too large).
impl From<FormError> for OAuthError {
    fn from(error: FormError) -> Self {
        match error {
            FormError::BodyTooLarge => Self::BodyTooLarge,
            other => Self::InvalidRequest(other.to_string().into()),
        }
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
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
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
            Self::UseDpopNonce(nonce) => {
                response.insert_header((DPOP_NONCE, nonce.as_str()));
            }
            _ => {}
        }
        response.json(ErrorBody { error: self.code(), error_description: self.description() })
    }
}

/// The error of `/authorize` (RFC 6749 §4.1.2.1): until `client_id` and `redirect_uri` are
/// verified, an HTML page, and never a redirect (an open redirector otherwise); after
/// that, a redirect to the client with `error`, `error_description`, `state` and `iss`.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Shown to the person: the client or redirect URI could not be verified, or an
    /// unexpected failure.
    #[error(transparent)]
    Page(#[from] PageError),
    /// Sent back to the client, whose redirect URI is verified.
    #[error("{code}: {description}")]
    Redirect { to: ClientRedirect, code: &'static str, description: Text },
}

impl AuthorizeError {
    /// An error page for a request whose client or redirect URI is not verified (400).
    pub fn invalid(message: impl Into<Text>) -> Self {
        Self::Page(PageError::bad_request("Invalid request", message))
    }
}

impl From<crate::storage::StorageError> for AuthorizeError {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Page(error.into())
    }
}

impl From<FormError> for AuthorizeError {
    fn from(error: FormError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl ResponseError for AuthorizeError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page(page) => page.status_code(),
            Self::Redirect { .. } => StatusCode::SEE_OTHER,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Page(page) => page.error_response(),
            Self::Redirect { to, code, description } => to.error(code, description),
        }
    }
}

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
    /// RFC 9449 §7.1: the token does not fit the `DPoP` scheme (or a DPoP-bound token came
    /// as `Bearer`), answered with a `DPoP` challenge.
    #[error("invalid_token: {0}")]
    DpopInvalidToken(&'static str),
    /// RFC 9449 §7.1: the proof is missing or invalid (`DPoP` challenge).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(Text),
    #[error("server_error")]
    Unexpected(#[from] anyhow::Error),
}

impl From<NoBearer> for BearerError {
    fn from(error: NoBearer) -> Self {
        match error {
            NoBearer::Missing => Self::Missing,
            NoBearer::Malformed(description) => Self::InvalidRequest(description),
        }
    }
}

impl From<crate::storage::StorageError> for BearerError {
    fn from(error: crate::storage::StorageError) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}

/// An RFC 9449 §7.1 challenge: `DPoP algs="…", error="…", error_description="…"`. The
/// description is made a valid quoted-string (RFC 9110 §5.6.4) whatever it contains.
fn dpop_challenge(code: &str, description: &str) -> String {
    let algs = crate::tokens::dpop::DPOP_ALGORITHMS.join(" ");
    let description: String = description
        .chars()
        .map(|c| if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') { c } else { '\'' })
        .collect();
    format!(r#"DPoP algs="{algs}", error="{code}", error_description="{description}""#)
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(_) | Self::DpopInvalidToken(_) | Self::InvalidDpopProof(_) => {
                StatusCode::UNAUTHORIZED
            }
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
            Self::DpopInvalidToken(d) => dpop_challenge("invalid_token", d),
            Self::InvalidDpopProof(d) => dpop_challenge("invalid_dpop_proof", d),
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
