//! Test helpers for services that verify Tessera's tokens (the `test-util` feature): RSA
//! keys that sign tokens the way Tessera does, and a mock issuer that serves discovery
//! and a JWK Set on 127.0.0.1. For tests only: nothing here is hardened, and every
//! function panics on what would be a bug in the test.
//!
//! Offline, with the synchronous core:
//!
//! ```
//! use std::time::SystemTime;
//! use tessera_verify::test_util::{access_token_payload, jwk_set, TestKey};
//! use tessera_verify::{AccessTokenPolicy, KeySet};
//!
//! let key = TestKey::generate();
//! let token = key.sign(&access_token_payload("https://id.example.com", "https://api.example.com"));
//! let keys = KeySet::from_jwks(jwk_set(&[&key]).to_string().as_bytes()).unwrap();
//! let policy = AccessTokenPolicy::new("https://id.example.com", ["https://api.example.com"]);
//! assert_eq!(policy.verify(&keys, &token, SystemTime::now()).unwrap().aud, ["https://api.example.com"]);
//! ```
//!
//! Against a [`MockIssuer`], through discovery, as in production:
//!
//! ```no_run
//! # #[cfg(feature = "fetch")]
//! # async fn run() {
//! use tessera_verify::test_util::{access_token_payload, MockIssuer, TestKey};
//! use tessera_verify::Verifier;
//!
//! let key = TestKey::generate();
//! let issuer = MockIssuer::start(&[&key]);
//! let verifier = Verifier::builder(issuer.issuer()).audience("https://api.example.com").build().await.unwrap();
//! let token = key.sign(&access_token_payload(issuer.issuer(), "https://api.example.com"));
//! assert!(verifier.verify(&token).await.is_ok());
//! # }
//! ```

mod introspection;
mod signals;

use crate::{Algorithm, Claims, IdTokenClaims, VerifyError};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, RsaEncoding, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An RSA key pair: what an issuer publishes, and what tests sign with.
pub struct TestKey {
    kid: String,
    pair: RsaKeyPair,
    /// Base64url modulus and exponent, as in a JWK.
    n: String,
    e: String,
}

