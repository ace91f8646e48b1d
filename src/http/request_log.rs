//! One log line per HTTP request, and a span around the request's work; the request
//! metrics are counted here too.
//!
//! The line names the path only, never the query string, and no header or body is
//! logged: that is where codes, tokens and secrets travel. The span carries the request
//! id, so every event logged while handling the request (a failed login, a refresh-token
//! reuse) can be tied to the request line and to the `X-Request-Id` the client saw.

use crate::metrics::Metrics;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Data;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id the client sent, if it is safe to log and echo: 1 to 64 characters of
/// `[A-Za-z0-9._-]`. Anything else is replaced by a fresh id.
fn client_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let is_safe = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    is_safe.then(|| value.to_owned())
}

/// Middleware: runs the request inside a `request` span (method, path, request id), then
/// logs method, path, status and latency, and echoes the request id.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let request_id = client_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", method = %req.method(), path = %req.path(), request_id = %request_id);
    let mut response = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let elapsed = start.elapsed();
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), latency_us = elapsed.as_micros() as u64, "request")
    });
    let request = response.request();
    if let Some(metrics) = request.app_data::<Data<Metrics>>() {
        // The route template, never the path: label values a stranger cannot choose.
        let route = request.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let method = match request.method().as_str() {
            known @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => known,
            _ => "other",
        };
        metrics.observe_request(&route, method, response.status().as_u16(), elapsed.as_secs_f64());
    }
    Ok(response)
}
