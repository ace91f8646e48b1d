//! The stream configuration endpoint (SSF §8.1.1): create (POST), read (GET), update
//! (PATCH), replace (PUT) and delete (DELETE) a receiver's streams.

use super::error::SsfError;
use super::receiver::Receiver;
use super::{json_body, stream_id_query, Transmitter};
use crate::clock::Clock;
use crate::domain::signals::MAX_VALUE_LEN;
use crate::domain::signals::{
    new_id, parse_events_requested, truncate_description, Delivery, EventType, Sealed, Stream, StreamStatus, POLL, PUSH,
};
use crate::signals::push::seal_authorization;
use crate::storage::Storage;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

/// A configuration as a receiver sends it: the receiver-supplied members, and the
/// transmitter-supplied ones it may echo (which must then match, §8.1.1.3). Unknown
/// members are ignored.
#[derive(Deserialize)]
struct StreamBody {
    stream_id: Option<String>,
    events_requested: Option<Vec<String>>,
    delivery: Option<DeliveryBody>,
    description: Option<String>,
    iss: Option<Value>,
    aud: Option<Value>,
    events_supported: Option<Value>,
    events_delivered: Option<Value>,
    min_verification_interval: Option<Value>,
    inactivity_timeout: Option<Value>,
}

#[derive(Deserialize)]
struct DeliveryBody {
    method: String,
    endpoint_url: Option<String>,
    authorization_header: Option<String>,
}

/// SSF §8.1.1 configuration of `stream`, as the receiver sees it. Its push
/// `authorization_header` is a secret it gave: never shown again.
pub fn describe(transmitter: &Transmitter, stream: &Stream) -> Value {
    let delivery = match &stream.delivery {
        Delivery::Poll => json!({ "method": POLL, "endpoint_url": transmitter.poll_url(&stream.id) }),
        Delivery::Push { endpoint_url, .. } => json!({ "method": PUSH, "endpoint_url": endpoint_url.as_str() }),
    };
    let mut config = json!({
        "stream_id": stream.id,
        "iss": transmitter.emitter.issuer(),
        "aud": stream.receiver.as_str(),
        "events_supported": EventType::SUPPORTED.iter().map(|t| t.uri()).collect::<Vec<_>>(),
        "events_delivered": stream.events_delivered().iter().map(|t| t.uri()).collect::<Vec<_>>(),
        "delivery": delivery,
        "min_verification_interval": transmitter.min_verification_interval.num_seconds(),
    });
    if let Some(requested) = &stream.events_requested {
        config["events_requested"] = json!(requested);
    }
    if matches!(stream.delivery, Delivery::Poll) {
        config["inactivity_timeout"] = json!(transmitter.inactivity_timeout.num_seconds());
    }
    if let Some(description) = &stream.description {
        config["description"] = json!(description);
    }
    config
}

/// The receiver-supplied `delivery` of stream `stream_id`; none given means poll
/// (§8.1.1.1). A push endpoint must pass the SSRF guard; its authorization header is
/// sealed at once.
fn parse_delivery(
    transmitter: &Transmitter,
    stream_id: &str,
    body: Option<DeliveryBody>,
) -> Result<Delivery, SsfError> {
    let Some(body) = body else { return Ok(Delivery::Poll) };
    match body.method.as_str() {
        POLL => Ok(Delivery::Poll),
        PUSH => {
            let raw = body.endpoint_url.ok_or_else(|| SsfError::invalid("push delivery needs an endpoint_url"))?;
            if raw.len() > MAX_VALUE_LEN {
                return Err(SsfError::invalid("endpoint_url is too long"));
            }
            let endpoint_url: url::Url = raw.parse().map_err(|_| SsfError::invalid("endpoint_url is not a URL"))?;
            transmitter.policy.check_url(&endpoint_url).map_err(|refused| SsfError::invalid(refused.to_string()))?;
            let authorization_header = match body.authorization_header {
                None => None,
                Some(header) => {
                    // It is sent back as an HTTP header value: visible ASCII and spaces only.
                    let is_header_value = !header.is_empty()
                        && header.len() <= MAX_VALUE_LEN
                        && header.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
                    if !is_header_value {
                        return Err(SsfError::invalid("authorization_header is not a valid header value"));
                    }
                    Some(Sealed(seal_authorization(&transmitter.kek, stream_id, &header)?))
                }
            };
            Ok(Delivery::Push { endpoint_url, authorization_header })
        }
        _ => Err(SsfError::invalid("delivery.method must be urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)")),
    }
}

fn parse_requested(requested: Option<Vec<String>>) -> Result<Option<Vec<String>>, SsfError> {
    requested.map(parse_events_requested).transpose().map_err(|e| SsfError::invalid(e.to_string()))
}

