//! The status endpoint (SSF §8.1.2): a receiver reads its stream's status, or enables,
//! pauses or disables it itself (no stream-updated event then: it knows).

use super::error::SsfError;
use super::receiver::Receiver;
use super::{json_body, stream_id_query, Transmitter};
use crate::clock::Clock;
use crate::domain::signals::{Stream, StreamStatus, MAX_DESCRIPTION_LEN};
use crate::storage::Storage;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct StatusBody {
    stream_id: String,
    status: String,
    reason: Option<String>,
}

fn status_of(stream: &Stream) -> HttpResponse {
    let mut body = json!({ "stream_id": stream.id, "status": stream.status.as_str() });
    if let Some(reason) = &stream.status_reason {
        body["reason"] = json!(reason);
    }
    HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(body)
}

/// GET ?stream_id= (§8.1.2.1).
pub async fn read(
    req: HttpRequest,
    receiver: Receiver,
    storage: web::Data<dyn Storage>,
) -> Result<HttpResponse, SsfError> {
    receiver.reads()?;
    let id = stream_id_query(req.query_string())?.ok_or_else(|| SsfError::invalid("stream_id is required"))?;
    Ok(status_of(&receiver.find_stream(&**storage, &id).await?))
}

/// POST (§8.1.2.2).
pub async fn update(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    receiver.manages()?;
    let body: StatusBody = json_body(&body)?;
    let status = StreamStatus::parse(&body.status).map_err(|e| SsfError::invalid(e.to_string()))?;
    if body.reason.as_ref().is_some_and(|r| r.len() > MAX_DESCRIPTION_LEN) {
        return Err(SsfError::invalid("reason is too long"));
    }
    // PostgreSQL refuses U+0000 in text: a control character is the receiver's mistake, a 400.
    if body.reason.as_ref().is_some_and(|r| r.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))) {
        return Err(SsfError::invalid("reason must not contain control characters"));
    }
    let mut stream = receiver.find_stream(&**storage, &body.stream_id).await?;
    let now = clock.now();
    let seed_since = transmitter.emitter.seed_since(now);
    if !storage.set_stream_status(&stream.id, status, body.reason.as_deref(), now, seed_since, None).await? {
        return Err(SsfError::NotFound);
    }
    tracing::info!(event = "ssf_stream_status", stream_id = %stream.id, client_id = %receiver.client_id,
        status = status.as_str(), "Shared Signals stream status set by its receiver");
    (stream.status, stream.status_reason) = (status, body.reason);
    Ok(status_of(&stream))
}
