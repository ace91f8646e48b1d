//! Test harness: RSA keys, tokens minted with `jsonwebtoken`, and a mock issuer (an
//! actix-web server on 127.0.0.1) that serves discovery and a JWKS and counts requests.

use actix_web::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm as JwtAlgorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_verify::{Verifier, VerifierBuilder};

pub const AUDIENCE: &str = "https://api.example.com";

/// An RSA public key as Tessera serves it in its JWKS (`kty use alg kid n e`).
#[derive(serde::Serialize)]
pub struct RsaPublicJwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    pub n: String,
    pub e: String,
}

impl RsaPublicJwk {
    /// Like Tessera, with the RFC 7638 §3 thumbprint as `kid`.
    fn from_components(modulus: &[u8], exponent: &[u8]) -> Self {
        let n = URL_SAFE_NO_PAD.encode(modulus);
        let e = URL_SAFE_NO_PAD.encode(exponent);
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));
        Self { kty: "RSA", use_: "sig", alg: "RS256", kid, n, e }
    }
}

/// An RSA key pair: what the issuer publishes, and what tests sign with.
pub struct TestKey {
    pub kid: String,
    pub jwk: RsaPublicJwk,
    /// The public key as an SPKI PEM, as an attacker would find it.
    pub public_pem: String,
    encoding: EncodingKey,
}

impl TestKey {
    /// The repository's test key, `keys/test-signing-key.pem`, which Tessera's tests also use.
    pub fn tessera() -> Self {
        let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../keys/test-signing-key.pem"))
            .expect("keys/test-signing-key.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        Self::from_pkcs8(&STANDARD.decode(body).expect("PEM body"))
    }

    /// A fresh 2048-bit key.
    pub fn generate() -> Self {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self::from_pkcs8(key.as_der().expect("PKCS#8").as_ref())
    }

    fn from_pkcs8(der: &[u8]) -> Self {
        let key = RsaKeyPair::from_pkcs8(der).expect("an RSA PKCS#8 key");
        let public = key.public_key();
        let jwk = RsaPublicJwk::from_components(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        );
        let public_pem = pem("PUBLIC KEY", public.as_der().expect("SPKI").as_ref());
        let encoding = EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der).as_bytes()).expect("jsonwebtoken key");
        Self { kid: jwk.kid.clone(), jwk, public_pem, encoding }
    }

    pub fn jwk_json(&self) -> Value {
        serde_json::to_value(&self.jwk).unwrap()
    }

    /// An RS256 access token with Tessera's header and `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(access_token_header(&self.kid), claims)
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("jsonwebtoken signs")
    }
}

/// `{"typ":"at+jwt","alg":"RS256","kid":…}`, as Tessera signs.
pub fn access_token_header(kid: &str) -> Header {
    let mut header = Header::new(JwtAlgorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    header
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims like Tessera's for a client_credentials token, valid for five minutes.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "sub": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "aud": AUDIENCE,
        "client_id": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "scope": "invoices:read invoices:write",
        "iat": now,
        "exp": now + 300,
        "jti": "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90",
    })
}

/// What the mock issuer serves, and what it has seen.
#[derive(Default)]
struct IssuerState {
    issuer: String,
    /// Overrides the `issuer` member of the discovery document.
    discovery_issuer: Mutex<Option<String>>,
    keys: Mutex<Vec<Value>>,
    version: AtomicU64,
    max_age: AtomicU64,
    is_failing: AtomicBool,
    /// Serve a body that is not a JWK Set (with a new ETag).
    is_garbled: AtomicBool,
    jwks_requests: AtomicUsize,
    conditional_requests: AtomicUsize,
    not_modified: AtomicUsize,
}

/// A stand-in for Tessera's discovery and JWKS endpoints.
pub struct MockIssuer {
    pub issuer: String,
    state: Arc<IssuerState>,
    handle: actix_web::dev::ServerHandle,
}

impl MockIssuer {
    /// Serves `keys` with `Cache-Control: public, max-age=900`.
    pub fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IssuerState {
            issuer: issuer.clone(),
            keys: Mutex::new(keys.iter().map(|k| k.jwk_json()).collect()),
            max_age: AtomicU64::new(900),
            ..IssuerState::default()
        });
        let data = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/.well-known/openid-configuration", web::get().to(discovery))
                .route("/jwks.json", web::get().to(jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { issuer, state, handle }
    }

    /// A builder for this issuer and [`AUDIENCE`].
    pub fn verifier(&self) -> VerifierBuilder {
        Verifier::builder(&self.issuer).audience(AUDIENCE)
    }

    pub fn publish(&self, keys: &[&TestKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk_json()).collect();
        self.state.version.fetch_add(1, Ordering::SeqCst);
    }

    pub fn publish_json(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
        self.state.version.fetch_add(1, Ordering::SeqCst);
    }

    pub fn set_max_age(&self, seconds: u64) {
        self.state.max_age.store(seconds, Ordering::SeqCst);
    }

    /// While set, the JWKS endpoint answers 500.
    pub fn set_failing(&self, is_failing: bool) {
        self.state.is_failing.store(is_failing, Ordering::SeqCst);
    }

    /// While set, the JWKS endpoint answers 200 with HTML.
    pub fn set_garbled(&self, is_garbled: bool) {
        self.state.is_garbled.store(is_garbled, Ordering::SeqCst);
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.into());
    }

    /// Every GET of the JWKS, whatever the answer.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// JWKS requests that carried `If-None-Match`.
    pub fn conditional_requests(&self) -> usize {
        self.state.conditional_requests.load(Ordering::SeqCst)
    }

    /// JWKS requests answered 304.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// Polls until `condition` holds (a background refresh finished); panics after 5 s.
    pub async fn wait_for(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        for _ in 0..500 {
            if condition(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        // The stop command is sent at once; awaiting the completion is optional.
        drop(self.handle.stop(false));
    }
}

async fn discovery(state: web::Data<IssuerState>) -> HttpResponse {
    let issuer = state.discovery_issuer.lock().unwrap().clone().unwrap_or_else(|| state.issuer.clone());
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks.json", state.issuer),
        "token_endpoint": format!("{}/token", state.issuer),
    }))
}

async fn jwks(req: HttpRequest, state: web::Data<IssuerState>) -> HttpResponse {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if state.is_failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().finish();
    }
    let cache_control = format!("public, max-age={}, must-revalidate", state.max_age.load(Ordering::SeqCst));
    if state.is_garbled.load(Ordering::SeqCst) {
        return HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, cache_control))
            .insert_header((ETAG, "\"garbled\""))
            .content_type("text/html")
            .body("<html>maintenance</html>");
    }
    let etag = format!("\"v{}\"", state.version.load(Ordering::SeqCst));
    if let Some(if_none_match) = req.headers().get(IF_NONE_MATCH) {
        state.conditional_requests.fetch_add(1, Ordering::SeqCst);
        if if_none_match.to_str().ok() == Some(etag.as_str()) {
            state.not_modified.fetch_add(1, Ordering::SeqCst);
            return HttpResponse::NotModified()
                .insert_header((CACHE_CONTROL, cache_control))
                .insert_header((ETAG, etag))
                .finish();
        }
    }
    let keys = state.keys.lock().unwrap().clone();
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, cache_control))
        .insert_header((ETAG, etag))
        .json(json!({ "keys": keys }))
}
