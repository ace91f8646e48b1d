//! Finding 8: the replay branch ran before the client check, and what a redemption issued
//! was recorded only after minting, so a replay racing the first redemption revoked
//! nothing (17 of 20 concurrent double presentations), while a used code presented by
//! any client, even a public one, revoked the owner's tokens.

use super::in_parallel;
use crate::helpers::browser::{redirect_params, AuthorizeRequest, Pkce};
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp};
use serde_json::Value;

/// A code at a first-party offline client for a signed-in browser (no page in between).
async fn fresh_code(app: &TestApp, client: &TestClient) -> (AuthorizeRequest, String) {
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)
    };
    let params = redirect_params(&app.get_authorize(&request).await);
    (request, params["code"].clone())
}

/// Is anything the exchange issued still usable?
async fn is_alive(app: &TestApp, client: &TestClient, body: &Value) -> bool {
    let access_ok = app.userinfo(body["access_token"].as_str().unwrap()).await.status() == 200;
    let refresh_ok = match body["refresh_token"].as_str() {
        Some(token) => app.refresh(client, token, None).await.status() == 200,
        None => false,
    };
    access_ok || refresh_ok
}

async fn twenty_racing_double_presentations_leave_nothing_alive(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("racer").await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
    };
    app.authorize_and_log_in(&request, &user).await;
    for _ in 0..20 {
        let (request, code) = fresh_code(app, &client).await;
        let answers = in_parallel(2, |_| {
            let (client, request, code) = (&client, &request, &code);
            async move { app.exchange_code(client, code, request).await }
        })
        .await;
        for answer in answers {
            if answer.status() == 200 {
                let body: Value = answer.json().await.unwrap();
                assert!(!is_alive(app, &client, &body).await, "a replayed code's tokens are revoked");
            } else {
                assert_oauth_error(answer, 400, "invalid_grant").await;
            }
        }
    }
}

async fn another_clients_replay_revokes_nothing(app: &TestApp) {
    let owner = app.register_client(ClientSpec::offline_app()).await;
    let other = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("owned").await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&owner, WEB_APP_REDIRECT_URI)
    };
    let params = app.authorize_and_log_in(&request, &user).await;
    let body: Value = app.exchange_code(&owner, &params["code"], &request).await.json().await.unwrap();
    assert_oauth_error(app.exchange_code(&other, &params["code"], &request).await, 400, "invalid_grant").await;
    let wrong = Pkce::new().verifier;
    let replay = app.exchange_code_with(&owner, &params["code"], &request.redirect_uri, &wrong).await;
    assert_oauth_error(replay, 400, "invalid_grant").await;
    assert_eq!(app.userinfo(body["access_token"].as_str().unwrap()).await.status(), 200, "nothing revoked");
    // The owner's own replay (its client, verifier and redirect URI) does revoke.
    assert_oauth_error(app.exchange_code(&owner, &params["code"], &request).await, 400, "invalid_grant").await;
    assert_eq!(app.userinfo(body["access_token"].as_str().unwrap()).await.status(), 401);
}

async fn a_wrong_presentation_does_not_burn_the_code(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::public_app() }).await;
    let user = app.create_user("burn").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let wrong = app.exchange_code_with(&client, &params["code"], &request.redirect_uri, &Pkce::new().verifier).await;
    assert_oauth_error(wrong, 400, "invalid_grant").await;
    assert_eq!(app.exchange_code(&client, &params["code"], &request).await.status(), 200);
}

crate::backend_tests!(
    twenty_racing_double_presentations_leave_nothing_alive,
    another_clients_replay_revokes_nothing,
    a_wrong_presentation_does_not_burn_the_code,
);
