//! OpenID Connect Back-Channel Logout from the RP's side: an RP's back-channel endpoint on
//! 127.0.0.1 that records every Logout Token, and the validation an RP does (§2.6) with
//! `jsonwebtoken` and the served JWKS, no Tessera code.

use super::TestApp;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

type Received = Arc<Mutex<Vec<String>>>;

/// An RP's `backchannel_logout_uri`: answers each POST with the next status of its script,
/// then 200, and records the `logout_token` of each.
pub struct LogoutReceiver {
    pub url: String,
    received: Received,
    server: actix_web::dev::ServerHandle,
}

struct State {
    script: Mutex<VecDeque<u16>>,
    received: Received,
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/x-www-form-urlencoded"), "§2.5: a form POST");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    assert_eq!(form.len(), 1, "§2.5: only logout_token: {form:?}");
    assert_eq!(form[0].0, "logout_token");
    state.received.lock().unwrap().push(form[0].1.clone());
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header(("cache-control", "no-store"))
        .finish()
}

impl LogoutReceiver {
    pub fn start(script: Vec<u16>) -> Self {
        Self::start_on(0, script)
    }

    /// On `port` of 127.0.0.1 (0: any free one).
    pub fn start_on(port: u16, script: Vec<u16>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let url = format!("http://{}/backchannel-logout", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = web::Data::new(State { script: Mutex::new(script.into()), received: received.clone() });
        let server = HttpServer::new(move || {
            App::new().app_data(state.clone()).route("/backchannel-logout", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, received, server: handle }
    }

    /// Waits until `count` tokens arrived (or `within` passed); returns all so far.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received.lock().unwrap().clone();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

impl TestApp {
    /// The unverified `iss` of a token, to pick the replica that signed it.
    pub fn unverified_issuer(&self, token: &str) -> String {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("a JWS");
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["iss"].as_str().expect("iss").to_owned()
    }

    /// Validates a Logout Token as the RP `client_id` must (Back-Channel Logout §2.6):
    /// the signature with the JWKS key of its `kid` (RS256), `typ` `logout+jwt`, `iss`,
    /// `aud`, `iat` and `exp`, the back-channel-logout event as an object, `sid` and `sub`
    /// present, and no `nonce`. Returns the claims.
    pub async fn validate_logout_token(&self, token: &str, client_id: &str) -> Value {
        let header = decode_header(token).expect("a JWS header");
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"), "§2.4: explicit typing");
        assert_eq!(header.alg, Algorithm::RS256);
        let jwks = self.jwks().await;
        let jwk = jwks.find(header.kid.as_deref().expect("a kid")).expect("the token's key is published");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.address]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["iss", "aud", "iat", "exp", "jti"]);
        let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the Logout Token verifies with the JWKS")
            .claims;
        assert!(claims["events"][LOGOUT_EVENT].is_object(), "§2.4 events: {claims}");
        assert!(claims["sid"].is_string(), "sid (session_required): {claims}");
        assert!(claims["sub"].is_string(), "sub: {claims}");
        assert!(claims.get("nonce").is_none(), "§2.4: no nonce: {claims}");
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!((1..=120).contains(&lifetime), "a short-lived token: {claims}");
        claims
    }
}
