//! Poll delivery (RFC 8936; SSF §6.1.2): the receiver acknowledges what it received
//! (`ack`), reports what it could not use (`setErrs`), and gets what it is owed (`sets`),
//! oldest first. With `returnImmediately: false`, the default, the request waits up to
//! `ssf.long_poll_timeout` for a SET (HTTP long polling, RFC 6202 §2): a revocation on any
//! replica wakes it at once (PostgreSQL `NOTIFY`, or in-process on SQLite), so a receiver
//! hears of it within milliseconds without opening an inbound port.

use super::error::SsfError;
use super::receiver::Receiver;
use super::{json_body, Transmitter};
use crate::clock::Clock;
use crate::domain::signals::Delivery;
use crate::signals::set::{self, Delivered};
use crate::storage::{PendingSet, Storage};
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Most `ack` or `setErrs` entries in one request: a full poll's worth, bounded.
const MAX_SETTLED: usize = 1000;
/// How often a waiting long poll looks again without being woken.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest `jti` accepted back (Tessera's are 65 characters).
const MAX_JTI_LEN: usize = 256;

/// RFC 8936 §2.2 request members (camel-case, as the RFC spells them).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PollBody {
    max_events: Option<i64>,
    return_immediately: Option<bool>,
    #[serde(default)]
    ack: Vec<String>,
    #[serde(default)]
    set_errs: HashMap<String, SetError>,
}

/// RFC 8936 §2.2 `setErrs` entry (the error format of RFC 8935 §2.3).
#[derive(Deserialize)]
struct SetError {
    err: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

pub async fn post(
    stream_id: web::Path<String>,
    receiver: Receiver,
    body: Bytes,
    transmitter: web::Data<Transmitter>,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
) -> Result<HttpResponse, SsfError> {
    receiver.reads()?;
    let body: PollBody = if body.is_empty() { PollBody::default() } else { json_body(&body)? };
    let stream = receiver.find_stream(&**storage, &stream_id).await?;
    if !matches!(stream.delivery, Delivery::Poll) {
        return Err(SsfError::NotFound); // a push stream has no poll endpoint
    }
    if body.ack.len() > MAX_SETTLED || body.set_errs.len() > MAX_SETTLED {
        return Err(SsfError::invalid(format!("at most {MAX_SETTLED} ack and {MAX_SETTLED} setErrs entries")));
    }
    let max = match body.max_events {
        None => transmitter.max_events_per_poll,
        Some(n) if n < 0 => return Err(SsfError::invalid("maxEvents must not be negative")),
        Some(n) => n.min(1000),
    };
    let mut settled: Vec<String> = body.ack;
    for (jti, error) in body.set_errs {
        // The receiver could not use this SET (RFC 8936 §2.4.4): it is not sent again, and
        // the operator hears of it. Only the code is logged, cut short: it is the
        // receiver's text (and so is the `jti` key: it is cut the same way).
        let err: String = error.err.chars().filter(|c| c.is_ascii_graphic()).take(40).collect();
        let logged_jti: String = jti.chars().filter(|c| c.is_ascii_graphic()).take(MAX_JTI_LEN).collect();
        tracing::warn!(event = "ssf_set_error", stream_id = %stream.id, jti = %logged_jti, err = %err,
            "a receiver reported a SET it could not use");
        settled.push(jti);
    }
    settled.retain(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN);

    // Subscribed before the first read, so a SET owed between the read and the wait
    // still wakes it.
    let mut signal = storage.events_signal();
    signal.borrow_and_update();
    let mut stopping = transmitter.stopping();
    let (mut sets, mut more) = storage.poll_stream(&stream.id, &settled, max, clock.now()).await?;
    let is_long_poll = !body.return_immediately.unwrap_or(false) && max > 0;
    if sets.is_empty() && is_long_poll {
        // Bounded, per stream and in all: past the bound a poll answers at once, and the
        // receiver polls again.
        if let Some(_waiting) = transmitter.wait_place(&stream.id) {
            let deadline = tokio::time::Instant::now() + transmitter.long_poll_timeout;
            while sets.is_empty() && tokio::time::Instant::now() < deadline && !*stopping.borrow_and_update() {
                // Woken by the signal, and every second regardless: a SET owed by another
                // process writing to the same SQLite file (the CLI) rings no bell here, nor
                // does a PostgreSQL notification lost while its listener reconnected.
                let tick = (tokio::time::Instant::now() + RECHECK).min(deadline);
                tokio::select! {
                    changed = signal.changed() => if changed.is_err() { break },
                    _ = stopping.changed() => break,
                    _ = tokio::time::sleep_until(tick) => {}
                }
                signal.borrow_and_update();
                (sets, more) = storage.owed_sets(&stream.id, max, clock.now()).await?;
            }
        }
    }
    let key = transmitter.keys.snapshot().current.clone();
    let issuer = transmitter.emitter.issuer();
    let mut encoded = Map::with_capacity(sets.len());
    for PendingSet { jti, issued_at, event } in &sets {
        let delivered = Delivered { event, audience: stream.receiver.as_str(), jti, issued_at: *issued_at };
        encoded.insert(jti.clone(), Value::String(set::encode(&key, issuer, &delivered)?));
    }
    let mut answer = Map::new();
    answer.insert("sets".into(), Value::Object(encoded));
    if more {
        answer.insert("moreAvailable".into(), Value::Bool(true));
    }
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).json(Value::Object(answer)))
}