fn answer(status: StatusCode, body: Value) -> HttpResponse {
    HttpResponse::build(status).insert_header((CACHE_CONTROL, "no-store")).json(body)
}

/// POST: a new stream (§8.1.1.1), enabled, owed the events that still matter.
pub async fn create(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    receiver.manages()?;
    let body: StreamBody = json_body(&body)?;
    let now = clock.now();
    let id = new_id();
    let stream = Stream {
        delivery: parse_delivery(&transmitter, &id, body.delivery)?,
        id,
        receiver: receiver.client_id.clone(),
        events_requested: parse_requested(body.events_requested)?,
        description: body.description.map(truncate_description),
        status: StreamStatus::Enabled,
        status_reason: None,
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        last_verification_at: None,
    };
    let max = transmitter.max_streams_per_receiver;
    if !storage.insert_stream(&stream, max, transmitter.emitter.seed_since(now)).await? {
        return Err(SsfError::Conflict(
            format!("this receiver already has {max} streams: delete one it no longer uses (DELETE ?stream_id=…)")
                .into(),
        ));
    }
    tracing::info!(event = "ssf_stream_created", stream_id = %stream.id, client_id = %receiver.client_id,
        method = stream.delivery.method(), "Shared Signals stream created");
    Ok(answer(StatusCode::CREATED, describe(&transmitter, &stream)))
}

/// GET: one stream by `stream_id`, or all of the receiver's (§8.1.1.2).
pub async fn read(
    req: HttpRequest,
    receiver: Receiver,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
) -> Result<HttpResponse, SsfError> {
    receiver.reads()?;
    match stream_id_query(req.query_string())? {
        Some(id) => {
            let stream = receiver.find_stream(&**storage, &id).await?;
            Ok(answer(StatusCode::OK, describe(&transmitter, &stream)))
        }
        None => {
            let streams = storage.list_streams(Some(&receiver.client_id)).await?;
            Ok(answer(StatusCode::OK, Value::Array(streams.iter().map(|s| describe(&transmitter, s)).collect())))
        }
    }
}

/// PATCH (§8.1.1.3): the receiver-supplied members present change, the others stay.
pub async fn update(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    change(receiver, body, transmitter, storage, clock, false).await
}

/// PUT (§8.1.1.4): every receiver-supplied member is replaced; a missing one is removed.
pub async fn replace(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    change(receiver, body, transmitter, storage, clock, true).await
}

async fn change(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
    is_replace: bool,
) -> Result<HttpResponse, SsfError> {
    receiver.manages()?;
    let body: StreamBody = json_body(&body)?;
    let id = body.stream_id.as_deref().ok_or_else(|| SsfError::invalid("stream_id is required"))?;
    let mut stream = receiver.find_stream(&**storage, id).await?;
    // Transmitter-supplied members may be sent back, but only as they are (§8.1.1.3);
    // `events_delivered` as it was before this change.
    let current = describe(&transmitter, &stream);
    let echoed = [
        ("iss", &body.iss),
        ("aud", &body.aud),
        ("events_supported", &body.events_supported),
        ("events_delivered", &body.events_delivered),
        ("min_verification_interval", &body.min_verification_interval),
        ("inactivity_timeout", &body.inactivity_timeout),
    ];
    for (name, value) in echoed {
        if value.as_ref().is_some_and(|v| Some(v) != current.get(name)) {
            return Err(SsfError::invalid(format!("{name} is the transmitter's and cannot be changed")));
        }
    }
    if is_replace || body.events_requested.is_some() {
        stream.events_requested = parse_requested(body.events_requested)?;
    }
    if is_replace || body.delivery.is_some() {
        stream.delivery = parse_delivery(&transmitter, &stream.id, body.delivery)?;
    }
    if is_replace || body.description.is_some() {
        stream.description = body.description.map(truncate_description);
    }
    stream.updated_at = clock.now();
    if !storage.update_stream(&stream).await? {
        return Err(SsfError::NotFound);
    }
    Ok(answer(StatusCode::OK, describe(&transmitter, &stream)))
}

/// DELETE ?stream_id= (§8.1.1.5): the stream and what it is owed.
pub async fn delete(
    req: HttpRequest,
    receiver: Receiver,
    storage: web::Data<dyn Storage>,
) -> Result<HttpResponse, SsfError> {
    receiver.manages()?;
    let id = stream_id_query(req.query_string())?.ok_or_else(|| SsfError::invalid("stream_id is required"))?;
    let stream = receiver.find_stream(&**storage, &id).await?;
    storage.delete_stream(&stream.id).await?;
    tracing::info!(event = "ssf_stream_deleted", stream_id = %stream.id, client_id = %receiver.client_id,
        "Shared Signals stream deleted");
    Ok(HttpResponse::NoContent().insert_header((CACHE_CONTROL, "no-store")).finish())
}
