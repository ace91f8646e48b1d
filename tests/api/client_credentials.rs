//! The client credentials grant (RFC 6749 §4.4): the token a client gets for itself, its
//! scopes, its audience (RFC 8707 `resource`) and its client authentication methods.

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use tessera::domain::client::AuthMethod;

async fn client_credentials_token_verifies_with_the_jwks(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app.client_credentials(&client.id, client.secret(), &[("scope", "invoices:read")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "invoices:read");
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3: no refresh token");

    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["scope"], "invoices:read");
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 300);
    assert!((iat - chrono::Utc::now().timestamp()).abs() < 60);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

async fn each_token_has_a_unique_jti(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let body: serde_json::Value =
            app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
        let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
        assert!(seen.insert(claims["jti"].as_str().unwrap().to_owned()));
    }
}

async fn no_requested_scope_means_the_clients_registered_scopes(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let body: serde_json::Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    assert_eq!(body["scope"], "invoices:read invoices:write");
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["scope"], "invoices:read invoices:write");
}

async fn a_subset_of_scopes_in_any_order_is_granted(app: &TestApp) {
    let client = app.register_client(ClientSpec { scope: "a b c", ..ClientSpec::service() }).await;
    let body: serde_json::Value =
        app.client_credentials(&client.id, client.secret(), &[("scope", "c  a")]).await.json().await.unwrap();
    assert_eq!(body["scope"], "a c");
}

async fn client_secret_post_works_for_clients_registered_for_it(app: &TestApp) {
    let client =
        app.register_client(ClientSpec { auth_method: AuthMethod::ClientSecretPost, ..ClientSpec::service() }).await;
    let form = [("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", client.secret())];
    let response = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn resource_indicator_selects_the_audience(app: &TestApp) {
    let client = app
        .register_client(ClientSpec {
            audiences: vec!["https://a.example.com", "https://b.example.com"],
            ..ClientSpec::service()
        })
        .await;
    let body: serde_json::Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://a.example.com").await;
    assert_eq!(claims["aud"], serde_json::json!(["https://a.example.com", "https://b.example.com"]));

    let body: serde_json::Value = app
        .client_credentials(&client.id, client.secret(), &[("resource", "https://b.example.com")])
        .await
        .json()
        .await
        .unwrap();
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://b.example.com").await;
    assert_eq!(claims["aud"], "https://b.example.com");
}

async fn a_client_without_audiences_gets_the_issuer_as_audience(app: &TestApp) {
    let client = app.register_client(ClientSpec { audiences: vec![], ..ClientSpec::service() }).await;
    let body: serde_json::Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), &app.address).await;
    assert_eq!(claims["aud"], app.address.as_str());
}

crate::backend_tests!(
    client_credentials_token_verifies_with_the_jwks,
    each_token_has_a_unique_jti,
    no_requested_scope_means_the_clients_registered_scopes,
    a_subset_of_scopes_in_any_order_is_granted,
    client_secret_post_works_for_clients_registered_for_it,
    resource_indicator_selects_the_audience,
    a_client_without_audiences_gets_the_issuer_as_audience,
);
