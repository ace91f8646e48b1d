//! Token revocation (RFC 7009): a refresh token takes its whole family with it, an access
//! token only itself; and what `/revoke` and `/introspect` answer to bad input (RFC 7009
//! §2.1–2.2, RFC 7662 §2.1–2.2).

use crate::helpers::assert_oauth_error;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::TestApp;
use serde_json::Value;

async fn revoking_a_refresh_token_revokes_its_family(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("judy").await;
    let body = app.offline_login(&client, &user).await;
    let access = body["access_token"].as_str().unwrap();
    let introspected = app.introspect(&client, access).await;
    assert_eq!(introspected["active"], true);
    for member in ["scope", "client_id", "sub", "aud", "exp", "iat", "iss", "token_type", "jti"] {
        assert!(introspected.get(member).is_some(), "RFC 7662 §2.2 member {member}: {introspected}");
    }
    let response = app.revoke(&client, &refresh_token(&body)).await;
    assert_eq!(response.status(), 200);
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&client, access).await, serde_json::json!({ "active": false }));
    assert_eq!(app.userinfo(access).await.status(), 401, "userinfo agrees with introspection");
}

async fn revoking_an_access_token_makes_it_inactive(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("ken").await;
    let body = app.offline_login(&client, &user).await;
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(app.revoke(&client, access).await.status(), 200);
    assert_eq!(app.introspect(&client, access).await, serde_json::json!({ "active": false }));
    assert_eq!(app.userinfo(access).await.status(), 401);
    // The refresh token is unaffected: revoking one access token is not a logout.
    refreshed(app, &client, &refresh_token(&body)).await;
}

async fn revocation_and_introspection_handle_bad_input(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    assert_eq!(app.revoke(&client, "trt_unknown").await.status(), 200, "RFC 7009 §2.2: unknown tokens are fine");
    assert_eq!(app.revoke(&client, "garbage").await.status(), 200);
    assert_eq!(app.introspect(&client, "garbage").await, serde_json::json!({ "active": false }));
    assert_eq!(app.introspect(&client, "trt_unknown").await, serde_json::json!({ "active": false }));
    let anonymous = app.http.post(app.url("/introspect")).form(&[("token", "x")]).send().await.unwrap();
    assert_oauth_error(anonymous, 401, "invalid_client").await;
    let public = app.register_client(ClientSpec::public_app()).await;
    let by_id_only = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", "x"), ("client_id", public.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(by_id_only, 401, "invalid_client").await;
    let missing = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(missing, 400, "invalid_request").await;
    let hint = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", "x"), ("token_type_hint", "id_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(hint.status(), 200, "RFC 7009 §2.1: an unknown hint is ignored");
    let get = app.http.get(app.url("/introspect")).send().await.unwrap();
    assert_oauth_error(get, 405, "invalid_request").await;
    // A client_credentials token introspects as active, and never came with a refresh token.
    let service = app.register_client(ClientSpec::service()).await;
    let body: Value = app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(app.introspect(&service, body["access_token"].as_str().unwrap()).await["active"], true);
}

crate::backend_tests!(
    revoking_a_refresh_token_revokes_its_family,
    revoking_an_access_token_makes_it_inactive,
    revocation_and_introspection_handle_bad_input,
);
