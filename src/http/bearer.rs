//! `Authorization: Bearer <token>` (RFC 6750 §2.1), for every endpoint that takes an
//! access token. Only the header: tokens in query strings end up in logs (§2.3, and the
//! CAEP interoperability profile §2.7.3 forbids them).

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;

/// Why a request carries no usable bearer token (RFC 6750 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoBearer {
    /// No `Authorization` header: answered with a bare challenge.
    Missing,
    /// A header that is not `Bearer <token>`: `invalid_request`.
    Malformed(&'static str),
}

/// The token of the request's `Authorization: Bearer` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, NoBearer> {
    let Some(header) = req.headers().get(AUTHORIZATION) else { return Err(NoBearer::Missing) };
    let header = header.to_str().map_err(|_| NoBearer::Malformed("malformed Authorization header"))?;
    match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(NoBearer::Malformed("expected Authorization: Bearer <token>")),
    }
}
