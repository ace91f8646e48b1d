//! The mock issuer's token introspection endpoint (RFC 7662), as Tessera's answers: for the
//! client [`INTROSPECTION_CLIENT_ID`] only, `{"active":false}` for any token it was not
//! told about, and whatever a test set for the others; slow, failing or garbled on demand.

use super::{Request, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The client id the mock's introspection endpoint accepts.
pub const INTROSPECTION_CLIENT_ID: &str = "resource-server";
/// Its secret, with characters that `client_secret_basic` must form-encode.
pub const INTROSPECTION_CLIENT_SECRET: &str = "resource secret:+/%";

#[derive(Default)]
pub(super) struct Endpoint {
    settings: Mutex<Settings>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Default)]
struct Settings {
    answers: HashMap<String, Value>,
    /// Answer every request with this status (and an OAuth error body) instead.
    status: Option<&'static str>,
    /// Answer 200 with HTML instead.
    is_garbled: bool,
    delay: Duration,
    is_hidden: bool,
}

impl Endpoint {
    pub fn answer(&self, token: &str, response: Value) {
        self.settings.lock().expect("not poisoned").answers.insert(token.to_owned(), response);
    }

    pub fn set_status(&self, status: u16) {
        let status = match status {
            200 => None,
            400 => Some("400 Bad Request"),
            401 => Some("401 Unauthorized"),
            429 => Some("429 Too Many Requests"),
            500 => Some("500 Internal Server Error"),
            502 => Some("502 Bad Gateway"),
            503 => Some("503 Service Unavailable"),
            other => panic!("the mock does not answer {other}"),
        };
        self.settings.lock().expect("not poisoned").status = status;
    }

    pub fn set_garbled(&self, is_garbled: bool) {
        self.settings.lock().expect("not poisoned").is_garbled = is_garbled;
    }

    pub fn set_delay(&self, delay: Duration) {
        self.settings.lock().expect("not poisoned").delay = delay;
    }

    pub fn set_hidden(&self, is_hidden: bool) {
        self.settings.lock().expect("not poisoned").is_hidden = is_hidden;
    }

    pub fn is_hidden(&self) -> bool {
        self.settings.lock().expect("not poisoned").is_hidden
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// `POST /introspect`: counted, and counted as in flight until the answer is written.
    pub fn handle(&self, request: &Request) -> Response {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        let (delay, response) = {
            let settings = self.settings.lock().expect("not poisoned");
            (settings.delay, answer(&settings, request))
        };
        std::thread::sleep(delay);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        response
    }
}

fn answer(settings: &Settings, request: &Request) -> Response {
    // RFC 7662 §2.1 with `client_secret_basic`.
    let pair = request.basic_credentials();
    if pair != Some((Some(INTROSPECTION_CLIENT_ID.into()), Some(INTROSPECTION_CLIENT_SECRET.into()))) {
        return json_response("401 Unauthorized", json!({ "error": "invalid_client" }));
    }
    if let Some(status) = settings.status {
        return json_response(status, json!({ "error": "server_error" }));
    }
    if settings.is_garbled {
        return Response {
            status: "200 OK",
            headers: vec![("content-type", "text/html".into())],
            body: "<html>maintenance</html>".into(),
        };
    }
    // What the verifier must send: a form with the token and the hint, asking for JSON.
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
    let is_form = request.header("content-type") == Some("application/x-www-form-urlencoded");
    let is_json = request.header("accept") == Some("application/json");
    let hint = form.get("token_type_hint").map(String::as_str);
    let Some(token) = form.get("token").filter(|_| is_form && is_json && hint == Some("access_token")) else {
        return json_response("400 Bad Request", json!({ "error": "invalid_request" }));
    };
    let response = settings.answers.get(token).cloned().unwrap_or_else(|| json!({ "active": false }));
    json_response("200 OK", response)
}

fn json_response(status: &'static str, body: Value) -> Response {
    Response {
        status,
        headers: vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())],
        body: body.to_string(),
    }
}
