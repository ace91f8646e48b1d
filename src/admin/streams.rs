//! The Shared Signals receivers' streams as an operator sees them. Disabling one is the
//! transmitter's own decision, so the stream's receiver is told first with a
//! stream-updated event (SSF §8.1.5).

use super::error::{invalid_as, ServiceError};
use super::Page;
use crate::domain::client::ClientId;
use crate::domain::signals::{parse_stream_id, Delivery, Stream, StreamStatus};
use crate::signals::Emitter;
use crate::storage::Storage;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest reason told to the receiver.
const MAX_REASON: usize = 500;

/// What an operator sees of a stream; the push authorization header never.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    pub stream_id: String,
    pub receiver: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: &'static str,
    pub status_reason: Option<String>,
    /// `poll` or `push`.
    pub delivery: &'static str,
    pub endpoint_url: Option<String>,
    pub events_delivered: Vec<&'static str>,
    pub description: Option<String>,
    pub created_at: String,
    pub last_activity_at: String,
}

impl From<&Stream> for StreamView {
    fn from(stream: &Stream) -> Self {
        let (delivery, endpoint_url) = match &stream.delivery {
            Delivery::Poll => ("poll", None),
            Delivery::Push { endpoint_url, .. } => ("push", Some(endpoint_url.to_string())),
        };
        Self {
            stream_id: stream.id.clone(),
            receiver: stream.receiver.as_str().to_owned(),
            status: stream.status.as_str(),
            status_reason: stream.status_reason.clone(),
            delivery,
            endpoint_url,
            events_delivered: stream.events_delivered().iter().map(|t| t.uri()).collect(),
            description: stream.description.clone(),
            created_at: stream.created_at.to_rfc3339(),
            last_activity_at: stream.last_activity_at.to_rfc3339(),
        }
    }
}

/// Why an operator disables a stream (told to its receiver).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableStream {
    pub reason: Option<String>,
}

/// Every stream, or one receiver's.
pub async fn list(storage: &dyn Storage, receiver: Option<&str>) -> Result<Vec<Stream>, ServiceError> {
    let receiver = receiver.map(ClientId::parse).transpose().map_err(invalid_as("receiver"))?;
    Ok(storage.list_streams(receiver.as_ref()).await?)
}

/// A page of every stream, or of one receiver's, oldest first (the admin API's list).
pub async fn list_page(
    storage: &dyn Storage,
    receiver: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Page<Stream>, ServiceError> {
    let receiver = receiver.map(ClientId::parse).transpose().map_err(invalid_as("receiver"))?;
    let not_given = || ServiceError::invalid("cursor", "the cursor is not one this server gave");
    if let Some(after) = after {
        if parse_stream_id(after).is_err() || storage.find_stream(after).await?.is_none() {
            return Err(not_given());
        }
    }
    // One more than asked: whether there is a next page, without a second query.
    let mut items = storage.list_streams_page(receiver.as_ref(), after, i64::from(limit) + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(|stream| stream.id.clone()) } else { None };
    Ok(Page { items, next })
}

pub async fn find(storage: &dyn Storage, stream_id: &str) -> Result<Stream, ServiceError> {
    // An id that cannot be a stream's (control characters, too long) is unknown, never a query
    // PostgreSQL refuses (it cannot hold U+0000); the echo is cleaned for the same reason.
    if parse_stream_id(stream_id).is_err() {
        let shown: String = stream_id.chars().filter(|c| !c.is_control()).take(64).collect();
        return Err(ServiceError::not_found("stream", shown));
    }
    storage.find_stream(stream_id).await?.ok_or_else(|| ServiceError::not_found("stream", stream_id))
}

/// Disables a stream after telling its receiver; false when it was disabled already.
pub async fn disable(
    storage: &dyn Storage,
    events: &Emitter,
    stream_id: &str,
    reason: Option<&str>,
) -> Result<bool, ServiceError> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON || r.chars().any(char::is_control)) {
        return Err(ServiceError::invalid("reason", format!("at most {MAX_REASON} characters, no control characters")));
    }
    let stream = find(storage, stream_id).await?;
    if stream.status == StreamStatus::Disabled {
        return Ok(false);
    }
    let now = Utc::now();
    let announcement = events.stream_cause(now).stream_updated(&stream.id, StreamStatus::Disabled, reason);
    let seed_since = events.seed_since(now);
    storage.set_stream_status(&stream.id, StreamStatus::Disabled, reason, now, seed_since, Some(&announcement)).await?;
    Ok(true)
}
