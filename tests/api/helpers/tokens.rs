//! Token requests, and verification the way an independent resource server or relying
//! party does it: fetch the JWKS over HTTP, pick the key by `kid`, verify with `jsonwebtoken`.

use super::TestApp;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

impl TestApp {
    /// POST /token with `client_credentials`, authenticating with HTTP Basic.
    pub async fn client_credentials(&self, id: &str, secret: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.http.post(self.url("/token")).basic_auth(id, Some(secret)).form(&form).send().await.expect("token request")
    }

    /// POST /token with a raw body and content type, for malformed-request tests.
    pub async fn post_token_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn jwks(&self) -> JwkSet {
        let response = self.http.get(self.url("/jwks.json")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.expect("a JWK Set")
    }

    /// Verifies an access token against the served JWKS (RFC 9068 §4) for `audience`;
    /// returns its claims. Panics with the reason when it does not verify.
    pub async fn verify_access_token(&self, token: &str, audience: &str) -> Value {
        let header = decode_header(token).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
        assert_eq!(header.alg, Algorithm::RS256);
        let kid = header.kid.expect("a kid");
        let jwks = self.jwks().await;
        let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
        let key = DecodingKey::from_jwk(jwk).expect("an RSA JWK");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.address]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["iss", "exp", "aud", "sub", "iat"]);
        let data = decode::<Value>(token, &key, &validation).expect("the token verifies with the JWKS");
        data.claims
    }

    /// Verifies an ID token as a relying party must (OIDC Core §3.1.3.7): RS256, with the
    /// key the JWKS publishes for its `kid`, issued by us for `client_id`; returns its claims.
    pub async fn verify_id_token(&self, id_token: &str, client_id: &str) -> Value {
        let header = decode_header(id_token).expect("a JWS header");
        assert_eq!(header.alg, Algorithm::RS256);
        let jwks = self.jwks().await;
        let jwk = jwks.find(header.kid.as_deref().expect("a kid")).expect("the ID token's kid is published");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.address]);
        validation.set_audience(&[client_id]);
        decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the ID token verifies with the JWKS")
            .claims
    }
}
