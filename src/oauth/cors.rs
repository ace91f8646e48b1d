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
//! `Access-Control-Allow-Credentials` is never sent: the app authenticates with PKCE,
//! tokens and DPoP proofs in headers, never with the browser's cookies. Discovery and the
//! JWK Set are public documents and answer `*`.

use crate::domain::client::Client;
use crate::domain::web_origin::MAX_ORIGIN_LEN;
use crate::storage::client_cache::KnownOrigins;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ORIGIN, VARY,
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

/// Middleware for `/token`, `/revoke` and `/userinfo`: names the request's origin when it
/// belongs to the client the handler recorded.
pub async fn allow_client_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let Some(origin) = request_origin(response.request()) else {
        return Ok(response);
    };
    let allowed = response
        .request()
        .extensions()
        .get::<AnsweredClient>()
        .is_some_and(|AnsweredClient(client)| client.has_web_origin(&origin));
    if allowed {
        if let Ok(value) = HeaderValue::from_str(&origin) {
            let headers = response.headers_mut();
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.append(VARY, HeaderValue::from_static("Origin"));
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        }
    }
    Ok(response)
}

/// `OPTIONS /token` and `OPTIONS /revoke`.
pub async fn preflight_token(req: HttpRequest, origins: web::Data<KnownOrigins>) -> HttpResponse {
    preflight(&req, &origins, "POST", "Content-Type, Authorization, DPoP").await
}

/// `OPTIONS /userinfo`.
pub async fn preflight_userinfo(req: HttpRequest, origins: web::Data<KnownOrigins>) -> HttpResponse {
    preflight(&req, &origins, "GET, POST", "Authorization, DPoP").await
}

/// 204 in every case; the CORS headers only for an origin an active client registered,
/// so the browser stops any other origin before the actual request.
async fn preflight(
    req: &HttpRequest,
    origins: &KnownOrigins,
    methods: &'static str,
    headers: &'static str,
) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    response.insert_header((VARY, "Origin"));
    let Some(origin) = request_origin(req) else {
        return response.finish();
    };
    match origins.contains(&origin).await {
        Ok(true) => {}
        Ok(false) => return response.finish(),
        Err(error) => {
            // The preflight fails closed; the app sees a CORS error and may retry.
            tracing::warn!(%error, "cannot read the registered web origins for a CORS preflight");
            return response.finish();
        }
    }
    response
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((ACCESS_CONTROL_ALLOW_METHODS, methods))
        .insert_header((ACCESS_CONTROL_ALLOW_HEADERS, headers))
        .insert_header((ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
        .finish()
}
