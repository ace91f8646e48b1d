//! What can go wrong, split by when it happens: building a verifier ([`BuildError`]), and
//! verifying a token ([`VerifyError`]).

use std::fmt;
use std::sync::Arc;
use url::Url;

/// Why a token was refused, or could not be checked at the moment.
///
/// No variant carries text taken from the token: the messages are safe to log, and
/// [`VerifyError::error_description`] is safe to return to clients (the actix-web
/// integration puts it in the `WWW-Authenticate` header).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed JWS in compact serialisation (RFC 7515 §7.1): wrong number of
    /// parts, bad base64url, invalid JSON, a claim of the wrong type, too large, no `kid`.
    /// The reason is fixed text rather than the JSON parser's error, whose message can
    /// quote the token.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not in the allow-list, or not one this crate can ever accept (`none`,
    /// `HS256` …), or not the algorithm the key is published for.
    #[error("the token's signature algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `typ` is not the one expected: `at+jwt` for access tokens (RFC 9068 §4), `JWT`
    /// for ID tokens. An access token never passes for an ID token, nor the reverse.
    #[error("the token is not of the expected type (typ)")]
    WrongType,
    /// No published key has the token's `kid`, even after the refetch the rate limit allowed.
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify with the key named by `kid`.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed, beyond the leeway (RFC 7519 §4.1.4).
    #[error("the token has expired")]
    Expired,
    /// `nbf` (RFC 7519 §4.1.5) or `iat` lies in the future, beyond the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not exactly the configured issuer (RFC 9068 §4, OpenID Connect Core §3.1.3.7).
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// None of the token's `aud` values is a configured audience (RFC 9068 §4).
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// A required claim is absent: for access tokens `iss exp aud sub client_id iat jti`
    /// (RFC 9068 §2.2), for ID tokens `iss sub aud exp iat` (OpenID Connect Core §2).
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// The token names a key this verifier does not have, and the JWK Set could not be
    /// fetched to look for it: the issuer is unreachable or serves something else. Not the
    /// token's fault, so not a 401: the actix-web extractor answers 503.
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable(#[source] FetchError),
    /// The token passed every other check, but the issuer has revoked it: its `jti`, its
    /// session (`sid`), its refresh-token family (`fid`), or every token of its user or
    /// client issued until some time (CAEP 1.0 §3.1 `session-revoked`, RISC 1.0 §2.3
    /// `account-disabled`). Only a verifier with a revocation feed (the `revocations`
    /// feature) refuses tokens this way.
    #[error("the token has been revoked")]
    Revoked,
    /// The revocation feed has been lost for longer than the verifier allows, and it fails
    /// closed: it cannot tell whether the token was revoked meanwhile. Not the token's fault,
    /// so not a 401: the actix-web extractor answers 503. Only with the `revocations`
    /// feature.
    #[error("the issuer's revocations are unavailable")]
    RevocationsUnavailable,
    /// The token is bound to a key (`cnf`, RFC 7800), so it is not a bearer token: a
    /// DPoP-bound token presented as `Bearer` (RFC 9449 §7.1), or any bound token given
    /// to [`Verifier::verify`](crate::Verifier::verify).
    #[error("the token is bound to a key and cannot be used as a bearer token")]
    SenderConstrained,
    /// A token without `cnf.jkt` presented with the `DPoP` scheme (RFC 9449 §7.1).
    #[error("the token is not DPoP-bound")]
    NotSenderConstrained,
    /// The DPoP replay cache holds as many live proofs as it may, so whether this proof
    /// is replayed cannot be told. Not the token's fault: the actix-web extractor answers
    /// 503.
    #[error("the DPoP replay cache is full")]
    ReplayCacheFull,
    /// The issuer's introspection endpoint (RFC 7662) said the opaque token is not active:
    /// expired, revoked, unknown, or not to be revealed to this resource server (§2.2
    /// answers all of these alike). Also when `active` is anything but the JSON `true`.
    #[error("the token is not active")]
    Inactive,
    /// An opaque token could not be introspected: the endpoint is unreachable, timed out,
    /// answered an error status (a 401 too: this verifier's credentials are wrong, not the
    /// token), sent something that is not JSON, or as many introspection requests as
    /// allowed were in flight for the whole HTTP timeout. Not the token's fault: the
    /// actix-web extractor answers 503.
    #[error("the issuer's introspection endpoint is unavailable")]
    IntrospectionUnavailable(#[source] FetchError),
}

impl VerifyError {
    /// True when the token itself was refused (answer 401); false for
    /// [`KeysUnavailable`](Self::KeysUnavailable),
    /// [`RevocationsUnavailable`](Self::RevocationsUnavailable),
    /// [`ReplayCacheFull`](Self::ReplayCacheFull) and
    /// [`IntrospectionUnavailable`](Self::IntrospectionUnavailable), which are this side's
    /// problem (503).
    pub fn is_token_error(&self) -> bool {
        !matches!(
            self,
            Self::KeysUnavailable(_)
                | Self::RevocationsUnavailable
                | Self::ReplayCacheFull
                | Self::IntrospectionUnavailable(_)
        )
    }

    /// A short text for clients: RFC 6750 §3 `error_description`, so it speaks of access
    /// tokens. Every character is in the set that attribute allows (%x20-21 / %x23-5B /
    /// %x5D-7E), and none comes from the token.
    pub fn error_description(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "the access token is malformed",
            Self::UnsupportedAlgorithm => "the access token is signed with an algorithm that is not accepted",
            Self::WrongType => "the token is not an access token",
            Self::UnknownKey => "the access token is signed with an unknown key",
            Self::BadSignature => "the access token signature is invalid",
            Self::Expired => "the access token expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::WrongIssuer => "the access token was issued by another issuer",
            Self::WrongAudience => "the access token is not meant for this resource server",
            Self::MissingClaim(_) => "the access token lacks a required claim",
            Self::KeysUnavailable(_)
            | Self::RevocationsUnavailable
            | Self::ReplayCacheFull
            | Self::IntrospectionUnavailable(_) => "the access token cannot be verified at the moment",
            Self::Inactive => "the access token is not active",
            Self::Revoked => "the access token has been revoked",
            Self::SenderConstrained => "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
            Self::NotSenderConstrained => "the access token is not DPoP-bound: present it with the Bearer scheme",
        }
    }
}

