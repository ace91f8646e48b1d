//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2): rotation, reuse detection per family,
//! the retry window, concurrency, binding to the client, scopes, lifetimes (with a movable
//! clock, never sleeping).

use crate::helpers::assert_oauth_error;
use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::{TestApp, TestDatabase};
use chrono::Duration;
use serde_json::Value;
use tessera::domain::secret::SecretDigest;

async fn a_chain_of_fifty_rotations_works_and_every_token_is_single_use(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let mut body = app.offline_login(&client, &user).await;
    let first = refresh_token(&body);
    let mut seen = std::collections::HashSet::from([first.clone()]);
    for _ in 0..50 {
        body = refreshed(app, &client, &refresh_token(&body)).await;
        assert!(seen.insert(refresh_token(&body)), "every rotation yields a new token");
        let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
        assert_eq!(claims["sub"], user.id.as_str());
        assert!(claims["fid"].is_string() && claims["sid"].is_string());
    }
    assert!(body["id_token"].is_string(), "openid in scope: an ID token with each refresh");
    let introspected = app.introspect(&client, &refresh_token(&body)).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "refresh_token");
    let stored = app.storage.find_refresh_token(&SecretDigest::of(&first)).await.unwrap().unwrap();
    assert!(stored.0.used_at.is_some());
}

async fn reusing_an_old_token_revokes_the_family_but_not_other_logins(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("bob").await;
    let phone = app.offline_login(&client, &user).await;
    let laptop = app.offline_login(&client, &user).await;
    let old = refresh_token(&phone);
    let newest = refresh_token(&refreshed(app, &client, &old).await);
    app.clock.advance(Duration::seconds(10)); // outside the retry window

    assert_oauth_error(app.refresh(&client, &old, None).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &newest, None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&client, &newest).await, serde_json::json!({ "active": false }));
    let access = phone["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&client, access).await["active"], false, "access tokens of the family go inactive");
    // The user's other login (another family) is untouched.
    refreshed(app, &client, &refresh_token(&laptop)).await;
}

async fn twenty_parallel_refreshes_yield_one_successor(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("carol").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    let requests = (0..20).map(|_| app.refresh(&client, &token, None));
    let responses = futures_util::future::join_all(requests).await;
    let mut successors = std::collections::HashSet::new();
    for response in responses {
        let status = response.status().as_u16();
        assert!(status == 200 || status == 400, "no 5xx under concurrency: {status}");
        if status == 200 {
            let body: Value = response.json().await.unwrap();
            successors.insert(refresh_token(&body));
        }
    }
    assert_eq!(successors.len(), 1, "never two different valid successors");
    let successor = successors.into_iter().next().unwrap();
    let next = refreshed(app, &client, &successor).await;
    assert_eq!(app.introspect(&client, &refresh_token(&next)).await["active"], true, "the family stays consistent");
}

async fn the_retry_window_returns_the_same_successor_then_closes(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("dave").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    let first = refreshed(app, &client, &token).await;
    app.clock.advance(Duration::seconds(2));
    let retried = refreshed(app, &client, &token).await;
    assert_eq!(refresh_token(&retried), refresh_token(&first), "a lost response is answered again");
    assert_ne!(retried["access_token"], first["access_token"], "with a fresh access token");

    app.clock.advance(Duration::seconds(2)); // 4 s after the rotation: past the 3 s window
    assert_oauth_error(app.refresh(&client, &token, None).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&first), None).await, 400, "invalid_grant").await;
}

async fn inside_the_window_a_used_successor_means_reuse(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("erin").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    let first = refreshed(app, &client, &token).await;
    let second = refreshed(app, &client, &refresh_token(&first)).await;
    // The successor was used, so the old token is a replay even inside the window.
    assert_oauth_error(app.refresh(&client, &token, None).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&second), None).await, 400, "invalid_grant").await;
}

async fn a_zero_window_disables_retries(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.refresh_tokens.retry_window = tessera::config::Window(std::time::Duration::ZERO)
    })
    .await
    .unwrap();
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("frank").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    let first = refreshed(&app, &client, &token).await;
    assert_oauth_error(app.refresh(&client, &token, None).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&first), None).await, 400, "invalid_grant").await;
    app.stop().await;
}

async fn a_refresh_token_only_works_for_its_client(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let other = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("grace").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    assert_oauth_error(app.refresh(&other, &token, None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&other, &token).await["active"], false, "other clients learn nothing");
    refreshed(app, &client, &token).await; // not consumed by the foreign attempt
    let mut wrong_secret = TestClient { id: client.id.clone(), secret: Some("tcs_wrong".into()) };
    assert_oauth_error(app.refresh(&wrong_secret, &token, None).await, 401, "invalid_client").await;
    wrong_secret.secret = None;
    assert_oauth_error(app.refresh(&wrong_secret, &token, None).await, 401, "invalid_client").await;
}

async fn scopes_narrow_per_request_and_never_widen(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("heidi").await;
    let token = refresh_token(&app.offline_login(&client, &user).await);
    let narrow = app.refresh(&client, &token, Some("invoices:read")).await;
    assert_eq!(narrow.status(), 200);
    let narrow: Value = narrow.json().await.unwrap();
    assert_eq!(narrow["scope"], "invoices:read");
    assert!(narrow.get("id_token").is_none(), "no openid in the narrowed scope");
    let claims = app.verify_access_token(narrow["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["scope"], "invoices:read");

    let wide = app.refresh(&client, &refresh_token(&narrow), Some("invoices:read invoices:write")).await;
    assert_oauth_error(wide, 400, "invalid_scope").await;
    // The refused request changed nothing: the token still rotates, to the full grant.
    let full = refreshed(app, &client, &refresh_token(&narrow)).await;
    assert_eq!(full["scope"], "invoices:read offline_access openid profile");
}

async fn idle_and_absolute_lifetimes_are_enforced(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("ivan").await;
    let idle = refresh_token(&app.offline_login(&client, &user).await);
    let mut active = refresh_token(&app.offline_login(&client, &user).await);
    app.clock.advance(Duration::days(10));
    active = refresh_token(&refreshed(app, &client, &active).await);
    app.clock.advance(Duration::days(5)); // 15 days: past the 14-day idle lifetime
    assert_oauth_error(app.refresh(&client, &idle, None).await, 400, "invalid_grant").await;
    for _ in 0..7 {
        active = refresh_token(&refreshed(app, &client, &active).await);
        app.clock.advance(Duration::days(10));
    } // 85 days since login
    active = refresh_token(&refreshed(app, &client, &active).await);
    app.clock.advance(Duration::days(6)); // 91 days: past the 90-day absolute lifetime
    assert_oauth_error(app.refresh(&client, &active, None).await, 400, "invalid_grant").await;
}

crate::backend_tests!(
    a_chain_of_fifty_rotations_works_and_every_token_is_single_use,
    reusing_an_old_token_revokes_the_family_but_not_other_logins,
    twenty_parallel_refreshes_yield_one_successor,
    the_retry_window_returns_the_same_successor_then_closes,
    inside_the_window_a_used_successor_means_reuse,
    a_refresh_token_only_works_for_its_client,
    scopes_narrow_per_request_and_never_widen,
    idle_and_absolute_lifetimes_are_enforced,
);

mod zero_window {
    use super::*;
    crate::database_tests!(a_zero_window_disables_retries);
}
