//! A tiny web app that logs people in with Tessera, the way a real relying party does:
//! `/` links to `/login`, which redirects to `/authorize` with state, nonce and PKCE;
//! `/callback` checks `state` and `iss`, exchanges the code at `/token` and shows who
//! signed in. `/logout` sends the browser to Tessera's end_session_endpoint (RP-Initiated
//! Logout, without an id_token_hint, so Tessera asks first) with a `state`, and
//! `/logged-out`, the registered post_logout_redirect_uri, checks that state. It keeps
//! what a test needs to check (the tokens, the sign-outs) in memory.

use super::browser::Pkce;
use super::clients::{ClientSpec, TestClient};
use super::TestApp;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

/// A sign-in the app completed: the tokens it received and the nonce it sent.
#[derive(Clone, Debug)]
pub struct SignIn {
    pub nonce: String,
    pub id_token: String,
    pub access_token: String,
}

/// What `/login` remembers until the browser comes back to `/callback`.
struct PendingLogin {
    nonce: String,
    verifier: String,
}

struct AppState {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    post_logout_redirect_uri: String,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, PendingLogin>>,
    sign_ins: Mutex<Vec<SignIn>>,
    /// The `state`s `/logout` sent that have not come back yet.
    pending_logouts: Mutex<HashSet<String>>,
    /// The `state`s that came back to `/logged-out`, oldest first.
    sign_outs: Mutex<Vec<String>>,
}

pub struct ExampleApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The app's registration at Tessera (a confidential, third-party web app: Tessera
    /// asks the user's consent the first time).
    pub client: TestClient,
    state: web::Data<AppState>,
    handle: ServerHandle,
}