impl TestKey {
    /// A fresh 2048-bit key. Takes some milliseconds: share one between tests that can.
    pub fn generate() -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self::from_pkcs8_der(pair.as_der().expect("PKCS#8").as_ref())
    }

    /// An RSA private key in PKCS#8 DER.
    ///
    /// # Panics
    /// When `der` is not an RSA PKCS#8 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Self {
        let pair = RsaKeyPair::from_pkcs8(der).expect("an RSA PKCS#8 key");
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // Like Tessera: the RFC 7638 §3 thumbprint as `kid`.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()));
        Self { kid, pair, n, e }
    }

    /// An RSA private key in a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), such as
    /// Tessera's `keys/test-signing-key.pem`.
    ///
    /// # Panics
    /// When `pem` is not a PEM-encoded RSA PKCS#8 key.
    pub fn from_pkcs8_pem(pem: &str) -> Self {
        let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
        Self::from_pkcs8_der(&STANDARD.decode(body.trim()).expect("a PEM body"))
    }

    /// The `kid` it is published and signs under: its RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as Tessera publishes its keys: `kty use alg kid n e`, for RS256.
    pub fn public_jwk(&self) -> Value {
        json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e })
    }

    /// The public key as an SPKI PEM, as an attacker would find it (to forge an HMAC
    /// with it, for instance).
    pub fn public_key_pem(&self) -> String {
        let der = self.pair.public_key().as_der().expect("SPKI");
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    /// An access token with Tessera's header, `{"typ":"at+jwt","alg":"RS256","kid":…}`,
    /// and `claims` (see [`access_token_payload`]).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&access_token_header(&self.kid), claims)
    }

    /// An ID token with Tessera's header, `{"typ":"JWT","alg":"RS256","kid":…}`, and
    /// `claims` (see [`id_token_payload`]).
    pub fn sign_id_token(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({ "typ": "JWT", "alg": "RS256", "kid": self.kid }), claims)
    }

    /// A JWS with any `header` and `claims`, signed with the algorithm `header` names.
    ///
    /// # Panics
    /// When `header["alg"]` is not an RSA [`Algorithm`]: this key cannot sign for HMAC.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().and_then(Algorithm::from_name).expect("an RSA alg in the header");
        let encoding: &'static dyn RsaEncoding = match alg {
            Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_SHA512,
            Algorithm::ES256 | Algorithm::EdDSA => panic!("an RSA key cannot sign {alg}"),
        };
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"));
        let signing_input = format!("{}.{}", encode(header), encode(claims));
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(encoding, &SystemRandom::new(), signing_input.as_bytes(), &mut signature).expect("RSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A key a DPoP client holds (RFC 9449), to make proofs with: ES256, EdDSA (Ed25519) or
/// RS256.
pub struct DpopKey {
    alg: Algorithm,
    signer: DpopSigner,
    jwk: Value,
}

enum DpopSigner {
    Ec(signature::EcdsaKeyPair),
    Ed(signature::Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl DpopKey {
    /// A fresh P-256 key, for ES256.
    pub fn es256() -> Self {
        let pair = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        // The uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Self { alg: Algorithm::ES256, signer: DpopSigner::Ec(pair), jwk }
    }

    /// A fresh Ed25519 key, for EdDSA.
    pub fn ed25519() -> Self {
        let pair = signature::Ed25519KeyPair::generate().expect("Ed25519 key");
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) });
        Self { alg: Algorithm::EdDSA, signer: DpopSigner::Ed(pair), jwk }
    }

    /// A fresh 2048-bit RSA key, for RS256. Takes some milliseconds.
    pub fn rs256() -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        Self { alg: Algorithm::RS256, signer: DpopSigner::Rsa(pair), jwk }
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK, without `kid`, `alg` or `use`: what a proof's `jwk` holds.
    pub fn public_jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The JWK SHA-256 thumbprint (RFC 7638): what `cnf.jkt` of a token bound to it holds.
    pub fn thumbprint(&self) -> String {
        crate::Jwk::from_value(&self.jwk).expect("a public JWK").thumbprint()
    }

    /// The header of a proof: `{"typ":"dpop+jwt","alg":…,"jwk":…}` (RFC 9449 §4.2).
    pub fn proof_header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": self.alg.name(), "jwk": self.jwk })
    }

    /// The claims of a fresh proof for `htm` and `htu`: a random `jti`, `iat` now.
    pub fn proof_claims(htm: &str, htu: &str) -> Value {
        json!({ "jti": random_id(), "htm": htm, "htu": htu, "iat": unix_now() })
    }

    /// A fresh proof for a request without access token (at the token endpoint).
    pub fn proof(&self, htm: &str, htu: &str) -> String {
        self.sign(&self.proof_header(), &Self::proof_claims(htm, htu))
    }

    /// A fresh proof for a request presenting `access_token`, with its `ath`.
    pub fn proof_for_token(&self, htm: &str, htu: &str, access_token: &str) -> String {
        let mut claims = Self::proof_claims(htm, htu);
        claims["ath"] = crate::dpop::access_token_hash(access_token).into();
        self.sign(&self.proof_header(), &claims)
    }

    /// A JWS with any `header` and `claims`, signed with this key and its algorithm
    /// whatever `header` says: for proofs that are wrong on purpose.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON"));
        let signing_input = format!("{}.{}", encode(header), encode(claims));
        let message = signing_input.as_bytes();
        let signature = match &self.signer {
            DpopSigner::Ec(pair) => pair.sign(&SystemRandom::new(), message).expect("ECDSA signing").as_ref().to_vec(),
            DpopSigner::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            DpopSigner::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .expect("RSA signing");
                signature
            }
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey").field("alg", &self.alg).field("jwk", &self.jwk).finish_non_exhaustive()
    }
}

