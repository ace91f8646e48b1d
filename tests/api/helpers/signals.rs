//! Shared Signals from a receiver's side: a client with the SSF scopes, its token, the
//! management calls, polls, SETs checked the way an independent receiver checks them
//! (JWKS signature with `jsonwebtoken`, `typ`, `iss`, `aud`, one event, no `sub`/`exp`),
//! and a push endpoint that records what reaches it.

use super::clients::{ClientSpec, TestClient};
use super::TestApp;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
pub const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
pub const POLL: &str = "urn:ietf:rfc:8936";
pub const PUSH: &str = "urn:ietf:rfc:8935";

impl ClientSpec {
    /// A Shared Signals receiver: client credentials with `ssf.manage ssf.read`, and no
    /// audience of its own, so its tokens are meant for Tessera.
    pub fn receiver() -> Self {
        Self { scope: "ssf.manage ssf.read", audiences: vec![], ..Self::service() }
    }
}

/// A receiver client and a token of it.
pub struct Receiver {
    pub client: TestClient,
    pub token: String,
}

/// One decoded, verified SET.
#[derive(Debug, Clone)]
pub struct Set {
    pub jti: String,
    pub claims: Value,
    pub event_type: String,
    pub event: Value,
}

impl Set {
    pub fn subject(&self) -> &Value {
        &self.claims["sub_id"]
    }
}

impl TestApp {
    pub async fn receiver(&self) -> Receiver {
        self.receiver_with(ClientSpec::receiver()).await
    }

    pub async fn receiver_with(&self, spec: ClientSpec) -> Receiver {
        let client = self.register_client(spec).await;
        let token = self.token_of(&client).await;
        Receiver { client, token }
    }

    /// A client-credentials access token of `client`.
    pub async fn token_of(&self, client: &TestClient) -> String {
        let response = self.client_credentials(&client.id, client.secret(), &[]).await;
        assert_eq!(response.status(), 200, "a token for the receiver");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A Shared Signals request with `token` (none: no Authorization header).
    pub async fn ssf(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("an SSF request")
    }

    /// Creates a stream for `receiver` with `config`; returns the configuration.
    pub async fn create_stream(&self, receiver: &Receiver, config: Value) -> Value {
        let response = self.ssf(reqwest::Method::POST, "/ssf/streams", Some(&receiver.token), Some(config)).await;
        assert_eq!(response.status(), 201, "SSF §8.1.1.1: 201 Created");
        response.json().await.unwrap()
    }

    /// A poll stream for `receiver`, requesting everything.
    pub async fn poll_stream(&self, receiver: &Receiver) -> String {
        let config = self.create_stream(receiver, json!({})).await;
        config["stream_id"].as_str().unwrap().to_owned()
    }

    /// One poll (RFC 8936) of `stream_id` with `body`; returns the verified SETs and
    /// `moreAvailable`.
    pub async fn poll(&self, receiver: &Receiver, stream_id: &str, body: Value) -> (Vec<Set>, bool) {
        let path = format!("/ssf/poll/{stream_id}");
        let response = self.ssf(reqwest::Method::POST, &path, Some(&receiver.token), Some(body)).await;
        assert_eq!(response.status(), 200, "a poll");
        let body: Value = response.json().await.unwrap();
        let mut sets = Vec::new();
        for (jti, set) in body["sets"].as_object().expect("RFC 8936 §2.3: sets") {
            let set = self.verify_set(set.as_str().unwrap(), &receiver.client.id).await;
            assert_eq!(&set.jti, jti, "sets are keyed by their jti");
            sets.push(set);
        }
        (sets, body["moreAvailable"].as_bool().unwrap_or(false))
    }

    /// Polls without waiting and acknowledges what came; returns it.
    pub async fn drain(&self, receiver: &Receiver, stream_id: &str) -> Vec<Set> {
        let (sets, _) = self.poll(receiver, stream_id, json!({ "returnImmediately": true })).await;
        if !sets.is_empty() {
            let ack: Vec<&str> = sets.iter().map(|s| s.jti.as_str()).collect();
            self.poll(receiver, stream_id, json!({ "ack": ack, "maxEvents": 0 })).await;
        }
        sets
    }

    /// Verifies a SET as an independent receiver does (SSF §4; RFC 8417): RS256 with the
    /// JWKS key of its `kid`, `typ` `secevent+jwt`, `iss`, `aud` the receiver, `iat` and
    /// `jti`, exactly one event, a `sub_id`, and neither `sub` nor `exp`.
    pub async fn verify_set(&self, token: &str, audience: &str) -> Set {
        let header = decode_header(token).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("secevent+jwt"), "SSF §4.1.1 typ");
        assert_eq!(header.alg, Algorithm::RS256, "the CAEP interoperability profile §2.6");
        let jwks = self.jwks().await;
        let jwk = jwks.find(header.kid.as_deref().expect("a kid")).expect("the SET's key is published");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.address]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["iss", "aud", "iat", "jti"]);
        validation.validate_exp = false;
        let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the SET verifies with the JWKS")
            .claims;
        assert!(claims.get("sub").is_none() && claims.get("exp").is_none(), "SSF §4.1.2, §4.1.7: {claims}");
        assert!(claims["txn"].is_string(), "SSF §4.1.9: txn");
        assert!(claims["sub_id"]["format"].is_string(), "SSF §3: sub_id");
        let events = claims["events"].as_object().expect("events");
        assert_eq!(events.len(), 1, "one event per SET: {claims}");
        let (event_type, event) = events.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
        Set { jti: claims["jti"].as_str().unwrap().to_owned(), claims, event_type, event }
    }
}

/// What a push receiver does with a request.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Accept,
    Fail(u16),
    /// 400 with an RFC 8935 §2.4 error code.
    Refuse(&'static str),
}

/// Each request a push endpoint received: the SET, and its `Authorization` header.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A push endpoint (RFC 8935) on 127.0.0.1: it answers from a script, then accepts, and
/// records every request's SET and `Authorization` header.
pub struct PushReceiver {
    pub url: String,
    received: Received,
    server: actix_web::dev::ServerHandle,
}

struct PushState {
    script: Mutex<VecDeque<Answer>>,
    received: Received,
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<PushState>) -> HttpResponse {
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let is_set = req.headers().get("content-type").and_then(|v| v.to_str().ok()) == Some("application/secevent+jwt");
    assert!(is_set, "RFC 8935 §2: Content-Type application/secevent+jwt");
    state.received.lock().unwrap().push((String::from_utf8(body.to_vec()).unwrap(), authorization));
    let answer = state.script.lock().unwrap().pop_front().unwrap_or(Answer::Accept);
    match answer {
        Answer::Accept => HttpResponse::Accepted().finish(),
        Answer::Fail(status) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish(),
        Answer::Refuse(err) => {
            HttpResponse::BadRequest().json(json!({ "err": err, "description": "refused by the test" }))
        }
    }
}

impl PushReceiver {
    pub fn start(script: Vec<Answer>) -> Self {
        Self::start_on(0, script)
    }

    /// On `port` of 127.0.0.1 (0: any free one).
    pub fn start_on(port: u16, script: Vec<Answer>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(PushState { script: Mutex::new(script.into()), received: received.clone() });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).route("/events", web::post().to(receive)))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, received, server: handle }
    }

    /// Waits until `count` requests arrived (or `within` passed); returns all so far.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<(String, Option<String>)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received.lock().unwrap().clone();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}
