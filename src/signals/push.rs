//! Push delivery (RFC 8935; SSF §6.1.1): a background task per replica posts each owed
//! SET to its stream's `endpoint_url`, with the receiver's `authorization_header`.
//!
//! At least once: a delivery leaves the database only when the receiver answered 202 (or
//! refused the SET for good), so a crash between the revocation's commit and the POST
//! only delays it. Replicas share the work through leases on the delivery rows. Failures
//! are retried with a doubling wait (1 s, 2 s, 4 s … up to `push_max_backoff`), for the
//! whole stream, until the receiver accepts the SET or every token it concerns has expired.
//!
//! Attempts run as a pipeline, not in rounds: up to [`IN_FLIGHT`] at once, and a place
//! freed by one is filled at once, so an endpoint that answers slowly (up to
//! `push_timeout`) delays only its own stream. The claim keeps it fair (one SET in flight
//! per stream, [`PER_RECEIVER`] per receiver; see `SignalStore::claim_pushes`).

use super::set::{self, Delivered};
use crate::clock::Clock;
use crate::domain::signals::{Delivery, Stream};
use crate::http::outbound::OutboundPolicy;
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::SigningKeys;
use crate::storage::{PushAttempt, PushOutcome, Storage};
use chrono::Duration;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::task::{JoinHandle, JoinSet};

/// Attempts in flight at once, per replica.
const IN_FLIGHT: usize = 64;
/// Attempts in flight at once for one receiver (over all its streams), per claim.
const PER_RECEIVER: i64 = 4;
/// The most of an error response read (its `err` and `description`).
const MAX_RESPONSE: usize = 4096;
/// How often due retries are looked for when nothing wakes the dispatcher.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// What the dispatcher needs, cloned once into its task.
pub struct Pusher {
    pub storage: Arc<dyn Storage>,
    pub keys: Arc<SigningKeys>,
    pub kek: Arc<KeyEncryptionKey>,
    pub clock: Arc<dyn Clock>,
    pub issuer: String,
    pub timeout: std::time::Duration,
    pub max_backoff: Duration,
    pub policy: OutboundPolicy,
}