impl ExampleApp {
    /// Registers the app as a client of `tessera` and starts it on a random local port.
    pub async fn spawn(tessera: &TestApp) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port for the example app");
        let address = format!("http://{}", listener.local_addr().unwrap());
        let redirect_uri = format!("{address}/callback");
        let post_logout_redirect_uri = format!("{address}/logged-out");
        // `ClientSpec` holds `&'static str`s; two small leaks per test are fine.
        let redirect: &'static str = redirect_uri.clone().leak();
        let post_logout: &'static str = post_logout_redirect_uri.clone().leak();
        let spec = ClientSpec {
            redirect_uris: vec![redirect],
            post_logout_redirect_uris: vec![post_logout],
            ..ClientSpec::web_app()
        };
        let client = tessera.register_client(spec).await;
        let state = web::Data::new(AppState {
            issuer: tessera.address.clone(),
            client_id: client.id.clone(),
            client_secret: client.secret().to_owned(),
            redirect_uri,
            post_logout_redirect_uri,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            pending: Mutex::default(),
            sign_ins: Mutex::default(),
            pending_logouts: Mutex::default(),
            sign_outs: Mutex::default(),
        });
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/", web::get().to(home))
                .route("/login", web::get().to(login))
                .route("/callback", web::get().to(callback))
                .route("/logout", web::get().to(logout))
                .route("/logged-out", web::get().to(logged_out))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("the example app listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { address, client, state, handle }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The sign-ins completed so far, oldest first.
    pub fn sign_ins(&self) -> Vec<SignIn> {
        self.state.sign_ins.lock().unwrap().clone()
    }

    /// The `state` of each sign-out that came back to `/logged-out`, oldest first.
    pub fn sign_outs(&self) -> Vec<String> {
        self.state.sign_outs.lock().unwrap().clone()
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

fn page(status: u16, title: &str, body: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap();
    HttpResponse::build(status).content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Example app</title></head>\n\
         <body><h1>Example app</h1>\n{body}\n</body></html>\n",
        escape(title)
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn error_page(status: u16, message: &str) -> HttpResponse {
    page(status, "Sign-in failed", &format!("<p id=\"error\">{}</p>", escape(message)))
}

async fn home() -> HttpResponse {
    page(200, "Welcome", "<p>You are not signed in.</p>\n<p><a href=\"/login\">Log in</a></p>")
}

async fn login(app: web::Data<AppState>) -> HttpResponse {
    let state = format!("state-{}", uuid::Uuid::new_v4().simple());
    let nonce = format!("nonce-{}", uuid::Uuid::new_v4().simple());
    let pkce = Pkce::new();
    let mut url = url::Url::parse(&format!("{}/authorize", app.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", &app.redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    app.pending.lock().unwrap().insert(state, PendingLogin { nonce, verifier: pkce.verifier });
    HttpResponse::SeeOther().insert_header(("location", url.to_string())).finish()
}

async fn callback(app: web::Data<AppState>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    // The state is single use: take it out whatever happens next.
    let pending = query.get("state").and_then(|state| app.pending.lock().unwrap().remove(state));
    let Some(pending) = pending else {
        return error_page(400, "unknown or missing state");
    };
    if query.get("iss") != Some(&app.issuer) {
        return error_page(400, &format!("unexpected iss {:?} (RFC 9207)", query.get("iss")));
    }
    if let Some(error) = query.get("error") {
        return error_page(400, &format!("Tessera said {error}: {}", query.get("error_description").map_or("", |d| d)));
    }
    let Some(code) = query.get("code") else {
        return error_page(400, "no code in the callback");
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &app.redirect_uri),
        ("code_verifier", &pending.verifier),
    ];
    let response = app
        .http
        .post(format!("{}/token", app.issuer))
        .basic_auth(&app.client_id, Some(&app.client_secret))
        .form(&form)
        .send()
        .await;
    let body: serde_json::Value = match response {
        Ok(response) if response.status() == 200 => match response.json().await {
            Ok(body) => body,
            Err(error) => return error_page(502, &format!("the token response is not JSON: {error}")),
        },
        Ok(response) => {
            let status = response.status();
            return error_page(502, &format!("token endpoint: {status} {}", response.text().await.unwrap_or_default()));
        }
        Err(error) => return error_page(502, &format!("token endpoint unreachable: {error}")),
    };
    let (Some(id_token), Some(access_token)) = (body["id_token"].as_str(), body["access_token"].as_str()) else {
        return error_page(502, &format!("no id_token or access_token in {body}"));
    };
    // For display only: the test verifies the signature against the JWKS.
    let Some(claims) = id_token_payload(id_token) else {
        return error_page(502, "the ID token is not a JWT");
    };
    if claims["nonce"] != pending.nonce.as_str() {
        return error_page(400, "the ID token's nonce is not the one sent");
    }
    let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
    app.sign_ins.lock().unwrap().push(SignIn {
        nonce: pending.nonce,
        id_token: id_token.to_owned(),
        access_token: access_token.to_owned(),
    });
    let body = format!("<p id=\"status\">Signed in as {}</p>\n<p><a href=\"/logout\">Log out</a></p>", escape(&sub));
    page(200, "Signed in", &body)
}

/// RP-Initiated Logout 1.0 §2, without an id_token_hint: `client_id` says whose
/// post_logout_redirect_uri it is, and Tessera asks the user before signing them out.
async fn logout(app: web::Data<AppState>) -> HttpResponse {
    let state = format!("logout-{}", uuid::Uuid::new_v4().simple());
    let mut url = url::Url::parse(&format!("{}/logout", app.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("post_logout_redirect_uri", &app.post_logout_redirect_uri)
        .append_pair("state", &state);
    app.pending_logouts.lock().unwrap().insert(state);
    HttpResponse::SeeOther().insert_header(("location", url.to_string())).finish()
}

async fn logged_out(app: web::Data<AppState>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let Some(state) = query.get("state").filter(|state| app.pending_logouts.lock().unwrap().remove(*state)) else {
        return page(400, "Sign-out failed", "<p id=\"error\">unknown or missing state</p>");
    };
    app.sign_outs.lock().unwrap().push(state.clone());
    page(200, "Signed out", "<p id=\"status\">Signed out</p>\n<p><a href=\"/login\">Log in</a></p>")
}

fn id_token_payload(id_token: &str) -> Option<serde_json::Value> {
    let payload = URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1)?).ok()?;
    serde_json::from_slice(&payload).ok()
}
