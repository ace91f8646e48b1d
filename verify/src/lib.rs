//! Verifies the JWT access tokens (RFC 9068) that Tessera issues, inside a resource
//! server, without calling Tessera per request.
//!
//! A [`Verifier`] is built from the issuer URL. It reads the discovery document
//! (OpenID Connect Discovery 1.0 §4), fetches the JWK Set from its `jwks_uri`, and
//! keeps it cached the way the response's `Cache-Control: max-age` says, revalidating
//! with `If-None-Match`. A token signed with a key it does not know yet makes it
//! refetch the set, at most once per [`min_refetch_interval`](VerifierBuilder::min_refetch_interval),
//! so forged `kid`s cannot make it hammer the issuer; a failed fetch keeps the keys it has.
//!
//! Verification is strict: exactly three base64url parts within a size limit, an
//! algorithm allow-list (RS256 unless configured; `none` and HMAC are never accepted),
//! `typ` `at+jwt`, the signature with a key parsed once per `kid`, then `iss`, `aud`,
//! `exp`/`nbf`/`iat` with a small leeway, and the claims RFC 9068 §2.2 requires.
//!
//! ```no_run
//! use tessera_verify::Verifier;
//!
//! # async fn run() -> Result<(), tessera_verify::VerifyError> {
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
//! With the default `actix` feature, [`actix::AccessToken`] does this for actix-web
//! handlers and answers failures as RFC 6750 §3 requires.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
mod algorithm;
mod claims;
mod discovery;
mod error;
/// For `fuzz/` only: see the module's documentation.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod jwk;
mod jws;
mod key_cache;
mod verifier;

pub use algorithm::Algorithm;
pub use claims::{Claims, Scopes};
pub use error::VerifyError;
pub use verifier::{Verifier, VerifierBuilder};

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
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
