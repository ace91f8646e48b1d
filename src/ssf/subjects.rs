//! The add- and remove-subject endpoints (SSF §8.1.3). Tessera's streams carry every
//! subject (`default_subjects: ALL`): a revocation feed that could leave a person out would
//! let that person's revoked tokens through. So adding a subject is accepted and changes
//! nothing, and removing one is acknowledged and changes nothing either (§9.3: the
//! transmitter MAY keep sending events about a removed subject). Both check the stream
//! and the subject's shape, so a receiver's mistake is still a 400 or 404.

use super::error::SsfError;
use super::json_body;
use super::receiver::Receiver;
use crate::storage::Storage;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct SubjectBody {
    stream_id: String,
    subject: Value,
    #[serde(default)]
    #[allow(dead_code)]
    verified: Option<bool>,
}

async fn check(receiver: &Receiver, body: &[u8], storage: &dyn Storage) -> Result<(), SsfError> {
    receiver.manages()?;
    let body: SubjectBody = json_body(body)?;
    // RFC 9493 §3: a subject identifier is an object with a `format`.
    if !body.subject.get("format").is_some_and(Value::is_string) {
        return Err(SsfError::invalid("subject must be a subject identifier with a format (RFC 9493 §3)"));
    }
    receiver.find_stream(storage, &body.stream_id).await?;
    Ok(())
}

/// POST add (§8.1.3.2): 200.
pub async fn add(receiver: Receiver, body: Bytes, storage: web::Data<dyn Storage>) -> Result<HttpResponse, SsfError> {
    check(&receiver, &body, &**storage).await?;
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).finish())
}

/// POST remove (§8.1.3.3): 204.
pub async fn remove(
    receiver: Receiver,
    body: Bytes,
    storage: web::Data<dyn Storage>,
) -> Result<HttpResponse, SsfError> {
    check(&receiver, &body, &**storage).await?;
    Ok(HttpResponse::NoContent().insert_header((CACHE_CONTROL, "no-store")).finish())
}