/// 128 random bits, base64url: a `jti`.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A copy of the key pair, parsed again from its PKCS#8 form.
impl Clone for TestKey {
    fn clone(&self) -> Self {
        Self::from_pkcs8_der(self.pair.as_der().expect("PKCS#8").as_ref())
    }
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// A JWK Set (RFC 7517 §5) publishing `keys`, as Tessera serves it.
pub fn jwk_set(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>() })
}

/// `{"typ":"at+jwt","alg":"RS256","kid":…}`, as Tessera signs access tokens: a start for
/// headers that differ in one member.
pub fn access_token_header(kid: &str) -> Value {
    json!({ "typ": "at+jwt", "alg": "RS256", "kid": kid })
}

/// The claims of an access token like Tessera's for a `client_credentials` grant: issued
/// now, valid for five minutes, with the scopes `invoices:read invoices:write`.
pub fn access_token_payload(issuer: &str, audience: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": issuer,
        "sub": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "aud": audience,
        "client_id": "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43",
        "scope": "invoices:read invoices:write",
        "iat": now,
        "exp": now + 300,
        "jti": "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90",
    })
}

/// A fresh opaque access token shaped like Tessera's: `tat_` and 32 random bytes in
/// base64url.
pub fn opaque_token() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("randomness");
    format!("tat_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Tessera's introspection answer (RFC 7662 §2.2) about a live opaque bearer token: the
/// claims of [`access_token_payload`] with a fresh `jti`, `active` and `token_type`. For a
/// DPoP-bound token, set `token_type` to `DPoP` and add `cnf`.
pub fn introspection_response(issuer: &str, audience: &str) -> Value {
    let mut response = access_token_payload(issuer, audience);
    response["jti"] = random_id().into();
    response["active"] = true.into();
    response["token_type"] = "Bearer".into();
    response
}

/// The claims of an ID token like Tessera's (OpenID Connect Core §2): issued now, valid
/// for five minutes, for the client `client_id`, with a session id.
pub fn id_token_payload(issuer: &str, client_id: &str) -> Value {
    let now = unix_now();
    json!({
        "iss": issuer,
        "sub": "8d0c2b7e-5f4a-4e1b-9c3d-2a6f8e1b0c79",
        "aud": client_id,
        "exp": now + 300,
        "iat": now,
        "auth_time": now,
        "azp": client_id,
        "sid": "6a1f0e9d8c7b4a5e",
        "at_hash": "x4Q8HQk1dbf8ZTc2BUFm0g",
    })
}

/// Parses `claims` as the verifier parses a verified access token's payload, checking
/// presence and types only: no signature, no issuer, audience or time. For unit tests of
/// code that takes [`Claims`], which cannot be built outside this crate.
pub fn claims_from_json(claims: &Value) -> Result<Claims, VerifyError> {
    Claims::from_json(&serde_json::to_vec(claims).expect("JSON"))
}

/// Like [`claims_from_json`], for [`IdTokenClaims`].
pub fn id_token_claims_from_json(claims: &Value) -> Result<IdTokenClaims, VerifyError> {
    IdTokenClaims::from_json(&serde_json::to_vec(claims).expect("JSON"))
}

fn unix_now() -> i64 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_secs();
    i64::try_from(seconds).expect("a clock before year 292 billion")
}

/// Subject identifiers (RFC 9493, SSF 1.0 §3) as Tessera's SETs carry them, for
/// [`SecurityEvent`]s.
pub mod subject {
    use serde_json::{json, Value};

    /// RFC 9493 §3.2.3 `iss_sub`: a user (account-disabled, credential-change).
    pub fn account(issuer: &str, user: &str) -> Value {
        json!({ "format": "iss_sub", "iss": issuer, "sub": user })
    }

