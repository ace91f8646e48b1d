//! Provider metadata: OpenID Connect Discovery 1.0 §3 at `/.well-known/openid-configuration`
//! and RFC 8414 §2 at `/.well-known/oauth-authorization-server`. Lists only what is
//! implemented; serialised once at startup.

use crate::config::Issuer;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Serialize;

pub struct Discovery {
    body: Bytes,
}

#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    token_endpoint: String,
    jwks_uri: String,
    /// RFC 8414 §2 REQUIRED; empty until the authorization endpoint exists.
    response_types_supported: [&'a str; 0],
    grant_types_supported: [&'a str; 1],
    token_endpoint_auth_methods_supported: [&'a str; 2],
    /// OpenID Connect Discovery §3 REQUIRED members.
    subject_types_supported: [&'a str; 1],
    id_token_signing_alg_values_supported: [&'a str; 1],
}

impl Discovery {
    pub fn new(issuer: &Issuer) -> Self {
        let metadata = Metadata {
            issuer: issuer.as_str(),
            token_endpoint: issuer.endpoint("/token"),
            jwks_uri: issuer.endpoint("/jwks.json"),
            response_types_supported: [],
            grant_types_supported: ["client_credentials"],
            token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: ["RS256"],
        };
        let body = serde_json::to_vec(&metadata).expect("metadata serialises");
        Self { body: Bytes::from(body) }
    }
}

pub async fn get(discovery: web::Data<Discovery>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::Public, CacheDirective::MaxAge(3600)]))
        .content_type("application/json")
        .body(discovery.body.clone())
}
