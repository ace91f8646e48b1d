//! The verification endpoint (SSF §8.1.4.2): the receiver asks for a verification event,
//! which echoes its `state`, to check that the stream delivers end to end. At most one
//! per `min_verification_interval` (429 sooner, decided in one statement).

use super::error::SsfError;
use super::receiver::Receiver;
use super::{json_body, Transmitter};
use crate::clock::Clock;
use crate::domain::signals::MAX_VALUE_LEN;
use crate::storage::{Storage, Verification};
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Deserialize;

#[derive(Deserialize)]
struct VerifyBody {
    stream_id: String,
    state: Option<String>,
}

pub async fn request(
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    receiver.manages()?;
    let body: VerifyBody = json_body(&body)?;
    if body.state.as_ref().is_some_and(|s| s.len() > MAX_VALUE_LEN) {
        return Err(SsfError::invalid("state is too long"));
    }
    let stream = receiver.find_stream(&**storage, &body.stream_id).await?;
    let event = transmitter.emitter.stream_cause(clock.now()).verification(&stream.id, body.state.as_deref());
    match storage.request_verification(&event, transmitter.min_verification_interval).await? {
        Verification::Requested => Ok(HttpResponse::NoContent().insert_header((CACHE_CONTROL, "no-store")).finish()),
        Verification::TooSoon => {
            Err(SsfError::TooSoon { retry_after_seconds: transmitter.min_verification_interval.num_seconds() })
        }
        Verification::NoStream => Err(SsfError::NotFound),
    }
}
