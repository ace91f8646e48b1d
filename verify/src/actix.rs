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
//!
//! # DPoP
//!
//! With [`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop), the extractor also takes
//! `Authorization: DPoP <token>` with its `DPoP` proof header (RFC 9449 §7.1), and checks
//! them with [`Verifier::verify_dpop`]: the method and path of the request, behind the
//! configured public base URL, are what the proof must be for. A DPoP-bound token (one
//! with `cnf.jkt`) is refused as `Bearer`, and a token that is not bound is refused as
//! `DPoP`. Refusals then carry a `WWW-Authenticate: DPoP` challenge with `algs`; a request
//! without credentials gets both a `Bearer` and a `DPoP` challenge.

use crate::dpop::{self, DpopError};
use crate::{Claims, DpopRequestError, Verifier, VerifyError};
use actix_web::dev::Payload;
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use std::fmt;
use std::future::{ready, Future};
use std::pin::Pin;
use std::sync::Arc;

/// A verified access token from the `Authorization: Bearer` header (RFC 6750 §2.1), or,
/// when the verifier accepts DPoP, from `Authorization: DPoP` with a valid proof (RFC 9449
/// §7.1).
///
/// Its [`Claims`] are read with [`claims`](Self::claims). Extraction fails with a
/// [`BearerError`]: 401 when the header is missing or the token or proof is refused
/// (revoked included), 400 for a malformed request, 503 when the issuer's keys or
/// revocations are unavailable.
#[derive(Debug)]
pub struct AccessToken {
    claims: Claims,
    realm: Arc<str>,
    scheme: Scheme,
    dpop_algs: Option<Arc<str>>,
}

/// The authentication scheme a token was presented with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
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

    /// The scheme the token was presented with: [`Scheme::Dpop`] for a DPoP-bound token.
    pub fn scheme(&self) -> Scheme {
        self.scheme
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
            scheme: self.scheme,
            dpop_algs: self.dpop_algs.clone(),
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
            let kind = BearerErrorKind::NoVerifier;
            return Box::pin(ready(Err(BearerError {
                realm: Arc::from(""),
                kind,
                scheme: Scheme::Bearer,
                dpop_algs: None,
            })));
        };
        let dpop_algs = verifier.dpop_algs();
        let error = {
            let (realm, dpop_algs) = (verifier.shared_realm(), dpop_algs.clone());
            move |kind, scheme| BearerError { realm, kind, scheme, dpop_algs }
        };
        let (scheme, token) = match credentials(req, dpop_algs.is_some()) {
            Ok((scheme, token)) => (scheme, token.to_owned()),
            Err(kind) => return Box::pin(ready(Err(error(kind, Scheme::Bearer)))),
        };
        let dpop_request = match scheme {
            Scheme::Bearer => None,
            Scheme::Dpop => {
                let proofs = req.headers().get_all(HeaderName::from_static("dpop")).map(HeaderValue::as_bytes);
                match dpop::single_proof(proofs) {
                    Ok(proof) => {
                        Some((proof.map(str::to_owned), req.method().as_str().to_owned(), req.path().to_owned()))
                    }
                    Err(proof_error) => {
                        tracing::debug!(%proof_error, "DPoP proof refused");
                        return Box::pin(ready(Err(error(BearerErrorKind::InvalidDpopProof(proof_error), scheme))));
                    }
                }
            }
        };
        Box::pin(async move {
            let result = match &dpop_request {
                None => verifier.verify(&token).await.map_err(DpopRequestError::Token),
                Some((proof, method, path)) => verifier.verify_dpop(&token, proof.as_deref(), method, path).await,
            };
            let realm = verifier.shared_realm();
            match result {
                Ok(claims) => Ok(AccessToken { claims, realm, scheme, dpop_algs }),
                Err(DpopRequestError::Token(token_error)) if token_error.is_token_error() => {
                    tracing::debug!(%token_error, ?scheme, "access token refused");
                    // A bound token presented as Bearer is answered with the scheme it needs.
                    let scheme = match token_error {
                        VerifyError::SenderConstrained if dpop_algs.is_some() => Scheme::Dpop,
                        _ => scheme,
                    };
                    Err(error(BearerErrorKind::InvalidToken(token_error), scheme))
                }
                Err(DpopRequestError::Token(unavailable)) => {
                    // The failed fetch (or the lost revocation feed) is logged at `warn` where it
                    // happens: a flood of requests during an outage must not flood the log too.
                    tracing::debug!(error = %crate::error::Chain(&unavailable), "access token not verifiable at the moment");
                    Err(error(BearerErrorKind::Unavailable(unavailable), scheme))
                }
                Err(DpopRequestError::Proof(proof_error)) => {
                    tracing::debug!(%proof_error, "DPoP proof refused");
                    Err(error(BearerErrorKind::InvalidDpopProof(proof_error), scheme))
                }
                Err(DpopRequestError::NotEnabled) => {
                    // `credentials` only yields the DPoP scheme when it is enabled.
                    tracing::error!("a DPoP request reached a verifier without DPoP");
                    Err(error(BearerErrorKind::NoVerifier, Scheme::Bearer))
                }
            }
        })
    }
}

