//! Issue 13's client_credentials variants: the client authenticates with a signed
//! assertion (`private_key_jwt`, RFC 7523 §2.2) instead of a secret, or binds its token to
//! a key with a DPoP proof (RFC 9449 §4). Each request carries a fresh JWT — a new `jti`
//! every time, since both are single-use — so each costs Tessera one ES256 verification
//! (and one `jti` row) on top of the secret-based scenario.
//!
//! The load generator signs with ES256: about 20 µs per signature with aws-lc, so the
//! client's work takes little from the server's two cores (an RS256 client would spend
//! as much as the server's own signature).

use crate::driver::Worker;
use crate::http::{basic_auth, encode_form, form_content_type, Conn, Response, Target};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// An ES256 key pair and its public JWK (RFC 7518 §6.2.1).
pub struct Es256Key {
    pair: EcdsaKeyPair,
    pub jwk: Value,
    rng: SystemRandom,
}

impl Es256Key {
    pub fn generate() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("ES256 key generation failed"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> anyhow::Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| anyhow::anyhow!("not an ES256 PKCS#8 key: {e}"))?;
        // The uncompressed point: 0x04 || x || y, 32 bytes each.
        let point = pair.public_key().as_ref();
        anyhow::ensure!(point.len() == 65 && point[0] == 4, "unexpected P-256 public key encoding");
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Ok(Self { pair, jwk, rng: SystemRandom::new() })
    }

    /// A new PKCS#8 key file's bytes.
    pub fn new_pkcs8() -> anyhow::Result<Vec<u8>> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("ES256 key generation failed"))?;
        Ok(pkcs8.as_ref().to_vec())
    }

    /// A compact JWS (RFC 7515 §7.1) of `claims` under `header`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = self.pair.sign(&self.rng, jws.as_bytes()).expect("ECDSA signing does not fail");
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        jws
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// Unique across workers and runs: a per-process random prefix and a counter.
fn next_jti() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static PREFIX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut bytes = [0u8; 12];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system RNG works");
        URL_SAFE_NO_PAD.encode(bytes)
    });
    format!("{}-{}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn expect_token(response: Result<Response, String>, token_type: &str) -> Result<Response, String> {
    let response = response?;
    if response.status != 200 || !response.body.starts_with(b"{\"access_token\":\"ey") {
        return Err(response.excerpt());
    }
    let wanted = format!("\"token_type\":\"{token_type}\"");
    if !response.body.windows(wanted.len()).any(|w| w == wanted.as_bytes()) {
        return Err(format!("not a {token_type} token: {}", response.excerpt()));
    }
    Ok(response)
}

/// POST /token, `client_credentials`, authenticated with a fresh `private_key_jwt`
/// assertion (RFC 7523 §3: iss = sub = client id, aud = the token endpoint, exp, jti).
pub struct PrivateKeyJwt {
    conn: Conn,
    uri: Uri,
    audience: String,
    client_id: String,
    key: Arc<Es256Key>,
    header: Value,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    scope: Option<String>,
}

impl PrivateKeyJwt {
    pub fn new(target: &Target, client_id: &str, key: Arc<Es256Key>, scope: Option<&str>) -> Self {
        Self {
            conn: Conn::new(target),
            uri: target.uri("/token"),
            audience: format!("{}/token", target.base),
            client_id: client_id.to_owned(),
            key,
            header: json!({ "alg": "ES256", "typ": "JWT", "kid": "bench-1" }),
            headers: vec![form_content_type()].into(),
            scope: scope.map(str::to_owned),
        }
    }
}

impl Worker for PrivateKeyJwt {
    async fn request(&mut self) -> Result<(), String> {
        let iat = now();
        let claims = json!({
            "iss": self.client_id, "sub": self.client_id, "aud": self.audience,
            "jti": next_jti(), "iat": iat, "exp": iat + 60,
        });
        let assertion = self.key.sign(&self.header, &claims);
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let response = self.conn.send(Method::POST, &self.uri, &self.headers, encode_form(&form)).await;
        expect_token(response, "Bearer").map(drop)
    }
}

