//! `Authorization: Bearer <token>` (RFC 6750 §2.1), or `DPoP <token>` (RFC 9449 §7.1), for
//! every endpoint that takes an access token. Only the header: tokens in query strings end up in logs (§2.3, and the
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
    match access_token(req)? {
        (Scheme::Bearer, token) => Ok(token),
        (Scheme::Dpop, _) => Err(NoBearer::Malformed("expected Authorization: Bearer <token>")),
    }
}

/// How an access token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 §2.1.
    Bearer,
    /// RFC 9449 §7.1: with a proof in the `DPoP` header.
    Dpop,
}

/// The scheme and token of the request's `Authorization` header (`Bearer` or `DPoP`, case
/// insensitive as every auth-scheme, RFC 9110 §11.1).
pub fn access_token(req: &HttpRequest) -> Result<(Scheme, &str), NoBearer> {
    let Some(header) = req.headers().get(AUTHORIZATION) else { return Err(NoBearer::Missing) };
    let header = header.to_str().map_err(|_| NoBearer::Malformed("malformed Authorization header"))?;
    let malformed = NoBearer::Malformed("expected Authorization: Bearer <token> or DPoP <token>");
    let Some((scheme, token)) = header.split_once(' ') else { return Err(malformed) };
    let token = token.trim();
    if token.is_empty() {
        return Err(malformed);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok((Scheme::Bearer, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Ok((Scheme::Dpop, token))
    } else {
        Err(malformed)
    }
}
