//! Redeeming an authorization code at `/token` (RFC 6749 §4.1.3, RFC 7636 §4.6): a code
//! works once, for its own client, redirect URI and verifier, before it expires; a
//! replayed code revokes what it issued (RFC 6749 §4.1.2).

use crate::helpers::browser::{redirect_params, AuthorizeRequest, Pkce};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::refresh::refresh_token;
use crate::helpers::{assert_oauth_error, TestApp};
use chrono::Utc;
use serde_json::Value;
use tessera::domain::authorization::{AuthorizationGrant, SessionId};
use tessera::domain::client::ClientId;
use tessera::domain::pkce::CodeChallenge;
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;

async fn a_wrong_verifier_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("mallory").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let response = app.exchange_code_with(&client, &params["code"], &request.redirect_uri, &Pkce::new().verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let short = app.exchange_code_with(&client, &params["code"], &request.redirect_uri, "too-short").await;
    assert_oauth_error(short, 400, "invalid_request").await;
}

async fn a_reused_code_fails_and_revokes_its_tokens(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("oscar").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let first = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(first.status(), 200);
    let body: serde_json::Value = first.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access_token).await.status(), 200);

    let second = app.exchange_code(&client, &params["code"], &request).await;
    assert_oauth_error(second, 400, "invalid_grant").await;
    let after = app.userinfo(access_token).await;
    assert_eq!(after.status(), 401, "RFC 6749 §4.1.2: tokens from a replayed code are revoked");
    assert!(after.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

async fn a_code_from_another_client_or_redirect_uri_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let other = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("peggy").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let stolen = app.exchange_code(&other, &params["code"], &request).await;
    assert_oauth_error(stolen, 400, "invalid_grant").await;

    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.get_authorize(&request).await;
    let params = redirect_params(&params); // the session from the first login
    let wrong_uri =
        app.exchange_code_with(&client, &params["code"], "https://app.example.com/other", &request.pkce.verifier).await;
    assert_oauth_error(wrong_uri, 400, "invalid_grant").await;
}

async fn an_expired_code_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("quentin").await;
    let pkce = Pkce::new();
    let code = "expired-code-for-test";
    let past = Utc::now() - chrono::Duration::minutes(5);
    let grant = AuthorizationGrant {
        client_id: ClientId::parse(&client.id).unwrap(),
        user_id: user.id.clone(),
        sid: SessionId::parse("sid").unwrap(),
        redirect_uri: WEB_APP_REDIRECT_URI.into(),
        scope: ScopeSet::parse("openid").unwrap(),
        nonce: None,
        code_challenge: CodeChallenge::parse(Some(&pkce.challenge), Some("S256")).unwrap(),
        auth_time: past,
        created_at: past,
        expires_at: past + chrono::Duration::seconds(60),
    };
    app.storage.insert_code(&SecretDigest::of(code), &grant).await.unwrap();
    let response = app.exchange_code_with(&client, code, WEB_APP_REDIRECT_URI, &pkce.verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

async fn a_replayed_code_revokes_the_family_it_created(app: &TestApp) {
    use crate::helpers::browser::AuthorizeRequest;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("pat").await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&client, crate::helpers::clients::WEB_APP_REDIRECT_URI)
    };
    let params = app.authorize_and_log_in(&request, &user).await;
    let body: Value = app.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();
    assert_oauth_error(app.exchange_code(&client, &params["code"], &request).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
}

crate::backend_tests!(
    a_wrong_verifier_is_invalid_grant,
    a_reused_code_fails_and_revokes_its_tokens,
    a_code_from_another_client_or_redirect_uri_is_invalid_grant,
    an_expired_code_is_invalid_grant,
    a_replayed_code_revokes_the_family_it_created,
);