/// The scheme and token of the one `Authorization` header: `Bearer` (RFC 6750 §2.1), or
/// `DPoP` (RFC 9449 §7.1) when `accepts_dpop`.
fn credentials(req: &HttpRequest, accepts_dpop: bool) -> Result<(Scheme, &str), BearerErrorKind> {
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
    let scheme = if scheme.eq_ignore_ascii_case("Bearer") {
        Scheme::Bearer
    } else if accepts_dpop && scheme.eq_ignore_ascii_case("DPoP") {
        Scheme::Dpop
    } else {
        return Err(BearerErrorKind::MissingToken);
    };
    let token = credentials.trim_matches(' ');
    if token.is_empty() {
        return Err(BearerErrorKind::InvalidRequest("the credentials are empty"));
    }
    Ok((scheme, token))
}

/// The token of the one `Authorization: Bearer <token>` header (RFC 6750 §2.1).
#[cfg(test)]
fn bearer_token(req: &HttpRequest) -> Result<&str, BearerErrorKind> {
    credentials(req, false).map(|(_, token)| token)
}

/// A refused request, answered as RFC 6750 §3 describes, or RFC 9449 §7.1 for requests
/// with DPoP.
#[derive(Debug)]
pub struct BearerError {
    realm: Arc<str>,
    kind: BearerErrorKind,
    /// The scheme of the challenge that carries the error.
    scheme: Scheme,
    /// `algs` of the DPoP challenge, when the verifier accepts DPoP.
    dpop_algs: Option<Arc<str>>,
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
    /// The DPoP proof is missing, invalid, replayed, or made with another key than the
    /// token is bound to: 401 `invalid_dpop_proof` (RFC 9449 §7.1).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(#[source] DpopError),
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
            BearerErrorKind::InvalidDpopProof(error) => Some(error.error_code()),
            BearerErrorKind::InsufficientScope(_) => Some("insufficient_scope"),
            BearerErrorKind::MissingToken | BearerErrorKind::Unavailable(_) | BearerErrorKind::NoVerifier => None,
        }
    }

    /// The RFC 6750 §3 `error_description`: fixed text, never taken from the token.
    fn error_description(&self) -> &'static str {
        match &self.kind {
            BearerErrorKind::InvalidRequest(description) => description,
            BearerErrorKind::InvalidToken(error) => error.error_description(),
            BearerErrorKind::InvalidDpopProof(error) => error.error_description(),
            BearerErrorKind::InsufficientScope(_) => "the access token does not grant the required scope",
            BearerErrorKind::MissingToken | BearerErrorKind::Unavailable(_) | BearerErrorKind::NoVerifier => "",
        }
    }

    /// The scheme of the challenge that carries the error.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The `WWW-Authenticate` values (RFC 6750 §3, RFC 9449 §7.1): the challenge of the
    /// scheme the error is about, and, for a request without credentials to a verifier
    /// that accepts DPoP, a bare `DPoP` challenge beside the `Bearer` one.
    fn challenges(&self) -> Vec<String> {
        let mut challenges = vec![self.challenge()];
        if let (BearerErrorKind::MissingToken, Some(algs)) = (&self.kind, &self.dpop_algs) {
            challenges.push(format!(r#"DPoP realm="{}", algs="{algs}""#, self.realm));
        }
        challenges
    }

    /// The challenge of [`scheme`](Self::scheme). Every value placed in a quoted string is
    /// free of `"` and `\`: the realm is checked when the verifier is built, descriptions
    /// are fixed text, algorithm names are fixed, and scopes are checked here.
    fn challenge(&self) -> String {
        let scheme = match (self.scheme, &self.dpop_algs) {
            (Scheme::Dpop, Some(_)) => "DPoP",
            _ => "Bearer",
        };
        let mut challenge = format!(r#"{scheme} realm="{}""#, self.realm);
        if let Some(code) = self.code() {
            challenge.push_str(&format!(r#", error="{code}", error_description="{}""#, self.error_description()));
        }
        if let BearerErrorKind::InsufficientScope(scope) = &self.kind {
            // RFC 6750 §3: scope-token characters are %x21 / %x23-5B / %x5D-7E.
            if scope.bytes().all(|b| matches!(b, b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
                challenge.push_str(&format!(r#", scope="{scope}""#));
            }
        }
        if let (Scheme::Dpop, Some(algs)) = (self.scheme, &self.dpop_algs) {
            challenge.push_str(&format!(r#", algs="{algs}""#));
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
            BearerErrorKind::InvalidToken(_) | BearerErrorKind::InvalidDpopProof(_) => StatusCode::UNAUTHORIZED,
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
            for challenge in self.challenges() {
                if let Ok(challenge) = HeaderValue::from_str(&challenge) {
                    response.append_header((WWW_AUTHENTICATE, challenge));
                }
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
        let error = |kind| BearerError { realm: "invoices".into(), kind, scheme: Scheme::Bearer, dpop_algs: None };
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

    #[test]
    fn dpop_challenges_follow_rfc9449_section_7_1() {
        let algs: Option<Arc<str>> = Some("ES256 RS256 EdDSA".into());
        let error = |kind, scheme| BearerError { realm: "invoices".into(), kind, scheme, dpop_algs: algs.clone() };
        assert_eq!(
            error(BearerErrorKind::MissingToken, Scheme::Bearer).challenges(),
            [r#"Bearer realm="invoices""#, r#"DPoP realm="invoices", algs="ES256 RS256 EdDSA""#]
        );
        assert_eq!(
            error(BearerErrorKind::InvalidDpopProof(DpopError::Replayed), Scheme::Dpop).challenges(),
            [
                r#"DPoP realm="invoices", error="invalid_dpop_proof", error_description="the DPoP proof was used before", algs="ES256 RS256 EdDSA""#
            ]
        );
        assert_eq!(
            error(BearerErrorKind::InvalidToken(VerifyError::Expired), Scheme::Dpop).challenge(),
            r#"DPoP realm="invoices", error="invalid_token", error_description="the access token expired", algs="ES256 RS256 EdDSA""#
        );
        assert_eq!(
            error(BearerErrorKind::InvalidToken(VerifyError::Expired), Scheme::Bearer).challenges(),
            [r#"Bearer realm="invoices", error="invalid_token", error_description="the access token expired""#]
        );
    }

    #[test]
    fn the_dpop_scheme_is_read_only_when_accepted() {
        let req = TestRequest::default().insert_header((AUTHORIZATION, "DPoP a.b.c")).to_http_request();
        assert!(matches!(credentials(&req, true), Ok((Scheme::Dpop, "a.b.c"))));
        assert!(matches!(credentials(&req, false), Err(BearerErrorKind::MissingToken)));
        let req = TestRequest::default().insert_header((AUTHORIZATION, "dpop  a.b.c")).to_http_request();
        assert!(matches!(credentials(&req, true), Ok((Scheme::Dpop, "a.b.c"))));
    }
}
