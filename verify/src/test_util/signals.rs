//! The mock issuer's OpenID Shared Signals transmitter: a token endpoint for client
//! credentials, SSF metadata, poll streams with long polling, acknowledgements and
//! `setErrs` (RFC 8936), and verification (SSF §8.1.4), as Tessera serves them, minus
//! persistence, push and status. Events are signed as Tessera signs SETs and kept in a
//! history that new streams are seeded with.

use super::{Request, Response, TestKey};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The receiver client the mock transmitter knows.
pub const RECEIVER_ID: &str = "revocation-receiver";
/// Its secret, with characters that must be form-encoded in `client_secret_basic`.
pub const RECEIVER_SECRET: &str = "receiver secret:+/%";

const POLL: &str = "urn:ietf:rfc:8936";

/// A CAEP, RISC or SSF event to send, as its type, subject and members.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityEvent {
    /// The event type URI.
    pub event_type: String,
    /// The `sub_id` (SSF §3); see [`subject`](super::subject).
    pub sub_id: Value,
    /// The event's members.
    pub event: Value,
}

impl SecurityEvent {
    /// CAEP 1.0 §3.1 `session-revoked` at `at` (seconds since the epoch, fractional), as
    /// Tessera sends it.
    pub fn session_revoked(sub_id: Value, at: f64) -> Self {
        Self {
            event_type: "https://schemas.openid.net/secevent/caep/event-type/session-revoked".into(),
            sub_id,
            event: json!({ "initiating_entity": "admin", "reason_admin": { "en": "test" }, "event_timestamp": at }),
        }
    }

    /// CAEP 1.0 §3.3 `credential-change` of a password at `at`.
    pub fn credential_change(sub_id: Value, at: f64) -> Self {
        Self {
            event_type: "https://schemas.openid.net/secevent/caep/event-type/credential-change".into(),
            sub_id,
            event: json!({ "credential_type": "password", "change_type": "update", "initiating_entity": "user",
                           "reason_admin": { "en": "password changed" }, "event_timestamp": at }),
        }
    }

    /// RISC 1.0 §2.3 `account-disabled`, which carries no time.
    pub fn account_disabled(sub_id: Value) -> Self {
        Self {
            event_type: "https://schemas.openid.net/secevent/risc/event-type/account-disabled".into(),
            sub_id,
            event: json!({}),
        }
    }

    /// RISC 1.0 §2.4 `account-enabled`.
    pub fn account_enabled(sub_id: Value) -> Self {
        Self {
            event_type: "https://schemas.openid.net/secevent/risc/event-type/account-enabled".into(),
            sub_id,
            event: json!({}),
        }
    }
}

/// The transmitter's state, behind one lock; `wake` wakes long polls.
#[derive(Default)]
pub(super) struct Transmitter {
    state: Mutex<State>,
    wake: Condvar,
}

pub(super) struct State {
    /// Signs SETs; `None` until the transmitter is enabled (its endpoints answer 404).
    key: Option<TestKey>,
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    counter: u64,
    streams: BTreeMap<String, Stream>,
    /// Every event sent, with its `txn`: new streams are owed all of them.
    history: Vec<(SecurityEvent, String)>,
    max_streams: usize,
    long_poll: Duration,
    min_verification_interval: Duration,
    is_failing: bool,
    is_silent: bool,
    is_stopping: bool,
    acknowledged: Vec<String>,
    set_errors: Vec<(String, String)>,
    token_requests: usize,
    polls: usize,
    verification_requests: usize,
}

impl Default for State {
    fn default() -> Self {
        Self {
            key: None,
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(300),
            counter: 0,
            streams: BTreeMap::new(),
            history: Vec::new(),
            max_streams: 10,
            long_poll: Duration::from_secs(5),
            min_verification_interval: Duration::ZERO,
            is_failing: false,
            is_silent: false,
            is_stopping: false,
            acknowledged: Vec::new(),
            set_errors: Vec::new(),
            token_requests: 0,
            polls: 0,
            verification_requests: 0,
        }
    }
}

