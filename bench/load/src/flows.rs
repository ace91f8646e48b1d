//! The browser side of the login flow, just enough to prepare authorization codes and
//! refresh-token chains: one password login (argon2 runs once), then the SSO session
//! cookie makes every further `GET /authorize` redirect straight back with a new code.

use crate::http::{basic_auth, Conn};
use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hyper::header::{HeaderName, HeaderValue, COOKIE, RETRY_AFTER};
use std::collections::BTreeMap;

/// A confidential client registered for the authorization code grant.
#[derive(Clone, Debug)]
pub struct WebClient {
    pub id: String,
    pub secret: String,
    pub redirect_uri: String,
    pub scope: String,
}

impl WebClient {
    pub fn auth(&self) -> (HeaderName, HeaderValue) {
        basic_auth(&self.id, &self.secret)
    }
}

/// A code and the PKCE verifier that redeems it.
#[derive(Clone, Debug)]
pub struct PreparedCode {
    pub code: String,
    pub verifier: String,
}

/// The browser's cookies after logging in.
#[derive(Clone, Debug)]
pub struct Session {
    cookie: HeaderValue,
}

impl Session {
    pub fn header(&self) -> (HeaderName, HeaderValue) {
        (COOKIE, self.cookie.clone())
    }
}

fn cookie_header(jar: &BTreeMap<String, String>) -> anyhow::Result<HeaderValue> {
    let joined = jar.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ");
    Ok(HeaderValue::from_str(&joined)?)
}

/// A PKCE pair (RFC 7636 §4.1–4.2) from 32 random bytes.
fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random number generator works");
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_path(client: &WebClient, challenge: &str, state: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", &client.redirect_uri)
        .append_pair("scope", &client.scope)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("/authorize?{query}")
}

/// Reads `name="…" value="…"` from the login page.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// The `code` of a redirect to the client, after checking `state`.
fn code_from_redirect(location: &str, state: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(location).with_context(|| format!("Location is not a URL: {location}"))?;
    let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        bail!("the authorization request failed: {error} ({location})");
    }
    if params.get("state").map(String::as_str) != Some(state) {
        bail!("the redirect does not carry our state: {location}");
    }
    params.get("code").cloned().with_context(|| format!("no code in {location}"))
}

fn random_state() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random number generator works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What one password login came to.
pub enum LoginAttempt {
    /// The session's cookies and the code of the redirect to the client.
    SignedIn(Session, PreparedCode),
    /// 429: the password-check bound (`Retry-After`, seconds) or the throttle (`None`).
    Refused { retry_after: Option<u64> },
}

/// One full password login: `GET /authorize` (the login page, its `pending` and CSRF
/// fields and cookie), then `POST /login` with the credentials, which redirects to the
/// client with a code (a first-party client needs no consent).
pub async fn attempt_login(
    conn: &mut Conn,
    client: &WebClient,
    username: &str,
    password: &str,
) -> anyhow::Result<LoginAttempt> {
    let (verifier, challenge) = pkce();
    let state = random_state();
    let page = conn.get(&authorize_path(client, &challenge, &state), &[]).await?;
    if page.status != 200 {
        bail!("GET /authorize should show the login page: {}", page.excerpt());
    }
    let mut jar: BTreeMap<String, String> =
        page.set_cookies().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
    let html = String::from_utf8_lossy(&page.body);
    let pending = hidden_field(&html, "pending").context("the login page has no `pending` field")?;
    let csrf = hidden_field(&html, "csrf_token").context("the login page has no `csrf_token` field")?;
    let form = [("pending", pending.as_str()), ("csrf_token", &csrf), ("username", username), ("password", password)];
    let response = conn.post_form("/login", &[(COOKIE, cookie_header(&jar)?)], &form).await?;
    if response.status == 429 {
        let retry_after = response.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
        return Ok(LoginAttempt::Refused { retry_after });
    }
    if response.status != 303 {
        bail!(
            "POST /login should redirect to the client (a first-party client needs no consent): {}",
            response.excerpt()
        );
    }
    jar.extend(response.set_cookies().map(|(name, value)| (name.to_owned(), value.to_owned())));
    let code = code_from_redirect(response.location().context("303 without Location")?, &state)?;
    Ok(LoginAttempt::SignedIn(Session { cookie: cookie_header(&jar)? }, PreparedCode { code, verifier }))
}

/// Logs in with the password once; returns the session and the first code.
pub async fn log_in(
    conn: &mut Conn,
    client: &WebClient,
    username: &str,
    password: &str,
) -> anyhow::Result<(Session, PreparedCode)> {
    match attempt_login(conn, client, username, password).await? {
        LoginAttempt::SignedIn(session, code) => Ok((session, code)),
        LoginAttempt::Refused { retry_after } => bail!("POST /login was refused (429, Retry-After {retry_after:?})"),
    }
}

/// One more code through the SSO session: no password, no page.
pub async fn authorize(conn: &mut Conn, client: &WebClient, session: &Session) -> anyhow::Result<PreparedCode> {
    let (verifier, challenge) = pkce();
    let state = random_state();
    let response = conn.get(&authorize_path(client, &challenge, &state), &[session.header()]).await?;
    if response.status != 303 {
        bail!("GET /authorize with a session should redirect back with a code: {}", response.excerpt());
    }
    let code = code_from_redirect(response.location().context("303 without Location")?, &state)?;
    Ok(PreparedCode { code, verifier })
}

/// POST /token with the authorization_code grant; returns the token response.
pub async fn exchange(conn: &mut Conn, client: &WebClient, code: &PreparedCode) -> anyhow::Result<serde_json::Value> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", &client.redirect_uri),
        ("code_verifier", &code.verifier),
    ];
    let response = conn.post_form("/token", &[client.auth()], &form).await?;
    if response.status != 200 {
        bail!("the code exchange failed: {}", response.excerpt());
    }
    response.json()
}

/// A new refresh-token chain: a code through the session, exchanged for tokens.
pub async fn start_chain(conn: &mut Conn, client: &WebClient, session: &Session) -> anyhow::Result<String> {
    let code = authorize(conn, client, session).await?;
    let tokens = exchange(conn, client, &code).await?;
    tokens["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no refresh_token in the code exchange (scope needs offline_access): {tokens}"))
}
