//! JWK Set (RFC 7517 §5) at the `jwks_uri`: public members only, cacheable, with an ETag
//! so verifiers can revalidate cheaply.

use crate::tokens::TokenIssuer;
use actix_web::http::header::{CacheControl, CacheDirective, ACCESS_CONTROL_ALLOW_ORIGIN, ETAG, IF_NONE_MATCH};
use actix_web::{web, HttpRequest, HttpResponse};

/// How long verifiers may cache the JWKS (`keys.jwks_max_age`).
pub struct JwksMaxAge(pub u32);

pub async fn get(req: HttpRequest, issuer: web::Data<TokenIssuer>, max_age: web::Data<JwksMaxAge>) -> HttpResponse {
    let keys = issuer.keys.snapshot();
    let is_fresh = if_none_match(&req, &keys.jwks_etag);
    let mut response = if is_fresh { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(max_age.0),
            CacheDirective::MustRevalidate,
        ]))
        .insert_header((ETAG, keys.jwks_etag.as_str()))
        // Public keys: any browser app may read them (no credentials are involved).
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if is_fresh {
        return response.finish();
    }
    response.content_type("application/json").body(keys.jwks_body.clone())
}

/// RFC 9110 §13.1.2: a list of entity tags, or `*`.
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|value| value.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag))
}
