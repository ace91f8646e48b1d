//! The OpenID Shared Signals transmitter's HTTP surface: metadata (SSF 1.0 §7), stream
//! management (§8.1: configuration, status, subjects, verification) and poll delivery
//! (RFC 8936). Push delivery is `signals::push`; which revocation records which event is
//! `revocation` and `domain::signals`.
//!
//! Tessera's choices where SSF leaves them open (README, "Revocation that reaches every
//! service"): receivers are clients with `ssf.manage`/`ssf.read`; a receiver may have
//! several streams (one per instance of a service), up to `ssf.max_streams_per_receiver`;
//! every subject is always in every stream (`default_subjects: ALL`: a revocation feed
//! that could drop a person would let that person's revoked tokens through), so adding a
//! subject changes nothing and removing one is acknowledged and ignored (§9.3 lets a
//! transmitter keep sending); a new stream, or one enabled again after being disabled,
//! is owed the events that still matter (SSF has no replay); a paused stream holds its
//! events until they stop mattering.

pub mod error;
mod poll;
mod receiver;
mod status;
mod streams;
mod subjects;
mod verification;

use crate::config::Settings;
use crate::domain::signals::{POLL, PUSH, SPEC_VERSION};
use crate::http::outbound::OutboundPolicy;
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::SigningKeys;
use crate::signals::Emitter;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use error::SsfError;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// Largest JSON body of a management or poll request (acknowledgements of a full poll fit).
const BODY_LIMIT: usize = 64 * 1024;
/// Long polls waiting at once; past this a poll answers at once (what it holds is a task
/// and a socket, no database connection, but it is bounded all the same).
const MAX_WAITING_POLLS: usize = 4096;
/// Long polls of one stream waiting at once: one poller per stream, and room for a poll
/// that overlaps one its poller gave up on. Each waiting poll reads the database every
/// second and at every revocation, so without this one receiver could multiply that load
/// and take every place under `MAX_WAITING_POLLS` from the others.
const MAX_WAITING_PER_STREAM: usize = 4;

/// The transmitter's settings and keys, built once at startup.
pub struct Transmitter {
    pub emitter: Emitter,
    pub keys: Arc<SigningKeys>,
    /// Seals receivers' push `authorization_header`s at rest.
    pub kek: Arc<KeyEncryptionKey>,
    /// Which push endpoints may be registered (SSRF guard, `http::outbound`).
    pub policy: OutboundPolicy,
    pub max_streams_per_receiver: i64,
    pub long_poll_timeout: std::time::Duration,
    pub max_events_per_poll: i64,
    pub inactivity_timeout: chrono::Duration,
    pub min_verification_interval: chrono::Duration,
    metadata: Bytes,
    waiting_polls: Arc<Semaphore>,
    /// Long polls waiting, per stream id (entries removed at zero).
    waiting_per_stream: Arc<Mutex<HashMap<String, usize>>>,
    /// Set when the server stops: waiting long polls answer at once.
    stopping: watch::Sender<bool>,
}

impl Transmitter {
    pub fn new(settings: &Settings, keys: Arc<SigningKeys>, kek: Arc<KeyEncryptionKey>) -> Self {
        let issuer = &settings.issuer;
        let ssf = &settings.ssf;
        // SSF §7.1 (and the CAEP interoperability profile §2.3: spec_version, both delivery
        // methods, jwks_uri, configuration, status and verification endpoints, OAuth).
        let metadata = json!({
            "spec_version": SPEC_VERSION,
            "issuer": issuer.as_str(),
            "jwks_uri": issuer.endpoint("/jwks.json"),
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": issuer.endpoint("/ssf/streams"),
            "status_endpoint": issuer.endpoint("/ssf/status"),
            "add_subject_endpoint": issuer.endpoint("/ssf/subjects/add"),
            "remove_subject_endpoint": issuer.endpoint("/ssf/subjects/remove"),
            "verification_endpoint": issuer.endpoint("/ssf/verify"),
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
            "default_subjects": "ALL",
        });
        Self {
            emitter: Emitter::from_settings(settings),
            keys,
            kek,
            policy: OutboundPolicy { allow_loopback: ssf.allow_loopback_push, allow_private: ssf.allow_private_push },
            max_streams_per_receiver: i64::from(ssf.max_streams_per_receiver),
            long_poll_timeout: ssf.long_poll_timeout.0,
            max_events_per_poll: i64::from(ssf.max_events_per_poll),
            inactivity_timeout: ssf.inactivity_timeout.chrono(),
            min_verification_interval: ssf.min_verification_interval.chrono(),
            metadata: Bytes::from(metadata.to_string()),
            waiting_polls: Arc::new(Semaphore::new(MAX_WAITING_POLLS)),
            waiting_per_stream: Arc::default(),
            stopping: watch::Sender::new(false),
        }
    }