    /// One session (`sid`) of a user: a complex subject (SSF §3.3).
    pub fn session(issuer: &str, user: &str, sid: &str) -> Value {
        json!({ "format": "complex", "user": account(issuer, user), "session": { "format": "opaque", "id": sid } })
    }

    /// One refresh-token family (`fid`) of a session: Tessera's `token_family` member.
    pub fn family(issuer: &str, user: &str, sid: &str, fid: &str) -> Value {
        let mut subject = session(issuer, user, sid);
        subject["token_family"] = json!({ "format": "opaque", "id": fid });
        subject
    }

    /// Every session of a user.
    pub fn user(issuer: &str, user: &str) -> Value {
        json!({ "format": "complex", "user": account(issuer, user) })
    }

    /// Every token of a client (`application`, SSF §3.3).
    pub fn application(client_id: &str) -> Value {
        json!({ "format": "complex", "application": { "format": "opaque", "id": client_id } })
    }

    /// One access token (`jwt_id`, SSF §3.5.1).
    pub fn token(issuer: &str, jti: &str) -> Value {
        json!({ "format": "jwt_id", "iss": issuer, "jti": jti })
    }
}

pub use introspection::{INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET};
pub use signals::{SecurityEvent, RECEIVER_ID, RECEIVER_SECRET};

/// Adds `count` synthetic entries to the deny set of a verifier built with
/// `revocations` (spread over `jti`s, sessions, families, users and clients, matching no
/// real token), as if that many revocations had arrived: for benchmarks and tests of a
/// full deny set. Returns how many were added; `None` for a verifier without a feed.
#[cfg(feature = "revocations")]
#[cfg_attr(docsrs, doc(cfg(feature = "revocations")))]
pub fn fill_deny_set(verifier: &crate::Verifier, count: usize) -> Option<usize> {
    verifier.fill_deny_set(count)
}

/// A stand-in for Tessera's discovery and JWKS endpoints, on `http://127.0.0.1:PORT`,
/// which is also its issuer identifier. It serves the JWK Set with
/// `Cache-Control: public, max-age=900` and an ETag, answers `If-None-Match` with 304,
/// can be told to fail, and counts requests.
///
/// Its token introspection endpoint (RFC 7662), `/introspect`, published as
/// `introspection_endpoint`, answers the client [`INTROSPECTION_CLIENT_ID`] (any other gets
/// 401) `{"active":false}` for every token but those given an answer with
/// [`set_introspection`](Self::set_introspection); it can be made slow, failing or garbled,
/// and counts requests and the most it had in flight at once.
///
/// With [`enable_signals`](Self::enable_signals) it is also an OpenID Shared Signals
/// transmitter, as Tessera is: a token endpoint for the client [`RECEIVER_ID`],
/// `/.well-known/ssf-configuration`, poll streams with long polling (5 seconds unless
/// set), acknowledgements and `setErrs`, and verification. [`send`](Self::send) signs an
/// event for every stream and keeps it for streams created later, as Tessera seeds new
/// streams.
///
/// A plain thread answers one request per connection, so it works under any runtime,
/// or none. It stops when dropped.
pub struct MockIssuer {
    issuer: String,
    address: SocketAddr,
    state: Arc<IssuerState>,
    is_stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
    signals: signals::Transmitter,
    introspection: introspection::Endpoint,
}

