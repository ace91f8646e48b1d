//! DPoP (RFC 9449) as a client does it: a key pair made with aws-lc-rs, proofs signed with
//! it (ES256 or EdDSA), and the token and userinfo requests that carry them. Proofs can be
//! bent one claim or header at a time, for the negative tests.

use super::clients::TestClient;
use super::TestApp;
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera::clock::Clock;

/// A client's DPoP key.
pub enum DpopKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url(SHA-256(token)): `ath` (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    b64(digest(&SHA256, access_token.as_bytes()))
}

/// A proof's claims and header, each of which a test may bend.
pub struct Proof {
    pub htm: String,
    pub htu: String,
    pub iat: i64,
    pub jti: String,
    pub nonce: Option<String>,
    pub ath: Option<String>,
    pub typ: &'static str,
    /// Replaces the key's algorithm in the header (the signature stays the key's).
    pub alg: Option<&'static str>,
    /// Members added to the header's `jwk` (a private `d`, say).
    pub jwk_extra: Option<Value>,
}

impl Proof {
    pub fn new(htm: &str, htu: &str) -> Self {
        Self {
            htm: htm.into(),
            htu: htu.into(),
            iat: chrono::Utc::now().timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            nonce: None,
            ath: None,
            typ: "dpop+jwt",
            alg: None,
            jwk_extra: None,
        }
    }

    /// A proof for `htm` and the server's `path`, at the server's time (tests move it).
    pub fn at(app: &TestApp, htm: &str, path: &str) -> Self {
        Self { iat: app.clock.now().timestamp(), ..Self::new(htm, &app.url(path)) }
    }

    pub fn nonce(self, nonce: &str) -> Self {
        Self { nonce: Some(nonce.into()), ..self }
    }

    pub fn ath(self, access_token: &str) -> Self {
        Self { ath: Some(ath(access_token)), ..self }
    }
}

impl DpopKey {
    pub fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn ed25519() -> Self {
        Self::EdDsa(Ed25519KeyPair::generate().unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
        }
    }

    /// The public JWK (RFC 7517; RFC 7518 §6.2 for EC, RFC 8037 §2 for OKP).
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(pair) => {
                let point = pair.public_key().as_ref(); // 0x04 || x || y
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Self::EdDsa(pair) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())}),
        }
    }

    /// The JWK SHA-256 thumbprint (RFC 7638 §3): the required members, in lexicographic
    /// order, without whitespace. Computed here independently of Tessera.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                jwk["x"].as_str().unwrap(),
                jwk["y"].as_str().unwrap()
            ),
            Self::EdDsa(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, jwk["x"].as_str().unwrap()),
        };
        b64(digest(&SHA256, canonical.as_bytes()))
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(pair) => pair.sign(&SystemRandom::new(), input).unwrap().as_ref().to_vec(),
            Self::EdDsa(pair) => pair.sign(input).as_ref().to_vec(),
        }
    }

    /// A signed proof (RFC 9449 §4.2).
    pub fn sign_proof(&self, proof: &Proof) -> String {
        let mut jwk = self.jwk();
        if let Some(Value::Object(extra)) = &proof.jwk_extra {
            for (name, value) in extra {
                jwk[name] = value.clone();
            }
        }
        let header = json!({"typ": proof.typ, "alg": proof.alg.unwrap_or(self.alg()), "jwk": jwk});
        let mut claims = json!({"jti": proof.jti, "htm": proof.htm, "htu": proof.htu, "iat": proof.iat});
        if let Some(nonce) = &proof.nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(ath) = &proof.ath {
            claims["ath"] = json!(ath);
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(signature))
    }

    /// A proof for `POST {issuer}/token`, made at the server's time.
    pub fn token_proof(&self, app: &TestApp, nonce: Option<&str>) -> String {
        let proof = Proof::at(app, "POST", "/token");
        self.sign_proof(&Proof { nonce: nonce.map(str::to_owned), ..proof })
    }

    /// A proof for `GET {issuer}/userinfo` with `access_token`.
    pub fn userinfo_proof(&self, app: &TestApp, access_token: &str) -> String {
        self.sign_proof(&Proof::at(app, "GET", "/userinfo").ath(access_token))
    }
}

/// An unsigned proof (`alg: none`) or any header and claims, as an attacker writes them.
pub fn unsigned_jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.to_string()), b64(claims.to_string()), b64(signature))
}

impl TestApp {
    /// POST /token as `client` with `form` and, if given, a `DPoP` header.
    pub async fn token_request_with_proof(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
        proof: Option<&str>,
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        let request = self.http.post(self.url("/token"));
        let request = match &client.secret {
            Some(secret) => request.basic_auth(&client.id, Some(secret)),
            None => {
                form.push(("client_id", &client.id));
                request
            }
        };
        let request = match proof {
            Some(proof) => request.header("DPoP", proof),
            None => request,
        };
        request.form(&form).send().await.unwrap()
    }

    /// A current server nonce (RFC 9449 §8), learnt the way a client learns it: a token
    /// request whose proof has none is answered `use_dpop_nonce` with a `DPoP-Nonce`.
    pub async fn dpop_nonce(&self, client: &TestClient, key: &DpopKey) -> String {
        let form = [("grant_type", "client_credentials")];
        let response = self.token_request_with_proof(client, &form, Some(&key.token_proof(self, None))).await;
        assert_eq!(response.status(), 400);
        let nonce = response.headers()["dpop-nonce"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "use_dpop_nonce", "{body}");
        nonce
    }

    /// A token request with a DPoP proof of `key`, with a current nonce.
    pub async fn dpop_token_request(
        &self,
        client: &TestClient,
        form: &[(&str, &str)],
        key: &DpopKey,
    ) -> reqwest::Response {
        let nonce = self.dpop_nonce(client, key).await;
        self.token_request_with_proof(client, form, Some(&key.token_proof(self, Some(&nonce)))).await
    }

    /// GET /userinfo with `Authorization: {scheme} {token}` and, if given, a `DPoP` proof.
    pub async fn userinfo_with(&self, scheme: &str, access_token: &str, proof: Option<&str>) -> reqwest::Response {
        let request = self.http.get(self.url("/userinfo")).header("Authorization", format!("{scheme} {access_token}"));
        let request = match proof {
            Some(proof) => request.header("DPoP", proof),
            None => request,
        };
        request.send().await.unwrap()
    }
}
