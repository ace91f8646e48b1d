//! The load steps: one `Worker` per scenario, plus the preparation the stateful ones need.

use crate::driver::{Worker, REFUSED};
use crate::flows::{self, PreparedCode, Session, WebClient};
use crate::http::{basic_auth, encode_form, form_content_type, Conn, Response, Target};
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn expect_status(response: Result<Response, String>, statuses: &[u16]) -> Result<Response, String> {
    let response = response?;
    if statuses.contains(&response.status) {
        Ok(response)
    } else {
        Err(response.excerpt())
    }
}

/// POST /token, `client_credentials`, HTTP Basic: the same bytes every time.
pub struct ClientCredentials {
    conn: Conn,
    uri: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    body: Bytes,
}

impl ClientCredentials {
    pub fn new(target: &Target, client_id: &str, secret: &str, scope: Option<&str>) -> Self {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        Self {
            conn: Conn::new(target),
            uri: target.uri("/token"),
            headers: vec![basic_auth(client_id, secret), form_content_type()].into(),
            body: encode_form(&form),
        }
    }
}

impl Worker for ClientCredentials {
    async fn request(&mut self) -> Result<(), String> {
        let response = self.conn.send(Method::POST, &self.uri, &self.headers, self.body.clone()).await;
        let response = expect_status(response, &[200])?;
        // A 200 without a token would be a bug worth counting.
        if !response.body.starts_with(b"{\"access_token\":\"ey") {
            return Err(format!("no access token: {}", response.excerpt()));
        }
        Ok(())
    }
}

/// GET of a static document (JWKS, discovery).
pub struct Get {
    conn: Conn,
    uri: Uri,
}

impl Get {
    pub fn new(target: &Target, path: &str) -> Self {
        Self { conn: Conn::new(target), uri: target.uri(path) }
    }
}

impl Worker for Get {
    async fn request(&mut self) -> Result<(), String> {
        expect_status(self.conn.send(Method::GET, &self.uri, &[], Bytes::new()).await, &[200]).map(drop)
    }
}

/// POST /introspect of one valid access token (RFC 7662); must answer `active: true`.
pub struct Introspect {
    conn: Conn,
    uri: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    body: Bytes,
}

impl Introspect {
    pub fn new(target: &Target, client_id: &str, secret: &str, token: &str) -> Self {
        Self {
            conn: Conn::new(target),
            uri: target.uri("/introspect"),
            headers: vec![basic_auth(client_id, secret), form_content_type()].into(),
            body: encode_form(&[("token", token)]),
        }
    }
}

impl Worker for Introspect {
    async fn request(&mut self) -> Result<(), String> {
        let response = self.conn.send(Method::POST, &self.uri, &self.headers, self.body.clone()).await;
        let response = expect_status(response, &[200])?;
        if !response.body.windows(13).any(|w| w == b"\"active\":true") {
            return Err(format!("inactive: {}", response.excerpt()));
        }
        Ok(())
    }
}

/// One refresh-token chain: every request sends the token the previous one returned.
/// A failed refresh leaves the chain in an unknown state, so the worker starts a new
/// chain through the session (not timed) and reports the failure.
pub struct RefreshChain {
    conn: Conn,
    uri: Uri,
    client: Arc<WebClient>,
    session: Arc<Session>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    token: String,
    /// RFC 6749 §6 `scope`, to narrow the tokens of each refresh.
    scope: Option<String>,
    pub restarts: u64,
}

impl RefreshChain {
    pub fn new(
        target: &Target,
        client: Arc<WebClient>,
        session: Arc<Session>,
        token: String,
        scope: Option<String>,
    ) -> Self {
        let headers = vec![client.auth(), form_content_type()].into();
        Self { conn: Conn::new(target), uri: target.uri("/token"), client, session, headers, token, scope, restarts: 0 }
    }

    async fn refresh(&mut self) -> Result<(), String> {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", self.token.as_str())];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let body = encode_form(&form);
        let response = self.conn.send(Method::POST, &self.uri, &self.headers, body).await;
        let response = expect_status(response, &[200])?;
        let json = response.json().map_err(|e| e.to_string())?;
        match json["refresh_token"].as_str() {
            Some(next) if next != self.token => {
                self.token = next.to_owned();
                Ok(())
            }
            _ => Err(format!("no new refresh token: {}", response.excerpt())),
        }
    }
}