impl MockIssuer {
    /// Listens on a free port of 127.0.0.1 and publishes `keys`.
    pub fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let address = listener.local_addr().expect("the local address");
        let issuer = format!("http://{address}");
        let state = Arc::new(IssuerState {
            issuer: issuer.clone(),
            keys: Mutex::new(keys.iter().map(|key| key.public_jwk()).collect()),
            max_age: AtomicU64::new(900),
            ..IssuerState::default()
        });
        let is_stopping = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (state, is_stopping) = (Arc::clone(&state), Arc::clone(&is_stopping));
            move || {
                for stream in listener.incoming() {
                    if is_stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || answer(stream, &state));
                }
            }
        });
        Self { issuer, address, state, is_stopping, thread: Some(thread) }
    }

    /// The issuer identifier, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Publishes `keys` instead, under a new ETag.
    pub fn publish(&self, keys: &[&TestKey]) {
        self.publish_json(keys.iter().map(|key| key.public_jwk()).collect());
    }

    /// Publishes these JWKs, whatever they hold, under a new ETag.
    pub fn publish_json(&self, keys: Vec<Value>) {
        *self.state.keys.lock().expect("not poisoned") = keys;
        self.state.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The `max-age` of JWK Set responses, 900 unless set.
    pub fn set_max_age(&self, seconds: u64) {
        self.state.max_age.store(seconds, Ordering::SeqCst);
    }

    /// While set, the JWK Set endpoint answers 500.
    pub fn set_failing(&self, is_failing: bool) {
        self.state.is_failing.store(is_failing, Ordering::SeqCst);
    }

    /// While set, the JWK Set endpoint answers 200 with HTML.
    pub fn set_garbled(&self, is_garbled: bool) {
        self.state.is_garbled.store(is_garbled, Ordering::SeqCst);
    }

    /// Makes the discovery document name `issuer` rather than this one.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().expect("not poisoned") = Some(issuer.into());
    }

    /// Every GET of the JWK Set so far, whatever the answer.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// JWK Set requests that carried `If-None-Match`.
    pub fn conditional_requests(&self) -> usize {
        self.state.conditional_requests.load(Ordering::SeqCst)
    }

    /// JWK Set requests answered 304.
    pub fn not_modified(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// What the introspection endpoint answers about `token` from now on: `response`, as
    /// it is (see [`introspection_response`]).
    pub fn set_introspection(&self, token: &str, response: Value) {
        self.state.introspection.answer(token, response);
    }

    /// While not 200, the introspection endpoint answers every request with this status
    /// (one of 400, 401, 429, 500, 502, 503) and an OAuth error body.
    ///
    /// # Panics
    /// For another status.
    pub fn set_introspection_status(&self, status: u16) {
        self.state.introspection.set_status(status);
    }

    /// While set, the introspection endpoint answers 200 with HTML.
    pub fn set_introspection_garbled(&self, is_garbled: bool) {
        self.state.introspection.set_garbled(is_garbled);
    }

    /// How long the introspection endpoint takes to answer: no time unless set.
    pub fn set_introspection_delay(&self, delay: Duration) {
        self.state.introspection.set_delay(delay);
    }

    /// While set, the discovery document has no `introspection_endpoint` (the endpoint
    /// still answers).
    pub fn set_introspection_published(&self, is_published: bool) {
        self.state.introspection.set_hidden(!is_published);
    }

    /// Every request to the introspection endpoint so far, whatever the answer.
    pub fn introspection_requests(&self) -> usize {
        self.state.introspection.requests()
    }

    /// The most introspection requests the endpoint was handling at once so far.
    pub fn max_concurrent_introspections(&self) -> usize {
        self.state.introspection.max_in_flight()
    }

    /// Turns on the Shared Signals transmitter, which signs SETs with `key` (publish it
    /// too). Until then its endpoints answer 404.
    pub fn enable_signals(&self, key: &TestKey) {
        self.state.signals.enable(key);
    }

    /// Signs `event` for every stream and keeps it for the streams created later; returns
    /// the SETs' `jti`s.
    pub fn send(&self, event: &SecurityEvent) -> Vec<String> {
        self.state.signals.send(&self.issuer, std::slice::from_ref(event))
    }

    /// Like [`send`](Self::send), for events of one cause: they share a `txn` (SSF §4.1.9),
    /// as Tessera's `account-disabled` and `session-revoked` of a disabled user do.
    pub fn send_all(&self, events: &[SecurityEvent]) -> Vec<String> {
        self.state.signals.send(&self.issuer, events)
    }

    /// The claims of a SET for `event` on the first stream, with a fresh `jti`, unsigned:
    /// for tests that sign one themselves (forged, wrongly typed) and
    /// [`deliver_raw`](Self::deliver_raw) it.
    ///
    /// # Panics
    /// When there is no stream.
    pub fn set_claims(&self, event: &SecurityEvent) -> Value {
        self.state.signals.claims_for(&self.issuer, event)
    }

    /// Owes every stream `set`, whatever it is, under `jti`.
    pub fn deliver_raw(&self, jti: &str, set: &str) {
        self.state.signals.with(|state| state.deliver_raw(jti, set));
    }

    /// The streams, by id.
    pub fn stream_ids(&self) -> Vec<String> {
        self.state.signals.lock().stream_ids()
    }

    /// Deletes a stream, as Tessera does after `inactivity_timeout`; false if unknown.
    pub fn delete_stream(&self, stream_id: &str) -> bool {
        self.state.signals.with(|state| state.delete_stream(stream_id))
    }

    /// SETs owed and not yet acknowledged or refused, over all streams.
    pub fn owed(&self) -> usize {
        self.state.signals.lock().owed()
    }

    /// Every `jti` acknowledged so far, in order.
    pub fn acknowledged(&self) -> Vec<String> {
        self.state.signals.lock().acknowledged()
    }

    /// Every `setErrs` entry received so far: `(jti, err)`.
    pub fn set_errors(&self) -> Vec<(String, String)> {
        self.state.signals.lock().set_errors()
    }

    /// Requests to the token endpoint, polls, and verification requests so far.
    pub fn signal_requests(&self) -> (usize, usize, usize) {
        self.state.signals.lock().counts()
    }

    /// Forgets every access token issued to the receiver: its next request gets a 401.
    pub fn revoke_receiver_tokens(&self) {
        self.state.signals.with(|state| state.revoke_tokens());
    }

    /// While set, every Shared Signals endpoint and the token endpoint answer 500, and
    /// waiting long polls end with 503.
    pub fn set_signals_failing(&self, is_failing: bool) {
        self.state.signals.with(|state| state.configure(signals::Setting::Failing(is_failing)));
    }

    /// While set, polls succeed but deliver nothing (SETs stay owed): a transmitter that
    /// answers and has stopped delivering.
    pub fn set_signals_silent(&self, is_silent: bool) {
        self.state.signals.with(|state| state.configure(signals::Setting::Silent(is_silent)));
    }

    /// How long a long poll waits for a SET: 5 seconds unless set.
    pub fn set_long_poll(&self, wait: Duration) {
        self.state.signals.with(|state| state.configure(signals::Setting::LongPoll(wait)));
    }

    /// The least time between two verification requests of a stream (429 sooner): none
    /// unless set.
    pub fn set_min_verification_interval(&self, interval: Duration) {
        self.state.signals.with(|state| state.configure(signals::Setting::MinVerificationInterval(interval)));
    }

    /// The most streams the receiver may have (409 beyond): 10 unless set.
    pub fn set_max_streams(&self, max: usize) {
        self.state.signals.with(|state| state.configure(signals::Setting::MaxStreams(max)));
    }

    /// The `expires_in` of the receiver's access tokens: 300 seconds unless set.
    pub fn set_receiver_token_lifetime(&self, lifetime: Duration) {
        self.state.signals.with(|state| state.configure(signals::Setting::TokenLifetime(lifetime)));
    }
}