/// POST /token, `client_credentials` with HTTP Basic, plus a DPoP proof of a key the
/// worker holds (RFC 9449 §5). A server nonce (§8) is taken from `DPoP-Nonce` when the
/// server asks for one (`use_dpop_nonce`, retried once inside the same request, as a
/// client would) or rotates it on a success.
pub struct Dpop {
    conn: Conn,
    uri: Uri,
    htu: String,
    key: Es256Key,
    header: Value,
    body: bytes::Bytes,
    basic: (HeaderName, HeaderValue),
    nonce: Option<String>,
}

static DPOP: HeaderName = HeaderName::from_static("dpop");
static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

impl Dpop {
    pub fn new(target: &Target, client_id: &str, secret: &str, scope: Option<&str>) -> anyhow::Result<Self> {
        let key = Es256Key::generate()?;
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk });
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        Ok(Self {
            conn: Conn::new(target),
            uri: target.uri("/token"),
            htu: format!("{}/token", target.base),
            key,
            header,
            body: encode_form(&form),
            basic: basic_auth(client_id, secret),
            nonce: None,
        })
    }

    fn proof(&self) -> String {
        let mut claims = json!({ "jti": next_jti(), "htm": "POST", "htu": self.htu, "iat": now() });
        if let Some(nonce) = &self.nonce {
            claims["nonce"] = json!(nonce);
        }
        self.key.sign(&self.header, &claims)
    }

    async fn send(&mut self) -> Result<Response, String> {
        let proof = HeaderValue::from_str(&self.proof()).map_err(|e| e.to_string())?;
        let headers = [self.basic.clone(), form_content_type(), (DPOP.clone(), proof)];
        let response = self.conn.send(Method::POST, &self.uri, &headers, self.body.clone()).await?;
        if let Some(nonce) = response.headers.get(&DPOP_NONCE).and_then(|v| v.to_str().ok()) {
            self.nonce = Some(nonce.to_owned());
        }
        Ok(response)
    }
}

impl Worker for Dpop {
    async fn request(&mut self) -> Result<(), String> {
        let mut response = self.send().await?;
        if response.status == 400 && response.body.windows(14).any(|w| w == b"use_dpop_nonce") {
            response = self.send().await?;
        }
        expect_token(Ok(response), "DPoP").map(drop)
    }
}

/// `tessera-bench client-key`: a new ES256 key in PKCS#8 (for the load generator) and
/// its public JWK Set (for `tessera client create --auth private_key_jwt --jwks-file`).
pub fn write_client_key(pkcs8_path: &std::path::Path, jwks_path: &std::path::Path) -> anyhow::Result<()> {
    let pkcs8 = Es256Key::new_pkcs8()?;
    let key = Es256Key::from_pkcs8(&pkcs8)?;
    let mut jwk = key.jwk.clone();
    jwk["use"] = json!("sig");
    jwk["alg"] = json!("ES256");
    jwk["kid"] = json!("bench-1");
    std::fs::write(pkcs8_path, &pkcs8).with_context(|| format!("writing {}", pkcs8_path.display()))?;
    std::fs::write(jwks_path, json!({ "keys": [jwk] }).to_string())
        .with_context(|| format!("writing {}", jwks_path.display()))?;
    Ok(())
}

pub fn read_client_key(pkcs8_path: &std::path::Path) -> anyhow::Result<Arc<Es256Key>> {
    let pkcs8 = std::fs::read(pkcs8_path).with_context(|| format!("reading {}", pkcs8_path.display()))?;
    Ok(Arc::new(Es256Key::from_pkcs8(&pkcs8)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn signatures_verify_with_the_published_jwk() {
        let key = Es256Key::generate().unwrap();
        let jws = key.sign(&json!({ "alg": "ES256" }), &json!({ "jti": next_jti() }));
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let x = URL_SAFE_NO_PAD.decode(key.jwk["x"].as_str().unwrap()).unwrap();
        let y = URL_SAFE_NO_PAD.decode(key.jwk["y"].as_str().unwrap()).unwrap();
        let point = [&[4u8][..], &x, &y].concat();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(input.as_bytes(), &signature).unwrap();
        assert_ne!(next_jti(), next_jti());
    }
}
