//! CORS (Fetch Standard §3.2) for browser apps on another origin: a single-page app with
//! PKCE is a public client that calls `/token`, `/revoke` and `/userinfo` with `fetch`.
//!
//! An actual response names the request's `Origin` in `Access-Control-Allow-Origin` only
//! when that origin is one of the web origins of the client the request is about: the
//! client that authenticated at `/token` and `/revoke`, the client the access token was
//! issued to at `/userinfo`. The handlers record that client ([`answered_client`]);
//! [`allow_client_origin`] adds the headers afterwards, to errors as well, so an app can
//! read `invalid_grant` or a DPoP nonce challenge.
//!
//! A preflight has no body and names no client, so it is answered for an origin any active
//! client registered ([`KnownOrigins`]); the actual request is then checked as above.
//!
//! `Access-Control-Allow-Credentials` is sent only at `/token` and `/revoke`, only for a
//! first-party SPA's origins (its refresh token is a cookie there, `refresh_cookie`).
//! Every other app authenticates with PKCE, tokens and DPoP proofs in headers, never with
//! the browser's cookies. Discovery and the JWK Set are public documents and answer `*`.

use super::refresh_cookie::CSRF_HEADER;
use crate::domain::client::Client;
use crate::domain::web_origin::MAX_ORIGIN_LEN;
use crate::storage::client_cache::KnownOrigins;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use std::sync::Arc;

/// How long a browser may reuse a preflight's answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// Response headers an app needs to read: the DPoP nonce (RFC 9449 §8, §9) and the
/// challenge of a refused token (RFC 6750 §3).
const EXPOSED: &str = "DPoP-Nonce, WWW-Authenticate";

/// The client a request to a CORS-enabled endpoint is about, recorded by its handler.
#[derive(Clone)]
pub struct AnsweredClient(pub Arc<Client>);

/// Records the client `req` is about, whose origins the response may name.
pub fn answered_client(req: &HttpRequest, client: Arc<Client>) {
    req.extensions_mut().insert(AnsweredClient(client));
}

/// The request's `Origin`, when it is one a browser could have sent: bounded, visible
/// ASCII. Anything else names no registered origin and is never looked up.
fn request_origin(req: &HttpRequest) -> Option<String> {
    let origin = req.headers().get(ORIGIN)?.to_str().ok()?;
    (origin.len() <= MAX_ORIGIN_LEN && !origin.is_empty()).then(|| origin.to_owned())
}

/// Middleware for `/userinfo` and `/device_authorization`: names the request's origin
/// when it belongs to the client the handler recorded.
pub async fn allow_client_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    Ok(name_client_origin(response, false))
}

/// Middleware for `/token` and `/revoke`: as [`allow_client_origin`], and with
/// `Access-Control-Allow-Credentials` for a first-party SPA, whose refresh cookie is set
/// and read there.
pub async fn allow_client_origin_with_cookie(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(req).await?;
    Ok(name_client_origin(response, true))
}

fn name_client_origin<B>(mut response: ServiceResponse<B>, cookie_endpoint: bool) -> ServiceResponse<B> {
    let Some(origin) = request_origin(response.request()) else {
        return response;
    };
    let (allowed, credentials) = match response.request().extensions().get::<AnsweredClient>() {
        Some(AnsweredClient(client)) if client.has_web_origin(&origin) => {
            (true, cookie_endpoint && client.first_party_spa)
        }
        _ => (false, false),
    };
    if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            let headers = response.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.append(VARY, HeaderValue::from_static("Origin"));
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
            if credentials {
                headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            }
        }
    }
    response
}

/// `OPTIONS /token` and `OPTIONS /revoke`. A first-party SPA's origin may send its
/// cookie and the refresh cookie's CSRF header.
pub async fn preflight_token(req: HttpRequest, origins: web::Data<KnownOrigins>) -> HttpResponse {
    preflight(&req, &origins, "POST", "Content-Type, Authorization, DPoP", true).await
}

/// `OPTIONS /device_authorization`.
pub async fn preflight_device(req: HttpRequest, origins: web::Data<KnownOrigins>) -> HttpResponse {
    preflight(&req, &origins, "POST", "Content-Type, Authorization, DPoP", false).await
}

/// `OPTIONS /userinfo`.
pub async fn preflight_userinfo(req: HttpRequest, origins: web::Data<KnownOrigins>) -> HttpResponse {
    preflight(&req, &origins, "GET, POST", "Authorization, DPoP", false).await
}

/// 204 in every case; the CORS headers only for an origin an active client registered,
/// so the browser stops any other origin before the actual request.
async fn preflight(
    req: &HttpRequest,
    origins: &KnownOrigins,
    methods: &'static str,
    headers: &'static str,
    cookie_endpoint: bool,
) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    response.insert_header((VARY, "Origin"));
    let Some(origin) = request_origin(req) else {
        return response.finish();
    };
    let first_party_spa = match origins.lookup(&origin).await {
        Ok(Some(first_party_spa)) => first_party_spa,
        Ok(None) => return response.finish(),
        Err(error) => {
            // The preflight fails closed; the app sees a CORS error and may retry.
            tracing::warn!(%error, "cannot read the registered web origins for a CORS preflight");
            return response.finish();
        }
    };
    if cookie_endpoint && first_party_spa {
        response
            .insert_header((ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, format!("{headers}, {CSRF_HEADER}")));
    } else {
        response.insert_header((ACCESS_CONTROL_ALLOW_HEADERS, headers));
    }
    response
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
        .insert_header((ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .finish()
}