impl Worker for RefreshChain {
    async fn request(&mut self) -> Result<(), String> {
        let result = self.refresh().await;
        if result.is_err() {
            self.restarts += 1;
            if let Ok(token) = flows::start_chain(&mut self.conn, &self.client, &self.session).await {
                self.token = token;
            }
        }
        result
    }
}

/// Redeems codes prepared beforehand, one request each, until they run out.
pub struct CodeExchange {
    conn: Conn,
    uri: Uri,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    redirect_uri: String,
    codes: Vec<PreparedCode>,
}

impl CodeExchange {
    pub fn new(target: &Target, client: &WebClient, codes: Vec<PreparedCode>) -> Self {
        Self {
            conn: Conn::new(target),
            uri: target.uri("/token"),
            headers: vec![client.auth(), form_content_type()].into(),
            redirect_uri: client.redirect_uri.clone(),
            codes,
        }
    }
}

impl Worker for CodeExchange {
    async fn request(&mut self) -> Result<(), String> {
        let code = self.codes.pop().expect("exhausted() is checked first");
        let body = encode_form(&[
            ("grant_type", "authorization_code"),
            ("code", &code.code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &code.verifier),
        ]);
        let response = self.conn.send(Method::POST, &self.uri, &self.headers, body).await;
        let response = expect_status(response, &[200])?;
        if !response.body.starts_with(b"{\"access_token\":\"ey") {
            return Err(format!("no access token: {}", response.excerpt()));
        }
        Ok(())
    }

    fn exhausted(&self) -> bool {
        self.codes.is_empty()
    }
}

/// Prepares codes through the session with `parallel` connections, for at most
/// `budget` or until `max` codes exist. Codes live `tokens.authorization_code_ttl`
/// (60 s by default): preparation plus the exchange run must stay well inside it.
pub async fn prepare_codes(
    target: &Target,
    client: &Arc<WebClient>,
    session: &Arc<Session>,
    parallel: usize,
    budget: Duration,
    max: usize,
) -> anyhow::Result<(Vec<PreparedCode>, Duration)> {
    let started = Instant::now();
    let per_task = max.div_ceil(parallel);
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (target, client, session) = (target.clone(), client.clone(), session.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            let mut codes = Vec::with_capacity(per_task);
            while codes.len() < per_task && started.elapsed() < budget {
                codes.push(flows::authorize(&mut conn, &client, &session).await?);
            }
            anyhow::Ok(codes)
        }));
    }
    let mut codes = Vec::with_capacity(max);
    for task in tasks {
        codes.extend(task.await??);
    }
    Ok((codes, started.elapsed()))
}

/// Full password logins (issue 16): `GET /authorize` → login form → `POST /login` → code,
/// each one an argon2id check on the server. A 429 is counted as refused, and the worker
/// honours its `Retry-After` as a browser would; a 429 without one (the throttle's lockout,
/// not the password-check bound) is an error: the harness raises `login.max_failures` so
/// that the throttle stays out of the measurement.
pub struct Login {
    conn: Conn,
    client: Arc<WebClient>,
    username: String,
    password: Arc<str>,
    retry_after: Option<Duration>,
}

impl Login {
    pub fn new(target: &Target, client: Arc<WebClient>, username: &str, password: Arc<str>) -> Self {
        Self { conn: Conn::new(target), client, username: username.to_owned(), password, retry_after: None }
    }
}

impl Worker for Login {
    async fn request(&mut self) -> Result<(), String> {
        let attempt = flows::attempt_login(&mut self.conn, &self.client, &self.username, &self.password).await;
        match attempt.map_err(|e| format!("{e:#}"))? {
            flows::LoginAttempt::SignedIn(..) => Ok(()),
            flows::LoginAttempt::Refused { retry_after: Some(seconds) } => {
                self.retry_after = Some(Duration::from_secs(seconds));
                Err(format!("{REFUSED}429, Retry-After {seconds}"))
            }
            flows::LoginAttempt::Refused { retry_after: None } => {
                Err("429 without Retry-After: the login throttle".into())
            }
        }
    }

    fn backoff(&mut self) -> Option<Duration> {
        self.retry_after.take()
    }
}
