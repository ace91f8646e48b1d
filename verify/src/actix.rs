//! actix-web integration: the [`AccessToken`] extractor, and [`BearerError`] responses
//! as RFC 6750 §3 defines them.
//!
//! Register the [`Verifier`] as app data (`web::Data<Verifier>`, or a plain `Verifier`),
//! then take an [`AccessToken`] in any handler that needs one:
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer, Responder};
//! use tessera_verify::actix::{AccessToken, BearerError};
//! use tessera_verify::Verifier;
//!
//! async fn list_invoices(token: AccessToken) -> Result<impl Responder, BearerError> {
//!     token.require_scopes(&["invoices:read"])?; // 403 insufficient_scope otherwise
//!     Ok(format!("invoices of {}", token.claims().sub))
//! }
//!
//! # #[cfg(feature = "fetch")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder("https://id.example.com")
//!     .audience("https://invoices.example.com")
//!     .build()
//!     .await?;
//! let verifier = web::Data::new(verifier);
//! HttpServer::new(move || App::new().app_data(verifier.clone()).route("/invoices", web::get().to(list_invoices)))
//!     .bind(("127.0.0.1", 8081))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Only the `Authorization` header is read (RFC 6750 §2.1). Tokens in form bodies or
//! query strings (§2.2, §2.3) are not accepted: URLs end up in logs and histories.
//! The token itself is never logged; refusals are logged at `debug` with their reason.

use crate::{Claims, Verifier, VerifyError};
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use std::fmt;
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

/// A verified access token from the `Authorization: Bearer` header (RFC 6750 §2.1).
///
/// Its [`Claims`] are read with [`claims`](Self::claims). Extraction fails with a
/// [`BearerError`]: 401 when the header is missing or the token is refused (revoked
/// included), 400 for a malformed request, 503 when the issuer's keys or revocations are
/// unavailable.
#[derive(Debug)]
pub struct AccessToken {
    claims: Claims,
    realm: Arc<str>,
}

impl AccessToken {
    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> Claims {
        self.claims
    }

    /// Succeeds when every scope in `required` was granted; otherwise the error answers
    /// 403 `insufficient_scope` and lists `required` in the challenge (RFC 6750 §3.1).
    pub fn require_scopes(&self, required: &[&str]) -> Result<(), BearerError> {
        if self.claims.scope.contains_all(required) {
            return Ok(());
        }
        tracing::debug!(required = required.join(" "), granted = %self.claims.scope, "insufficient scope");
        Err(BearerError {
            realm: Arc::clone(&self.realm),
            kind: BearerErrorKind::InsufficientScope(required.join(" ")),
        })
    }
}

impl FromRequest for AccessToken {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, BearerError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<Verifier>>().map(|data| data.get_ref()).or_else(|| req.app_data());
        let Some(verifier) = verifier.cloned() else {
            tracing::error!("AccessToken needs a tessera_verify::Verifier in the app data (App::app_data)");
            return Box::pin(ready(Err(BearerError { realm: Arc::from(""), kind: BearerErrorKind::NoVerifier })));
        };
        let token = match bearer_token(req) {
            Ok(token) => token.to_owned(),
            Err(kind) => return Box::pin(ready(Err(BearerError { realm: verifier.shared_realm(), kind }))),
        };
        Box::pin(async move {
            match verifier.verify(&token).await {
                Ok(claims) => Ok(AccessToken { claims, realm: verifier.shared_realm() }),
                Err(error) if error.is_token_error() => {
                    tracing::debug!(%error, "bearer token refused");
                    Err(BearerError { realm: verifier.shared_realm(), kind: BearerErrorKind::InvalidToken(error) })
                }
                Err(error) => {
                    // The failed fetch (or the lost revocation feed) is logged at `warn` where it
                    // happens: a flood of requests during an outage must not flood the log too.
                    tracing::debug!(error = %crate::error::Chain(&error), "bearer token not verifiable at the moment");
                    Err(BearerError { realm: verifier.shared_realm(), kind: BearerErrorKind::Unavailable(error) })
                }
            }
        })
    }
}

/// The token of the one `Authorization: Bearer <token>` header (RFC 6750 §2.1).
fn bearer_token(req: &HttpRequest) -> Result<&str, BearerErrorKind> {
    let mut headers = req.headers().get_all(AUTHORIZATION);
    let Some(header) = headers.next() else { return Err(BearerErrorKind::MissingToken) };
    if headers.next().is_some() {
        return Err(BearerErrorKind::InvalidRequest("more than one Authorization header"));
    }
    let header =
        header.to_str().map_err(|_| BearerErrorKind::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    // Auth schemes are case-insensitive (RFC 9110 §11.1). Another scheme (Basic …) means
    // no bearer credentials: §3.1 asks for the bare challenge then.
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(BearerErrorKind::MissingToken);
    }
    let token = credentials.trim_matches(' ');
    if token.is_empty() {
        return Err(BearerErrorKind::InvalidRequest("the Bearer credentials are empty"));
    }
    Ok(token)
}

/// A refused request, answered as RFC 6750 §3 describes.
#[derive(Debug)]
pub struct BearerError {
    realm: Arc<str>,
    kind: BearerErrorKind,
}