impl std::fmt::Debug for MockIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockIssuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        self.is_stopping.store(true, Ordering::SeqCst);
        self.state.signals.stop();
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it; the connection closes afterwards.
fn answer(stream: TcpStream, state: &IssuerState) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(request) = Request::read(&mut BufReader::new(&stream)) else { return };
    let response = match (request.method.as_str(), request.path()) {
        ("GET", "/.well-known/openid-configuration") => discovery(state),
        ("GET", "/jwks.json") => jwks(state, request.header("if-none-match")),
        ("POST", "/introspect") => state.introspection.handle(&request),
        _ => state.signals.handle(&state.issuer, &request),
    };
    let _ = (&stream).write_all(response.to_bytes().as_slice());
}

/// An HTTP/1.1 request, as much of it as the mock reads.
struct Request {
    method: String,
    /// The path and query.
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn read(reader: &mut impl BufRead) -> Option<Self> {
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line.trim_end().is_empty() => break,
                Ok(_) => {
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                    }
                }
            }
        }
        let mut request = Self { method, target, headers, body: Vec::new() };
        let length = request.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        request.body = vec![0; length];
        reader.read_exact(&mut request.body).ok()?;
        Some(request)
    }

    fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(path, _)| path)
    }

    /// A query parameter, empty when absent.
    fn query(&self, name: &str) -> String {
        let query = self.target.split_once('?').map_or("", |(_, query)| query);
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The client id and secret of `Authorization: Basic`, each form-decoded (RFC 6749
    /// §2.3.1: `client_secret_basic` form-encodes both before base64); `None` without the
    /// header, a part `None` when it does not decode.
    fn basic_credentials(&self) -> Option<(Option<String>, Option<String>)> {
        let credentials = self
            .header("authorization")
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())?;
        // `form_urlencoded::parse` reads `a+b%2F` as the key `a b/`: a form decoder.
        let decode = |part: &str| url::form_urlencoded::parse(part.as_bytes()).next().map(|(k, _)| k.into_owned());
        credentials.split_once(':').map(|(id, secret)| (decode(id), decode(secret)))
    }
}

