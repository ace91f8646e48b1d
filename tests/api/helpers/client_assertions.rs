//! `private_key_jwt` clients for tests: their key pairs (RS256, ES256, EdDSA, made with
//! aws-lc-rs), assertions signed with them, and a local server for their `jwks_uri` that
//! counts its fetches.

use super::clients::{ClientSpec, TestClient};
use super::TestApp;
use actix_web::{web, App, HttpResponse, HttpServer};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera::clock::Clock;
use tessera::domain::client::{AuthMethod, KeySource};
use tessera_verify::test_util::TestKey;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's signing key.
pub enum ClientKey {
    Rsa(TestKey),
    Ec { pair: EcdsaKeyPair, kid: String },
    Ed { pair: Ed25519KeyPair, kid: String },
}

impl ClientKey {
    pub fn rsa() -> Self {
        Self::Rsa(TestKey::generate())
    }

    pub fn es256() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self::Ec { pair, kid: format!("ec-{}", uuid::Uuid::new_v4().simple()) }
    }

    pub fn ed25519() -> Self {
        Self::Ed { pair: Ed25519KeyPair::generate().unwrap(), kid: format!("ed-{}", uuid::Uuid::new_v4().simple()) }
    }

    pub fn kid(&self) -> &str {
        match self {
            Self::Rsa(key) => key.kid(),
            Self::Ec { kid, .. } | Self::Ed { kid, .. } => kid,
        }
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Rsa(_) => "RS256",
            Self::Ec { .. } => "ES256",
            Self::Ed { .. } => "EdDSA",
        }
    }

    pub fn public_jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match self {
            Self::Rsa(key) => key.public_jwk(),
            Self::Ec { pair, kid } => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Self::Ed { pair, kid } => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref())})
            }
        }
    }

    /// A JWS of `claims` under `header`, signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
        match self {
            // The header's alg must be an RSA one: tests of other algs build their own.
            Self::Rsa(key) => key.sign_with_header(header, claims),
            Self::Ec { pair, .. } => {
                let input = format!("{}.{}", encode(header), encode(claims));
                let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
            }
            Self::Ed { pair, .. } => {
                let input = format!("{}.{}", encode(header), encode(claims));
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref()))
            }
        }
    }

    /// The header this key's assertions carry: its `alg` and `kid`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "kid": self.kid(), "typ": "JWT"})
    }

    /// A valid assertion for `client_id` to `aud`, expiring a minute from `app`'s now.
    pub fn assertion(&self, app: &TestApp, client_id: &str, aud: &str) -> String {
        self.sign(&self.header(), &assertion_claims(app, client_id, aud))
    }
}

/// RFC 7523 §3 claims: `iss` = `sub` = the client, `aud`, `exp` in a minute, `iat`, a new `jti`.
pub fn assertion_claims(app: &TestApp, client_id: &str, aud: &str) -> Value {
    let now = app.clock.now().timestamp();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": now + 60,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A JWK Set of `keys`' public halves.
pub fn jwks(keys: &[&ClientKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()}).to_string()
}

impl TestApp {
    /// Registers a `private_key_jwt` client_credentials client with `keys`.
    pub async fn register_key_client(&self, keys: KeySource) -> TestClient {
        self.register_client(ClientSpec {
            auth_method: AuthMethod::PrivateKeyJwt,
            keys: Some(keys),
            served_audiences: vec!["https://api.example.com"],
            ..ClientSpec::service()
        })
        .await
    }

    /// POST `path` with `form` plus `client_assertion_type` and `client_assertion`.
    pub async fn post_with_assertion(&self, path: &str, assertion: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form = form.to_vec();
        form.push(("client_assertion_type", ASSERTION_TYPE));
        form.push(("client_assertion", assertion));
        self.http.post(self.url(path)).form(&form).send().await.unwrap()
    }

    /// POST /token for client_credentials with `assertion`.
    pub async fn client_credentials_with_assertion(&self, assertion: &str) -> reqwest::Response {
        self.post_with_assertion("/token", assertion, &[("grant_type", "client_credentials")]).await
    }
}

/// A local server for a client's `jwks_uri`, counting the fetches.
pub struct JwksServer {
    pub url: String,
    body: Arc<Mutex<String>>,
    cache_control: Arc<Mutex<Option<String>>>,
    fetches: Arc<AtomicUsize>,
    server: actix_web::dev::ServerHandle,
}

struct JwksState {
    body: Arc<Mutex<String>>,
    cache_control: Arc<Mutex<Option<String>>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve(state: web::Data<JwksState>) -> HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let body = state.body.lock().unwrap().clone();
    let mut response = HttpResponse::Ok();
    if let Some(value) = state.cache_control.lock().unwrap().clone() {
        response.insert_header(("cache-control", value));
    }
    response.content_type("application/json").body(body)
}

impl JwksServer {
    pub fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let (body, fetches) = (Arc::new(Mutex::new(body)), Arc::new(AtomicUsize::new(0)));
        let cache_control = Arc::new(Mutex::new(None));
        let state = web::Data::new(JwksState {
            body: body.clone(),
            cache_control: cache_control.clone(),
            fetches: fetches.clone(),
        });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).route("/jwks.json", web::get().to(serve)))
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, body, cache_control, fetches, server: handle }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Serves `body` from now on (a key rotation).
    pub fn publish(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    /// Answers with this `Cache-Control` from now on.
    pub fn cache_control(&self, value: &str) {
        *self.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}
