//! Verifies the JWT access tokens (RFC 9068) that Tessera issues, inside a resource
//! server, without calling Tessera per request; and, through a synchronous core, any
//! access or ID token of Tessera's for a caller that holds the keys.
//!
//! A [`Verifier`] is built from the issuer URL. It reads the discovery document
//! (OpenID Connect Discovery 1.0 §4), fetches the JWK Set from its `jwks_uri`, and
//! keeps it cached the way the response's `Cache-Control: max-age` says, revalidating
//! with `If-None-Match`. A token signed with a key it does not know yet makes it
//! refetch the set, at most once per `min_refetch_interval`, so forged `kid`s cannot
//! make it hammer the issuer; a failed fetch keeps the keys it has.
//!
//! Verification is strict: exactly three base64url parts within a size limit, an
//! algorithm allow-list (RS256 unless configured; `none` and HMAC are never accepted),
//! `typ` `at+jwt`, the signature with a key parsed once per `kid`, then `iss`, `aud`,
//! `exp`/`nbf`/`iat` with a small leeway, and the claims RFC 9068 §2.2 requires.
//!
//! ```no_run
//! # #[cfg(feature = "fetch")]
//! # async fn run() -> Result<(), tessera_verify::BuildError> {
//! use tessera_verify::Verifier;
//!
//! let verifier = Verifier::builder("https://id.example.com")
//!     .audience("https://invoices.example.com")
//!     .build()
//!     .await?;
//!
//! let token = "eyJ…"; // from `Authorization: Bearer …`
//! match verifier.verify(token).await {
//!     Ok(claims) if claims.scope.contains("invoices:read") => println!("hello, {}", claims.sub),
//!     Ok(_) => println!("insufficient scope"),
//!     Err(error) => println!("refused: {error}"),
//! }
//! # Ok(()) }
//! ```
//!
//! # Revocation
//!
//! With the `revocations` feature, `VerifierBuilder::revocations` makes the verifier an
//! OpenID Shared Signals (SSF 1.0) receiver of the issuer's revocations, through poll
//! delivery (RFC 8936): a background task keeps a bounded deny set of revoked tokens,
//! sessions, refresh-token families, users and clients, which [`Verifier::verify`] looks
//! tokens up in after every other check ([`VerifyError::Revoked`]). When the feed is lost
//! for longer than allowed the verifier fails closed ([`VerifyError::RevocationsUnavailable`])
//! or open, as configured (`FailMode`); `Verifier::revocation_status` reports it.
//!
//! # DPoP
//!
//! [`VerifierBuilder::dpop`] makes the verifier accept DPoP-bound tokens (RFC 9449 §7):
//! [`Verifier::verify_dpop`] checks the token, its `cnf.jkt`, the proof and a bounded
//! replay cache, and the actix-web extractor answers `WWW-Authenticate: DPoP`. A token
//! bound to a key is never accepted by [`Verifier::verify`], the bearer check. The pieces
//! are public for callers that keep their own state: [`dpop::ProofPolicy`] checks one
//! proof as a pure function, [`Jwk`] parses a public key and computes its RFC 7638
//! thumbprint, and [`KeySet::verify_jws`] verifies a JWS (a `private_key_jwt` client
//! assertion, RFC 7523) with a client's keys ([`KeySet::from_client_jwks`]).
//!
//! # Opaque tokens
//!
//! [`VerifierBuilder::introspection`] (the `fetch` feature) makes the verifier accept
//! Tessera's opaque access tokens too (`tat_` and 43 base64url characters): it asks the
//! issuer's introspection endpoint (RFC 7662) about each, as the confidential client that
//! [`Introspection`] names, and caches active answers briefly (10 s unless set, never past
//! `exp`, bounded in size), with a bound on requests in flight. The answer is checked as
//! a JWT's claims are (issuer, audience, times, `cnf` and `token_type`, the deny set) and
//! returned as the same [`Claims`]; [`VerifyError::Inactive`] when the issuer says the
//! token is dead, [`VerifyError::IntrospectionUnavailable`] when it cannot be asked. Only
//! a token of exactly that shape is ever sent; JWTs are verified locally as before.
//!
//! # Without the network
//!
//! [`VerifierBuilder::build_from_jwks`] builds a verifier from a JWK Set document instead
//! of discovery. Underneath, [`AccessTokenPolicy`] and [`IdTokenPolicy`] check a token
//! against a [`KeySet`] and a time the caller gives, synchronously: what Tessera itself
//! uses for its own tokens. [`Verifier`] runs the same code, so there is one verifier.
//!
//! # Features
//!
//! - `fetch` (default): discovery and JWK Set fetching with `reqwest`, which
//!   `VerifierBuilder::build` needs, and introspection of opaque tokens. Without it the crate has no HTTP client, no
//!   Tokio, and no I/O at all.
//! - `rustls-tls` (default) or `native-tls`: the TLS backend of `reqwest`; each turns on
//!   `fetch`. `fetch` alone speaks plain HTTP only.
//! - `revocations`: `Revocations`, the Shared Signals feed and the deny set; turns on
//!   `fetch`.
//! - `actix`: the `actix::AccessToken` extractor for actix-web 4, which answers
//!   failures as RFC 6750 §3 requires.
//! - `test-util`: `test_util`, keys that sign tokens like Tessera and a mock issuer, for
//!   the tests of services that use this crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
mod algorithm;
mod claims;
mod clock;
#[cfg(feature = "fetch")]
mod discovery;
pub mod dpop;
mod error;
/// For `fuzz/` only: see the module's documentation.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "fetch")]
mod http;
#[cfg(feature = "fetch")]
mod introspection;
pub mod jwk;
mod jws;
#[cfg(feature = "fetch")]
mod key_cache;
mod policy;
mod replay;
#[cfg(feature = "revocations")]
mod revocation;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;
mod verifier;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{Claims, Confirmation, IdTokenClaims, Scopes};
pub use clock::{Clock, SystemClock};
#[cfg(feature = "fetch")]
pub use error::DiscoveryError;
#[cfg(feature = "revocations")]
#[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
pub use error::RevocationError;
pub use error::{BuildError, DpopRequestError, FetchError, JwkError, JwksError, VerifyError};
#[cfg(feature = "fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "fetch")))]
pub use introspection::Introspection;
pub use jwk::{Jwk, KeySet};
pub use jws::{JwsHeader, VerifiedJws};
pub use policy::{AccessTokenPolicy, IdTokenPolicy};
#[cfg(feature = "revocations")]
#[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
pub use revocation::{AppliedEvent, FailMode, FeedState, RevocationStatus, Revocations};
pub use verifier::{Verifier, VerifierBuilder};

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(all(doctest, feature = "actix", feature = "revocations"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Parses `json` as `T` only if it is a JSON object in UTF-8. A derived `Deserialize` also
/// reads a struct from an array of its fields in order, and neither a JOSE header
/// (RFC 7515 §4) nor a JWK Set (RFC 7517 §5) may be one; and serde_json does not check the
/// UTF-8 of the members it skips, while RFC 7515 §5.2 and RFC 8259 §8.1 want all of it.
pub(crate) fn from_json_object<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> serde_json::Result<T> {
    let text = std::str::from_utf8(json).map_err(serde::de::Error::custom)?;
    if !text.trim_ascii_start().starts_with('{') {
        return Err(serde::de::Error::custom("not a JSON object"));
    }
    serde_json::from_str(text)
}