struct Response {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn to_bytes(&self) -> Vec<u8> {
        let mut head =
            format!("HTTP/1.1 {}\r\nconnection: close\r\ncontent-length: {}\r\n", self.status, self.body.len());
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        [head.into_bytes(), self.body.clone().into_bytes()].concat()
    }
}

fn discovery(state: &IssuerState) -> Response {
    let issuer = state.discovery_issuer.lock().expect("not poisoned").clone().unwrap_or_else(|| state.issuer.clone());
    let mut body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks.json", state.issuer),
        "token_endpoint": format!("{}/token", state.issuer),
    });
    if !state.introspection.is_hidden() {
        body["introspection_endpoint"] = format!("{}/introspect", state.issuer).into();
    }
    Response { status: "200 OK", headers: vec![("content-type", "application/json".into())], body: body.to_string() }
}

fn jwks(state: &IssuerState, if_none_match: Option<&str>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if state.is_failing.load(Ordering::SeqCst) {
        return Response { status: "500 Internal Server Error", headers: Vec::new(), body: String::new() };
    }
    let cache_control = format!("public, max-age={}, must-revalidate", state.max_age.load(Ordering::SeqCst));
    if state.is_garbled.load(Ordering::SeqCst) {
        return Response {
            status: "200 OK",
            headers: vec![
                ("cache-control", cache_control),
                ("etag", "\"garbled\"".into()),
                ("content-type", "text/html".into()),
            ],
            body: "<html>maintenance</html>".into(),
        };
    }
    let etag = format!("\"v{}\"", state.version.load(Ordering::SeqCst));
    if let Some(if_none_match) = if_none_match {
        state.conditional_requests.fetch_add(1, Ordering::SeqCst);
        if if_none_match == etag {
            state.not_modified.fetch_add(1, Ordering::SeqCst);
            return Response {
                status: "304 Not Modified",
                headers: vec![("cache-control", cache_control), ("etag", etag)],
                body: String::new(),
            };
        }
    }
    let keys = state.keys.lock().expect("not poisoned").clone();
    Response {
        status: "200 OK",
        headers: vec![("cache-control", cache_control), ("etag", etag), ("content-type", "application/json".into())],
        body: json!({ "keys": keys }).to_string(),
    }
}