impl Pusher {
    /// Runs the dispatcher until the task is aborted (the server stops).
    pub fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        let client = self.policy.client(self.timeout)?;
        let pusher = Arc::new(self);
        Ok(tokio::spawn(async move {
            let mut signal = pusher.storage.events_signal();
            let mut in_flight = JoinSet::new();
            loop {
                signal.borrow_and_update();
                let room = IN_FLIGHT - in_flight.len();
                let filled = if room == 0 {
                    false
                } else {
                    match pusher.claim(room).await {
                        Ok(attempts) => {
                            let filled = attempts.len() == room;
                            for attempt in attempts {
                                let (pusher, client) = (pusher.clone(), client.clone());
                                in_flight.spawn(async move { pusher.deliver(&client, attempt).await });
                            }
                            filled
                        }
                        Err(error) => {
                            tracing::warn!(error = ?error, "claiming Shared Signals pushes failed; will retry");
                            false
                        }
                    }
                };
                if filled {
                    continue; // more may be due
                }
                // Wait for a place to free, a new event, or the time of a retry.
                tokio::select! {
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = signal.changed() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }))
    }

    /// Claims up to `room` due deliveries, leased for one attempt.
    async fn claim(&self, room: usize) -> anyhow::Result<Vec<PushAttempt>> {
        let now = self.clock.now();
        let lease = Duration::from_std(self.timeout).unwrap_or(Duration::MAX) + Duration::seconds(5);
        let room = i64::try_from(room).unwrap_or(i64::MAX);
        Ok(self.storage.claim_pushes(now, now + lease, room, PER_RECEIVER).await?)
    }

    /// One attempt and its settlement. A settlement that fails leaves the lease to expire:
    /// the SET is then sent again (at least once).
    async fn deliver(&self, client: &reqwest::Client, attempt: PushAttempt) {
        let outcome = self.attempt(client, &attempt).await;
        if let Err(error) = self.storage.settle_push(&attempt.stream.id, &attempt.set.jti, &outcome).await {
            tracing::warn!(error = ?error, stream_id = %attempt.stream.id, "settling a Shared Signals push failed");
        }
    }

    async fn attempt(&self, client: &reqwest::Client, attempt: &PushAttempt) -> PushOutcome {
        let stream = &attempt.stream;
        let outcome = match self.send(client, attempt).await {
            Ok(outcome) => outcome,
            Err(error) => self.retry(attempt, error),
        };
        match &outcome {
            PushOutcome::Delivered => {
                tracing::debug!(stream_id = %stream.id, jti = %attempt.set.jti, "SET delivered");
            }
            PushOutcome::Dropped { error } => {
                tracing::warn!(stream_id = %stream.id, jti = %attempt.set.jti, error = %error,
                    "the receiver refused a SET for good; it is not sent again");
            }
            PushOutcome::Retry { at, error } => {
                tracing::info!(stream_id = %stream.id, jti = %attempt.set.jti, attempts = attempt.attempts,
                    retry_at = %at, error = %error, "SET not delivered; will retry");
            }
        }
        outcome
    }

    /// The next attempt after `attempt` failed: 1 s doubled per attempt, at most
    /// `max_backoff`.
    fn retry(&self, attempt: &PushAttempt, error: String) -> PushOutcome {
        let doublings = (attempt.attempts - 1).clamp(0, 20) as u32;
        let wait = Duration::seconds(1i64 << doublings).min(self.max_backoff);
        PushOutcome::Retry { at: self.clock.now() + wait, error }
    }

    async fn send(&self, client: &reqwest::Client, attempt: &PushAttempt) -> Result<PushOutcome, String> {
        let stream = &attempt.stream;
        let Delivery::Push { endpoint_url, authorization_header } = &stream.delivery else {
            return Ok(PushOutcome::Dropped { error: "the stream no longer uses push delivery".into() });
        };
        // An IP-literal host never reaches the guarded resolver: checked here, every time.
        if let Err(refused) = self.policy.check_url(endpoint_url) {
            return Err(format!("endpoint refused: {refused}"));
        }
        let key = self.keys.snapshot().current.clone();
        let delivered = Delivered {
            event: &attempt.set.event,
            audience: stream.receiver.as_str(),
            jti: &attempt.set.jti,
            issued_at: attempt.set.issued_at,
        };
        let token = set::encode(&key, &self.issuer, &delivered).map_err(|e| format!("encoding the SET: {e}"))?;
        let mut request = client
            .post(endpoint_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(token);
        if let Some(sealed) = authorization_header {
            let header = open_authorization(&self.kek, stream, &sealed.0)?;
            request = request.header(reqwest::header::AUTHORIZATION, header);
        }
        let response = request.send().await.map_err(|e| format!("{}", without_url(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(PushOutcome::Delivered);
        }
        let body = read_limited(response).await;
        if status == reqwest::StatusCode::BAD_REQUEST {
            // RFC 8935 §2.3–2.4: `err` says why. A SET the receiver cannot parse or whose
            // key, issuer or audience it rejects fails the same way every time; a credential
            // problem may be fixed on its side, so it is retried.
            let err = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("err").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "no err code".to_owned());
            let error = format!("400 {}", sanitize(&err));
            if matches!(err.as_str(), "invalid_request" | "invalid_key" | "invalid_issuer" | "invalid_audience") {
                return Ok(PushOutcome::Dropped { error });
            }
            return Err(error);
        }
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// The stream's `authorization_header`, sealed under the key-encryption key with the
/// stream's id as associated data (so a sealed header cannot be moved to another stream).
pub fn seal_authorization(kek: &KeyEncryptionKey, stream_id: &str, header: &str) -> anyhow::Result<Vec<u8>> {
    kek.seal(header.as_bytes(), stream_id.as_bytes())
}

fn open_authorization(kek: &KeyEncryptionKey, stream: &Stream, sealed: &[u8]) -> Result<String, String> {
    let plain = kek.open(sealed, stream.id.as_bytes()).map_err(|_| "the authorization header does not decrypt")?;
    String::from_utf8(plain).map_err(|_| "the authorization header is not text".to_owned())
}

/// reqwest errors name the URL, which a receiver may have put a secret in (a query token).
fn without_url(error: reqwest::Error) -> reqwest::Error {
    error.without_url()
}

/// At most [`MAX_RESPONSE`] bytes of a response body.
async fn read_limited(response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = MAX_RESPONSE - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE {
            break;
        }
    }
    body
}

/// A receiver's text, safe for a log line: printable ASCII, at most 64 characters.
fn sanitize(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect()
}