/// What a [`BearerError`] is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerErrorKind {
    /// No `Authorization: Bearer` header: 401 with a challenge but no error code (§3.1).
    #[error("no bearer token")]
    MissingToken,
    /// A malformed request, e.g. two `Authorization` headers: 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The token was refused: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(#[source] VerifyError),
    /// The token could not be checked: it names a key the verifier lacks and the issuer's
    /// JWK Set cannot be fetched ([`VerifyError::KeysUnavailable`]), or the revocation
    /// feed is lost and the verifier fails closed
    /// ([`VerifyError::RevocationsUnavailable`]): 503, so that the client retries rather
    /// than discarding a token that may be good.
    #[error("the token cannot be verified at the moment")]
    Unavailable(#[source] VerifyError),
    /// The token lacks a scope the resource needs: 403 `insufficient_scope`. Holds the
    /// required scopes, space-delimited.
    #[error("insufficient scope: {0} required")]
    InsufficientScope(String),
    /// No [`Verifier`] in the app data, a bug in the service: 500.
    #[error("no tessera_verify::Verifier is registered as app data")]
    NoVerifier,
}

impl BearerError {
    /// What went wrong.
    pub fn kind(&self) -> &BearerErrorKind {
        &self.kind
    }

    /// The RFC 6750 §3.1 error code, if the response carries one.
    pub fn code(&self) -> Option<&'static str> {
        match self.kind {
            BearerErrorKind::InvalidRequest(_) => Some("invalid_request"),
            BearerErrorKind::InvalidToken(_) => Some("invalid_token"),
            BearerErrorKind::InsufficientScope(_) => Some("insufficient_scope"),
            BearerErrorKind::MissingToken | BearerErrorKind::Unavailable(_) | BearerErrorKind::NoVerifier => None,
        }
    }

    /// The RFC 6750 §3 `error_description`: fixed text, never taken from the token.
    fn error_description(&self) -> &'static str {
        match &self.kind {
            BearerErrorKind::InvalidRequest(description) => description,
            BearerErrorKind::InvalidToken(error) => error.error_description(),
            BearerErrorKind::InsufficientScope(_) => "the access token does not grant the required scope",
            BearerErrorKind::MissingToken | BearerErrorKind::Unavailable(_) | BearerErrorKind::NoVerifier => "",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3). Every value placed in a quoted
    /// string is free of `"` and `\`: the realm is checked when the verifier is built,
    /// descriptions are fixed text, and scopes are checked here.
    fn challenge(&self) -> String {
        let mut challenge = format!(r#"Bearer realm="{}""#, self.realm);
        if let Some(code) = self.code() {
            challenge.push_str(&format!(r#", error="{code}", error_description="{}""#, self.error_description()));
        }
        if let BearerErrorKind::InsufficientScope(scope) = &self.kind {
            // RFC 6750 §3: scope-token characters are %x21 / %x23-5B / %x5D-7E.
            if scope.bytes().all(|b| matches!(b, b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
                challenge.push_str(&format!(r#", scope="{scope}""#));
            }
        }
        challenge
    }
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for BearerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            BearerErrorKind::MissingToken => StatusCode::UNAUTHORIZED,
            BearerErrorKind::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BearerErrorKind::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            BearerErrorKind::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            BearerErrorKind::InsufficientScope(_) => StatusCode::FORBIDDEN,
            BearerErrorKind::NoVerifier => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((CACHE_CONTROL, "no-store"));
        let is_challenge =
            matches!(self.status_code(), StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN);
        if is_challenge {
            if let Ok(challenge) = HeaderValue::from_str(&self.challenge()) {
                response.insert_header((WWW_AUTHENTICATE, challenge));
            }
        }
        match self.code() {
            Some(code) => {
                response.json(serde_json::json!({ "error": code, "error_description": self.error_description() }))
            }
            None => response.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn token_of(req: TestRequest) -> Result<String, String> {
        bearer_token(&req.to_http_request()).map(str::to_owned).map_err(|kind| format!("{kind:?}"))
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_is_taken_whole() {
        for header in ["Bearer a.b.c", "bearer a.b.c", "BEARER  a.b.c"] {
            assert_eq!(token_of(TestRequest::default().insert_header((AUTHORIZATION, header))).unwrap(), "a.b.c");
        }
    }

    #[test]
    fn other_schemes_count_as_no_token_and_empty_ones_as_invalid() {
        let basic = TestRequest::default().insert_header((AUTHORIZATION, "Basic YTpi"));
        assert_eq!(token_of(basic).unwrap_err(), "MissingToken");
        assert_eq!(token_of(TestRequest::default()).unwrap_err(), "MissingToken");
        let empty = TestRequest::default().insert_header((AUTHORIZATION, "Bearer "));
        assert!(token_of(empty).unwrap_err().starts_with("InvalidRequest"));
        let two = TestRequest::default()
            .append_header((AUTHORIZATION, "Bearer a.b.c"))
            .append_header((AUTHORIZATION, "Bearer d.e.f"));
        assert!(token_of(two).unwrap_err().starts_with("InvalidRequest"));
    }

    #[test]
    fn challenges_follow_rfc6750_section_3() {
        let error = |kind| BearerError { realm: "invoices".into(), kind };
        assert_eq!(error(BearerErrorKind::MissingToken).challenge(), r#"Bearer realm="invoices""#);
        assert_eq!(
            error(BearerErrorKind::InvalidToken(VerifyError::Expired)).challenge(),
            r#"Bearer realm="invoices", error="invalid_token", error_description="the access token expired""#
        );
        assert_eq!(
            error(BearerErrorKind::InsufficientScope("a b".into())).challenge(),
            r#"Bearer realm="invoices", error="insufficient_scope", error_description="the access token does not grant the required scope", scope="a b""#
        );
        // A scope that would break the quoted string is left out rather than escaped.
        assert!(!error(BearerErrorKind::InsufficientScope("a\"b".into())).challenge().contains("scope=\""));
    }
}
