//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database does,
//! and the process is not stopping).

use crate::http::readiness::Readiness;
use crate::storage::Storage;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(storage: web::Data<dyn Storage>, readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.is_draining() {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "reason": "shutting down" }));
    }
    match storage.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed: database unreachable");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "reason": "database unreachable" }))
        }
    }
}
