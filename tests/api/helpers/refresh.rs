//! Offline logins and the refresh, revocation and introspection calls a client makes.

use super::browser::AuthorizeRequest;
use super::clients::{TestClient, WEB_APP_REDIRECT_URI};
use super::TestApp;
use serde_json::Value;
use tessera::domain::user::User;

impl TestApp {
    /// Logs `user` in at `client` with `offline_access` and returns the token response.
    pub async fn offline_login(&self, client: &TestClient, user: &User) -> Value {
        let request = AuthorizeRequest {
            scope: Some("openid profile offline_access invoices:read".into()),
            ..AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)
        }
        .with("prompt", "consent");
        let params = self.authorize_and_log_in(&request, user).await;
        let response = self.exchange_code(client, &params["code"], &request).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert!(body["refresh_token"].as_str().is_some_and(|t| t.starts_with("trt_")), "a refresh token: {body}");
        body
    }

    /// POST /token with grant_type=refresh_token.
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str, scope: Option<&str>) -> reqwest::Response {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.client_post(client, "/token", &mut form).await
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> Value {
        let response = self.client_post(client, "/introspect", &mut vec![("token", token)]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    pub async fn revoke(&self, client: &TestClient, token: &str) -> reqwest::Response {
        self.client_post(client, "/revoke", &mut vec![("token", token)]).await
    }

    /// A form post authenticated as `client` (Basic, or client_id for public clients).
    pub async fn client_post<'a>(
        &self,
        client: &'a TestClient,
        path: &str,
        form: &mut Vec<(&'a str, &'a str)>,
    ) -> reqwest::Response {
        let request = self.http.post(self.url(path));
        let request = match &client.secret {
            Some(secret) => request.basic_auth(&client.id, Some(secret)),
            None => {
                form.push(("client_id", &client.id));
                request
            }
        };
        request.form(&form).send().await.unwrap()
    }
}

/// Refreshes `token` at `client`, which must succeed (RFC 6749 §6); returns the response body.
pub async fn refreshed(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let response = app.refresh(client, token, None).await;
    assert_eq!(response.status(), 200, "refresh with {token}");
    response.json().await.unwrap()
}

/// The `refresh_token` of a token response, which must have one.
pub fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().expect("a refresh token").to_owned()
}