/// What a stream is owed, oldest first (`jti`, SET), until acknowledged or refused.
#[derive(Default)]
struct Stream {
    owed: Vec<(String, String)>,
    last_verification: Option<Instant>,
}

/// What tests change and read; each method locks once.
impl Transmitter {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn enable(&self, key: &TestKey) {
        self.lock().key = Some(key.clone());
    }

    pub fn with<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let value = change(&mut self.lock());
        self.wake.notify_all();
        value
    }

    pub fn stop(&self) {
        self.with(|state| state.is_stopping = true);
    }

    /// Signs `events` for every stream, with one `txn`, and records them for new streams.
    pub fn send(&self, issuer: &str, events: &[SecurityEvent]) -> Vec<String> {
        self.with(|state| {
            state.counter += 1;
            let txn = format!("txn-{}", state.counter);
            let ids: Vec<String> = state.streams.keys().cloned().collect();
            let mut jtis = Vec::new();
            for event in events {
                state.history.push((event.clone(), txn.clone()));
                for id in &ids {
                    jtis.push(state.owe(issuer, id, event, &txn));
                }
            }
            jtis
        })
    }

    /// The claims of a SET for `event` on the first stream, with a fresh `jti`.
    pub fn claims_for(&self, issuer: &str, event: &SecurityEvent) -> Value {
        let mut state = self.lock();
        state.counter += 1;
        let id = state.streams.keys().next().cloned().expect("a stream");
        let jti = format!("set-{}.{id}", state.counter);
        set_claims(issuer, &jti, event, "txn-raw")
    }

    pub fn handle(&self, issuer: &str, request: &Request) -> Response {
        let mut state = self.lock();
        if state.key.is_none() {
            return status("404 Not Found");
        }
        if state.is_failing {
            return status("500 Internal Server Error");
        }
        let path = request.path();
        let response = match (request.method.as_str(), path) {
            ("GET", "/.well-known/ssf-configuration") => json_response("200 OK", metadata(issuer)),
            ("POST", "/token") => state.token(request),
            (method, path) if path == "/ssf/streams" || path == "/ssf/verify" || path.starts_with("/ssf/poll/") => {
                if !state.is_authorised(request) {
                    return Response {
                        status: "401 Unauthorized",
                        headers: vec![("www-authenticate", r#"Bearer error="invalid_token""#.into())],
                        body: String::new(),
                    };
                }
                match (method, path) {
                    ("POST", "/ssf/streams") => state.create_stream(issuer),
                    ("GET", "/ssf/streams") => match state.streams.get(&request.query("stream_id")) {
                        Some(_) => json_response("200 OK", stream_config(issuer, &request.query("stream_id"))),
                        None => status("404 Not Found"),
                    },
                    ("DELETE", "/ssf/streams") => match state.streams.remove(&request.query("stream_id")) {
                        Some(_) => status("204 No Content"),
                        None => status("404 Not Found"),
                    },
                    ("POST", "/ssf/verify") => state.verify(issuer, request),
                    ("POST", path) => {
                        let id = path.trim_start_matches("/ssf/poll/").to_owned();
                        return self.poll(state, &id, request);
                    }
                    _ => status("405 Method Not Allowed"),
                }
            }
            _ => status("404 Not Found"),
        };
        drop(state);
        self.wake.notify_all();
        response
    }

    /// RFC 8936 §2.4: settle `ack` and `setErrs`, then answer with what is owed, waiting
    /// up to the long-poll time for something when nothing is.
    fn poll(&self, mut state: MutexGuard<'_, State>, id: &str, request: &Request) -> Response {
        state.polls += 1;
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else { return status("400 Bad Request") };
        if !state.streams.contains_key(id) {
            return status("404 Not Found");
        }
        let acks: Vec<String> =
            body["ack"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        let errors: Vec<(String, String)> = body["setErrs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(jti, error)| (jti.clone(), error["err"].as_str().unwrap_or("").to_owned()))
            .collect();
        let stream = state.streams.get_mut(id).expect("checked above");
        stream.owed.retain(|(jti, _)| !acks.contains(jti) && !errors.iter().any(|(refused, _)| refused == jti));
        state.acknowledged.extend(acks);
        state.set_errors.extend(errors);
        let max = body["maxEvents"].as_u64().map_or(usize::MAX, |n| n as usize);
        let is_immediate = body["returnImmediately"].as_bool().unwrap_or(false) || max == 0;
        let deadline = Instant::now() + state.long_poll;
        loop {
            if state.is_stopping || state.is_failing {
                return status("503 Service Unavailable");
            }
            let Some(stream) = state.streams.get(id) else { return status("404 Not Found") };
            let owed = if state.is_silent { &[][..] } else { &stream.owed[..] };
            let now = Instant::now();
            if !owed.is_empty() || is_immediate || now >= deadline {
                let sets: Map<String, Value> =
                    owed.iter().take(max).map(|(jti, set)| (jti.clone(), Value::String(set.clone()))).collect();
                let more = owed.len() > sets.len();
                return json_response("200 OK", json!({ "sets": sets, "moreAvailable": more }));
            }
            state = self.wake.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl State {
    fn is_authorised(&self, request: &Request) -> bool {
        let token = request.header("authorization").and_then(|h| h.strip_prefix("Bearer "));
        token.and_then(|token| self.tokens.get(token)).is_some_and(|expires| *expires > Instant::now())
    }

    /// RFC 6749 §4.4 with `client_secret_basic`.
    fn token(&mut self, request: &Request) -> Response {
        self.token_requests += 1;
        let pair = request.basic_credentials();
        let is_receiver = pair == Some((Some(RECEIVER_ID.into()), Some(RECEIVER_SECRET.into())));
        if !is_receiver {
            return json_response("401 Unauthorized", json!({ "error": "invalid_client" }));
        }
        if String::from_utf8_lossy(&request.body) != "grant_type=client_credentials" {
            return json_response("400 Bad Request", json!({ "error": "unsupported_grant_type" }));
        }
        self.counter += 1;
        let token = format!("receiver-token-{}", self.counter);
        self.tokens.insert(token.clone(), Instant::now() + self.token_lifetime);
        json_response(
            "200 OK",
            json!({ "access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime.as_secs() }),
        )
    }

    fn create_stream(&mut self, issuer: &str) -> Response {
        if self.streams.len() >= self.max_streams {
            return json_response("409 Conflict", json!({ "error": "conflict" }));
        }
        self.counter += 1;
        let id = format!("stream{}", self.counter);
        self.streams.insert(id.clone(), Stream::default());
        // Like Tessera: a new stream is owed the events that may still matter.
        for (event, txn) in self.history.clone() {
            self.owe(issuer, &id, &event, &txn);
        }
        json_response("201 Created", stream_config(issuer, &id))
    }

    fn verify(&mut self, issuer: &str, request: &Request) -> Response {
        self.verification_requests += 1;
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else { return status("400 Bad Request") };
        let id = body["stream_id"].as_str().unwrap_or_default().to_owned();
        let interval = self.min_verification_interval;
        let Some(stream) = self.streams.get_mut(&id) else { return status("404 Not Found") };
        if stream.last_verification.is_some_and(|at| at.elapsed() < interval) {
            return status("429 Too Many Requests");
        }
        stream.last_verification = Some(Instant::now());
        let mut event = json!({});
        if let Some(state) = body["state"].as_str() {
            event["state"] = json!(state);
        }
        let verification = SecurityEvent {
            event_type: "https://schemas.openid.net/secevent/ssf/event-type/verification".into(),
            sub_id: json!({ "format": "opaque", "id": id }),
            event,
        };
        self.owe(issuer, &id, &verification, "txn-verification");
        status("204 No Content")
    }

    /// Signs `event` for stream `id` and owes it; returns its `jti`.
    fn owe(&mut self, issuer: &str, id: &str, event: &SecurityEvent, txn: &str) -> String {
        self.counter += 1;
        let jti = format!("set-{}.{id}", self.counter);
        let key = self.key.as_ref().expect("the transmitter is enabled");
        let header = json!({ "typ": "secevent+jwt", "alg": "RS256", "kid": key.kid() });
        let set = key.sign_with_header(&header, &set_claims(issuer, &jti, event, txn));
        self.streams.get_mut(id).expect("a stream").owed.push((jti.clone(), set));
        jti
    }
}

/// RFC 8417 §2.2 claims as SSF §4 profiles them: no `sub`, no `exp`, one event.
fn set_claims(issuer: &str, jti: &str, event: &SecurityEvent, txn: &str) -> Value {
    let iat = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    json!({
        "iss": issuer, "aud": RECEIVER_ID, "iat": iat, "jti": jti, "txn": txn,
        "sub_id": event.sub_id, "events": { event.event_type.clone(): event.event },
    })
}

/// SSF §7.1, as Tessera publishes it.
fn metadata(issuer: &str) -> Value {
    json!({
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks.json"),
        "delivery_methods_supported": ["urn:ietf:rfc:8935", POLL],
        "configuration_endpoint": format!("{issuer}/ssf/streams"),
        "verification_endpoint": format!("{issuer}/ssf/verify"),
        "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        "default_subjects": "ALL",
    })
}

/// SSF §8.1.1, as Tessera describes a poll stream.
fn stream_config(issuer: &str, id: &str) -> Value {
    json!({
        "stream_id": id,
        "iss": issuer,
        "aud": RECEIVER_ID,
        "delivery": { "method": POLL, "endpoint_url": format!("{issuer}/ssf/poll/{id}") },
        "events_delivered": [
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
            "https://schemas.openid.net/secevent/caep/event-type/credential-change",
            "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
            "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
        ],
        "min_verification_interval": 0,
        "inactivity_timeout": 86400,
    })
}

fn status(status: &'static str) -> Response {
    Response { status, headers: Vec::new(), body: String::new() }
}

fn json_response(status: &'static str, body: Value) -> Response {
    Response { status, headers: vec![("content-type", "application/json".into())], body: body.to_string() }
}

/// Read access for the mock's public methods.
impl State {
    pub fn stream_ids(&self) -> Vec<String> {
        self.streams.keys().cloned().collect()
    }

    pub fn owed(&self) -> usize {
        self.streams.values().map(|s| s.owed.len()).sum()
    }

    pub fn delete_stream(&mut self, id: &str) -> bool {
        self.streams.remove(id).is_some()
    }

    pub fn deliver_raw(&mut self, jti: &str, set: &str) {
        for stream in self.streams.values_mut() {
            stream.owed.push((jti.to_owned(), set.to_owned()));
        }
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.token_requests, self.polls, self.verification_requests)
    }

    pub fn acknowledged(&self) -> Vec<String> {
        self.acknowledged.clone()
    }

    pub fn set_errors(&self) -> Vec<(String, String)> {
        self.set_errors.clone()
    }

    pub fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    pub fn configure(&mut self, setting: Setting) {
        match setting {
            Setting::Failing(on) => self.is_failing = on,
            Setting::Silent(on) => self.is_silent = on,
            Setting::LongPoll(wait) => self.long_poll = wait,
            Setting::MinVerificationInterval(interval) => self.min_verification_interval = interval,
            Setting::MaxStreams(max) => self.max_streams = max,
            Setting::TokenLifetime(lifetime) => self.token_lifetime = lifetime,
        }
    }
}

/// A setting of the mock transmitter.
pub(super) enum Setting {
    Failing(bool),
    Silent(bool),
    LongPoll(Duration),
    MinVerificationInterval(Duration),
    MaxStreams(usize),
    TokenLifetime(Duration),
}
