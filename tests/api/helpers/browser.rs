//! A browser, as far as the login flow cares: a cookie jar, forms, redirects.

use super::clients::TestClient;
use super::TestApp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use std::collections::HashMap;
use tessera::domain::user::{Password, User, UserId, Username};

pub const PASSWORD: &str = "correct horse battery staple";

/// A PKCE pair (RFC 7636 §4.1–4.2).
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        Self { challenge: URL_SAFE_NO_PAD.encode(digest), verifier }
    }
}

/// The parameters of an authorization request; `params()` renders them.
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub pkce: Pkce,
    pub extra: Vec<(String, String)>,
}

impl AuthorizeRequest {
    pub fn new(client: &TestClient, redirect_uri: &str) -> Self {
        Self {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope: Some("openid profile email".into()),
            state: Some(format!("state-{}", uuid::Uuid::new_v4().simple())),
            nonce: Some(format!("nonce-{}", uuid::Uuid::new_v4().simple())),
            pkce: Pkce::new(),
            extra: vec![],
        }
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = vec![
            ("response_type".to_owned(), "code".to_owned()),
            ("client_id".to_owned(), self.client_id.clone()),
            ("redirect_uri".to_owned(), self.redirect_uri.clone()),
            ("code_challenge".to_owned(), self.pkce.challenge.clone()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
        ];
        for (name, value) in [("scope", &self.scope), ("state", &self.state), ("nonce", &self.nonce)] {
            if let Some(value) = value {
                params.push((name.to_owned(), value.clone()));
            }
        }
        params.extend(self.extra.iter().cloned());
        params
    }
}

/// The hidden fields of a login or consent form.
#[derive(Debug, Clone)]
pub struct FormTokens {
    pub pending: String,
    pub csrf_token: String,
}

/// Reads `name="…" value="…"` from a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

pub fn form_tokens(html: &str) -> FormTokens {
    FormTokens {
        pending: hidden_field(html, "pending").expect("a pending field"),
        csrf_token: hidden_field(html, "csrf_token").expect("a csrf_token field"),
    }
}

/// The query parameters of a redirect's `Location`.
pub fn redirect_params(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), 303, "expected a redirect");
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).expect("an absolute Location");
    url.query_pairs().into_owned().collect()
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

impl TestApp {
    pub async fn create_user(&self, username: &str) -> User {
        let now = Utc::now();
        let user = User {
            id: UserId::generate(),
            username: Username::parse(username).unwrap(),
            email: Some(format!("{username}@example.com")),
            email_verified: false,
            name: Some(format!("{username} Example")),
            password_hash: tessera::password::hash(Password::parse(PASSWORD.into()).unwrap()).await.unwrap(),
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        self.storage.insert_user(&user).await.unwrap();
        user
    }

    pub async fn get_authorize(&self, request: &AuthorizeRequest) -> reqwest::Response {
        self.http.get(self.url("/authorize")).query(&request.params()).send().await.unwrap()
    }

    pub async fn submit_login(&self, tokens: &FormTokens, username: &str, password: &str) -> reqwest::Response {
        let form = [
            ("pending", tokens.pending.as_str()),
            ("csrf_token", &tokens.csrf_token),
            ("username", username),
            ("password", password),
        ];
        self.http.post(self.url("/login")).form(&form).send().await.unwrap()
    }

    pub async fn submit_consent(&self, tokens: &FormTokens, decision: &str) -> reqwest::Response {
        let form = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", decision)];
        self.http.post(self.url("/consent")).form(&form).send().await.unwrap()
    }

    /// GET /authorize, log in, allow consent if asked; returns the redirect's parameters.
    pub async fn authorize_and_log_in(&self, request: &AuthorizeRequest, user: &User) -> HashMap<String, String> {
        let page = self.get_authorize(request).await;
        assert_eq!(page.status(), 200, "the login page");
        let html = page.text().await.unwrap();
        let tokens = form_tokens(&html);
        if !html.contains("name=\"password\"") {
            // Already signed in here: the page is the consent page, answered as such.
            return redirect_params(&self.submit_consent(&tokens, "allow").await);
        }
        let response = self.submit_login(&tokens, user.username.as_str(), PASSWORD).await;
        self.finish_consent(response).await
    }

    /// Follows a response that is either the consent page (allowed) or the final redirect.
    pub async fn finish_consent(&self, response: reqwest::Response) -> HashMap<String, String> {
        if response.status() == 200 {
            let tokens = form_tokens(&response.text().await.unwrap());
            let response = self.submit_consent(&tokens, "allow").await;
            return redirect_params(&response);
        }
        redirect_params(&response)
    }

    /// POST /token with the authorization_code grant (Basic auth when `client` has a secret).
    pub async fn exchange_code(
        &self,
        client: &TestClient,
        code: &str,
        request: &AuthorizeRequest,
    ) -> reqwest::Response {
        self.exchange_code_with(client, code, &request.redirect_uri, &request.pkce.verifier).await
    }

    pub async fn exchange_code_with(
        &self,
        client: &TestClient,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        self.client_post(client, "/token", &mut form).await
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http.get(self.url("/userinfo")).bearer_auth(access_token).send().await.unwrap()
    }
}