/// Why [`Verifier::verify_dpop`](crate::Verifier::verify_dpop) refused a request: the
/// token, or the DPoP proof that came with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpopRequestError {
    /// The token is refused (`invalid_token`), or cannot be checked at the moment
    /// ([`VerifyError::is_token_error`] is false).
    #[error(transparent)]
    Token(VerifyError),
    /// The proof is missing, invalid, for another key than `cnf.jkt`, or replayed
    /// (`invalid_dpop_proof`, RFC 9449 §7.1).
    #[error(transparent)]
    Proof(crate::dpop::DpopError),
    /// The verifier was built without [`VerifierBuilder::dpop`](crate::VerifierBuilder::dpop).
    #[error("this verifier does not accept DPoP")]
    NotEnabled,
}

/// Why a [`Verifier`](crate::Verifier) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// An unusable setting: no audience, no algorithm, a leeway over five minutes, a zero
    /// interval or timeout, a realm that cannot be quoted, a JWK Set without a usable key.
    #[error("invalid verifier configuration: {0}")]
    Configuration(&'static str),
    /// The issuer is not a URL.
    #[error("the issuer {issuer:?} is not a URL")]
    IssuerNotUrl {
        /// The issuer as configured.
        issuer: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// The issuer is a URL, but not an `https` or `http` one without query and fragment
    /// (OpenID Connect Discovery 1.0 §2 for the query and fragment).
    #[error("the issuer {issuer:?} must be an http(s) URL without query or fragment")]
    InvalidIssuer {
        /// The issuer as configured.
        issuer: String,
    },
    /// The JWK Set given to [`VerifierBuilder::build_from_jwks`](crate::VerifierBuilder::build_from_jwks)
    /// is not a JWK Set.
    #[error("invalid JWK Set")]
    InvalidJwks(#[from] JwksError),
    /// The HTTP client could not be created (its TLS backend failed to initialise).
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    #[error("cannot create the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The issuer's discovery document could not be fetched or is not acceptable.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    #[error("OpenID Connect discovery failed")]
    Discovery(#[from] DiscoveryError),
    /// The JWK Set could not be fetched, or is not a JWK Set.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    #[error("the JWK Set is unavailable")]
    KeySetUnavailable(#[source] FetchError),
    /// The introspection endpoint, configured or published as `introspection_endpoint` in
    /// the discovery document, is missing or not an `https` or `http` URL.
    #[cfg(feature = "fetch")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
    #[error("unusable introspection endpoint: {0}")]
    IntrospectionEndpoint(&'static str),
    /// The revocation feed could not be set up: the issuer has no usable Shared Signals
    /// transmitter, refused the receiver's credentials, or could not create its stream.
    #[cfg(feature = "revocations")]
    #[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
    #[error("the revocation feed could not be set up")]
    Revocations(#[from] RevocationError),
}

/// Why the revocation feed (OpenID Shared Signals, SSF 1.0) could not be set up or
/// shut down.
#[cfg(feature = "revocations")]
#[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// A request to the issuer failed: unreachable, a timeout, an unexpected status, or a
    /// body that is not the expected JSON.
    #[error("a request to the transmitter failed")]
    Request(#[source] FetchError),
    /// The discovery document has no `token_endpoint`, or the Shared Signals metadata
    /// (SSF §7) is missing, speaks for another issuer, lacks poll delivery or a
    /// `configuration_endpoint`, or names endpoints that are not http(s) URLs.
    #[error("the issuer's Shared Signals metadata is unusable: {0}")]
    Metadata(&'static str),
    /// The token endpoint refused the receiver's client credentials (RFC 6749 §5.2).
    #[error("the token endpoint refused the receiver's client credentials")]
    CredentialsRefused,
    /// The transmitter refused the receiver's access token for lack of scope (403): the
    /// client needs `ssf.manage` and `ssf.read`.
    #[error("the receiver's access token lacks the ssf.manage or ssf.read scope")]
    InsufficientScope,
    /// The transmitter refused a new stream with 409 (SSF §8.1.1.1): this client has as
    /// many streams as it may. Streams of stopped instances are deleted after the
    /// transmitter's `inactivity_timeout`; `Verifier::shutdown_revocations` deletes them
    /// at once.
    #[error("the transmitter refused a new stream: this receiver has as many as it may (409)")]
    TooManyStreams,
    /// The stream the transmitter described is not usable: another issuer, another
    /// audience, push delivery, or no `session-revoked` events.
    #[error("the stream configuration is unusable: {0}")]
    Stream(&'static str),
}

/// What is wrong with the issuer's discovery document (OpenID Connect Discovery 1.0 §4).
#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The document could not be fetched, or is not OpenID Provider Metadata (§3).
    #[error("the discovery document is unavailable")]
    Unavailable(#[source] FetchError),
    /// The document speaks for another issuer (§4.3): a wrong URL, or a document that
    /// would substitute another issuer's keys.
    #[error("the discovery document describes the issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's `issuer`.
        found: String,
    },
    /// `jwks_uri` is not a URL.
    #[error("jwks_uri {jwks_uri:?} is not a URL")]
    JwksUriNotUrl {
        /// The document's `jwks_uri`.
        jwks_uri: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// `jwks_uri` is a URL, but not an `https` or `http` one.
    #[error("jwks_uri {jwks_uri} is not an http(s) URL")]
    JwksUriNotHttp {
        /// The document's `jwks_uri`.
        jwks_uri: Url,
    },
}

/// A document that is not a JWK Set (RFC 7517 §5): not JSON, or no `keys` array.
///
/// Individual keys that cannot be used (another key type, no `kid` …) are not errors:
/// RFC 7517 §5 says to ignore them, and [`KeySet`](crate::KeySet) skips them.
#[derive(Debug, thiserror::Error)]
#[error("not a JWK Set (RFC 7517 §5)")]
pub struct JwksError(#[source] pub(crate) serde_json::Error);

/// Why a JWK (RFC 7517 §4) is not a public key this crate can verify with.
///
/// The messages are fixed text, safe to log and to return to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// The JWK holds private or symmetric key members (`d`, `p`, `q`, `dp`, `dq`, `qi`,
    /// `oth`, `k`) where a public key is expected (RFC 9449 §4.3 check 7).
    #[error("the JWK holds a private key")]
    PrivateKey,
    /// A well-formed JWK this crate does not verify with: another key type or curve, a
    /// key for encryption, an algorithm it does not support.
    #[error("unsupported JWK: {0}")]
    Unsupported(&'static str),
    /// Not a well-formed JWK: not an object, a required member missing or of the wrong
    /// type, not base64url, coordinates of the wrong length, `alg` not fitting `kty`.
    #[error("invalid JWK: {0}")]
    Invalid(&'static str),
}

/// Why a document could not be fetched from the issuer, or was not what it should be.
///
/// Cheap to clone: the key cache hands the last failure to every request that needs it.
#[derive(Clone)]
pub struct FetchError(Arc<FetchErrorInner>);

struct FetchErrorInner {
    /// The HTTP method: `GET`, except for the requests of the revocation feed.
    method: &'static str,
    url: Url,
    kind: FetchErrorKind,
}

// Only the `fetch` feature fetches anything; without it the type exists (it is the source
// of `VerifyError::KeysUnavailable`) but is never built.
#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
enum FetchErrorKind {
    #[cfg(feature = "fetch")]
    Request(reqwest::Error),
    Status(u16),
    TooLarge(usize),
    Invalid(serde_json::Error),
    /// This many requests were already in flight for the whole wait.
    Busy(usize),
}

#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
impl FetchError {
    #[cfg(feature = "fetch")]
    pub(crate) fn request(url: &Url, error: reqwest::Error) -> Self {
        Self::new(url, FetchErrorKind::Request(error))
    }

    pub(crate) fn status(url: &Url, status: u16) -> Self {
        Self::new(url, FetchErrorKind::Status(status))
    }

    pub(crate) fn too_large(url: &Url, limit: usize) -> Self {
        Self::new(url, FetchErrorKind::TooLarge(limit))
    }

    pub(crate) fn invalid(url: &Url, error: serde_json::Error) -> Self {
        Self::new(url, FetchErrorKind::Invalid(error))
    }

    pub(crate) fn busy(url: &Url, in_flight: usize) -> Self {
        Self::new(url, FetchErrorKind::Busy(in_flight))
    }

    fn new(url: &Url, kind: FetchErrorKind) -> Self {
        Self(Arc::new(FetchErrorInner { method: "GET", url: url.clone(), kind }))
    }

    /// The same error for a request with another method than GET.
    #[cfg(feature = "fetch")]
    pub(crate) fn with_method(mut self, method: &'static str) -> Self {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner.method = method,
            // Only fresh errors are given a method; a shared one keeps its own.
            None => debug_assert!(false, "with_method on a shared FetchError"),
        }
        self
    }

    /// The HTTP method of the request.
    pub fn method(&self) -> &str {
        self.0.method
    }

    /// The URL that was fetched.
    pub fn url(&self) -> &Url {
        &self.0.url
    }

    /// The HTTP status, when the issuer answered with an unexpected one.
    pub fn status_code(&self) -> Option<u16> {
        match self.0.kind {
            FetchErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, url) = (self.0.method, &self.0.url);
        match &self.0.kind {
            #[cfg(feature = "fetch")]
            FetchErrorKind::Request(_) => write!(f, "{method} {url} failed"),
            FetchErrorKind::Status(status) => write!(f, "{method} {url} answered HTTP {status}"),
            FetchErrorKind::TooLarge(limit) => write!(f, "{method} {url}: the document is larger than {limit} bytes"),
            FetchErrorKind::Invalid(_) => write!(f, "{url} is not the expected JSON document"),
            FetchErrorKind::Busy(in_flight) => {
                write!(f, "{method} {url}: {in_flight} requests stayed in flight for the whole timeout")
            }
        }
    }
}

impl fmt::Debug for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("FetchError");
        debug.field("method", &self.0.method).field("url", &self.0.url.as_str());
        match &self.0.kind {
            #[cfg(feature = "fetch")]
            FetchErrorKind::Request(error) => debug.field("request", error),
            FetchErrorKind::Status(status) => debug.field("status", status),
            FetchErrorKind::TooLarge(limit) => debug.field("limit", limit),
            FetchErrorKind::Invalid(error) => debug.field("invalid", error),
            FetchErrorKind::Busy(in_flight) => debug.field("busy", in_flight),
        };
        debug.finish()
    }
}

impl std::error::Error for FetchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            #[cfg(feature = "fetch")]
            FetchErrorKind::Request(error) => Some(error),
            FetchErrorKind::Invalid(error) => Some(error),
            FetchErrorKind::Status(_) | FetchErrorKind::TooLarge(_) | FetchErrorKind::Busy(_) => None,
        }
    }
}

/// An error and its sources on one line, `a: b: c`, for logs.
#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
pub(crate) struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn error_descriptions_are_valid_rfc6750_attribute_values() {
        let url = Url::parse("https://id.example.com/jwks.json").unwrap();
        let all = [
            VerifyError::Malformed("x"),
            VerifyError::UnsupportedAlgorithm,
            VerifyError::WrongType,
            VerifyError::UnknownKey,
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::MissingClaim("sub"),
            VerifyError::KeysUnavailable(FetchError::status(&url, 500)),
            VerifyError::Revoked,
            VerifyError::RevocationsUnavailable,
            VerifyError::SenderConstrained,
            VerifyError::NotSenderConstrained,
            VerifyError::ReplayCacheFull,
            VerifyError::Inactive,
            VerifyError::IntrospectionUnavailable(FetchError::busy(&url, 16)),
        ];
        for error in all {
            let allowed = |b: u8| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            assert!(error.error_description().bytes().all(allowed), "{error:?}");
        }
    }

    #[test]
    fn only_unavailable_keys_or_revocations_are_not_the_tokens_fault() {
        let url = Url::parse("https://id.example.com/jwks.json").unwrap();
        assert!(!VerifyError::KeysUnavailable(FetchError::status(&url, 503)).is_token_error());
        assert!(!VerifyError::RevocationsUnavailable.is_token_error());
        assert!(!VerifyError::ReplayCacheFull.is_token_error());
        assert!(!VerifyError::IntrospectionUnavailable(FetchError::status(&url, 401)).is_token_error());
        assert!(VerifyError::Inactive.is_token_error());
        assert!(VerifyError::SenderConstrained.is_token_error());
        assert!(VerifyError::Revoked.is_token_error());
        assert!(VerifyError::UnknownKey.is_token_error());
        assert!(VerifyError::Expired.is_token_error());
    }

    #[test]
    fn causes_are_kept_as_sources() {
        let json = serde_json::from_slice::<serde_json::Value>(b"<html>").unwrap_err();
        let url = Url::parse("https://id.example.com/jwks.json").unwrap();
        let error = VerifyError::KeysUnavailable(FetchError::invalid(&url, json));
        let fetch = error.source().expect("the fetch failure");
        assert_eq!(fetch.to_string(), "https://id.example.com/jwks.json is not the expected JSON document");
        assert!(fetch.source().expect("the JSON error").is::<serde_json::Error>());

        assert_eq!(
            Chain(&error).to_string(),
            "the issuer's keys are unavailable: https://id.example.com/jwks.json is not the expected JSON document: \
             expected value at line 1 column 1"
        );

        let error = BuildError::IssuerNotUrl { issuer: "id".into(), source: url::ParseError::RelativeUrlWithoutBase };
        assert!(error.source().expect("the URL error").is::<url::ParseError>());
    }
}