    /// Ends every waiting long poll with what it has (nothing), as its time-out would, and
    /// every later one at once: a graceful stop then waits for no long poll, so a rolling
    /// restart is not held up for `ssf.long_poll_timeout` (Kubernetes' default grace period
    /// is as long as the default time-out) and receivers reconnect to another replica.
    pub fn stop_waiting(&self) {
        self.stopping.send_replace(true);
    }

    fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// A place for one long poll of `stream_id` to wait, if the stream and the process
    /// have one free; held until dropped.
    fn wait_place(&self, stream_id: &str) -> Option<WaitPlace> {
        let global = self.waiting_polls.clone().try_acquire_owned().ok()?;
        let mut waiting = self.waiting_per_stream.lock().unwrap_or_else(PoisonError::into_inner);
        let count = waiting.entry(stream_id.to_owned()).or_default();
        if *count >= MAX_WAITING_PER_STREAM {
            return None;
        }
        *count += 1;
        Some(WaitPlace { stream_id: stream_id.to_owned(), waiting: self.waiting_per_stream.clone(), _global: global })
    }

    /// The poll endpoint of a stream (SSF §6.1.2: unique per stream).
    pub fn poll_url(&self, stream_id: &str) -> String {
        format!("{}/ssf/poll/{stream_id}", self.emitter.issuer())
    }
}

/// One long poll's place among those waiting (see [`Transmitter::wait_place`]).
struct WaitPlace {
    stream_id: String,
    waiting: Arc<Mutex<HashMap<String, usize>>>,
    _global: OwnedSemaphorePermit,
}

impl Drop for WaitPlace {
    fn drop(&mut self) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = waiting.get_mut(&self.stream_id) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.stream_id);
            }
        }
    }
}

/// For an issuer under a path (`base`, e.g. `/auth`): the transmitter metadata where SSF
/// 1.0 §7.2 puts it, the well-known suffix inserted between the host and the issuer's path
/// (`/.well-known/ssf-configuration/auth`), outside the path (registered only when
/// `ssf.enabled`).
pub fn outside_the_path(cfg: &mut web::ServiceConfig, base: &str) {
    cfg.route(&format!("/.well-known/ssf-configuration{base}"), web::get().to(metadata));
}

/// The SSF routes (registered only when `ssf.enabled`), below the issuer's path. The
/// metadata is also served appended to the issuer, for receivers that look there.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/ssf-configuration", web::get().to(metadata)).service(
        web::scope("/ssf")
            .app_data(web::PayloadConfig::new(BODY_LIMIT))
            .service(
                web::resource("/streams")
                    .route(web::post().to(streams::create))
                    .route(web::get().to(streams::read))
                    .route(web::patch().to(streams::update))
                    .route(web::put().to(streams::replace))
                    .route(web::delete().to(streams::delete)),
            )
            .service(web::resource("/status").route(web::get().to(status::read)).route(web::post().to(status::update)))
            .route("/verify", web::post().to(verification::request))
            .route("/subjects/add", web::post().to(subjects::add))
            .route("/subjects/remove", web::post().to(subjects::remove))
            .route("/poll/{stream_id}", web::post().to(poll::post)),
    );
}

/// SSF §7.2: the transmitter configuration metadata, serialised once.
async fn metadata(transmitter: web::Data<Transmitter>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(transmitter.metadata.clone())
}

/// Parses a JSON request body; anything else is `invalid_request`.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, SsfError> {
    serde_json::from_slice(body).map_err(|e| SsfError::invalid(format!("the body is not the expected JSON: {e}")))
}

/// The `stream_id` query parameter (SSF §8.1.1.2, §8.1.1.5, §8.1.2.1), parsed strictly.
fn stream_id_query(query: &str) -> Result<Option<String>, SsfError> {
    let params = crate::http::form::FormParams::parse_query(query).map_err(|e| SsfError::invalid(e.to_string()))?;
    Ok(params.get("stream_id").map(str::to_owned))
}
