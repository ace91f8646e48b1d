//! Refresh tokens: rotation, reuse detection per family, the retry window, concurrency,
//! binding, scopes, lifetimes (with a movable clock, never sleeping), revocation,
//! introspection, cascades and housekeeping.

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

async fn logout_revokes_the_sessions_families(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("leo").await;
    let body = app.offline_login(&client, &user).await;
    let out = app.log_out_confirmed(&[]).await;
    assert_eq!(out.status(), 200);
    assert!(out.text().await.unwrap().contains("signed out"));
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
}

async fn disabling_a_user_or_changing_a_password_revokes_their_families(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("mia").await;
    let body = app.offline_login(&client, &user).await;
    let output = crate::helpers::cli::tessera(
        app,
        &["user", "set-password", "mia", "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;

    let other = app.create_user("nina").await;
    let body = app.offline_login(&client, &other).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let output = crate::helpers::cli::tessera(app, &["user", "disable", "nina"], None);
    assert!(output.status.success());
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&client, &access).await["active"], false, "a disabled user's access tokens are inactive");
}

async fn operators_list_and_revoke_sessions(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("olga").await;
    let phone = app.offline_login(&client, &user).await;
    let laptop = app.offline_login(&client, &user).await;
    let listed = crate::helpers::cli::tessera(app, &["session", "list", "--user", "olga", "--json"], None);
    assert!(listed.status.success());
    let families: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(families.as_array().unwrap().len(), 2);
    let phone_claims =
        app.verify_access_token(phone["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let fid = phone_claims["fid"].as_str().unwrap();
    let revoked = crate::helpers::cli::tessera(app, &["session", "revoke", fid], None);
    assert!(revoked.status.success());
    assert_oauth_error(app.refresh(&client, &refresh_token(&phone), None).await, 400, "invalid_grant").await;
    refreshed(app, &client, &refresh_token(&laptop)).await;
    let all = crate::helpers::cli::tessera(app, &["session", "revoke", "--user", "olga"], None);
    assert!(all.status.success());
    assert_eq!(app.introspect(&client, laptop["access_token"].as_str().unwrap()).await["active"], false);
}

/// `tessera session list --user NAME --json`, as parsed JSON.
fn sessions_of(app: &TestApp, username: &str) -> Vec<Value> {
    let listed = crate::helpers::cli::tessera(app, &["session", "list", "--user", username, "--json"], None);
    assert!(listed.status.success(), "stderr: {}", String::from_utf8_lossy(&listed.stderr));
    serde_json::from_slice::<Value>(&listed.stdout).unwrap().as_array().unwrap().clone()
}

fn time_of(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("an RFC 3339 time")).unwrap().into()
}

/// Finding 17: a family's last use is its latest rotation, not the login.
async fn session_list_shows_the_latest_rotation_as_last_use(app: &TestApp) {
    use tessera::clock::Clock;
    use tessera::domain::refresh::{TokenFamily, REFRESH_TOKEN_PREFIX};
    use tessera::domain::secret::GeneratedSecret;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("rita").await;
    let mut body = app.offline_login(&client, &user).await;
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let fid = claims["fid"].as_str().unwrap().to_owned();
    // A second family of the same user and client (another device), never refreshed: its
    // last use must stay its own creation, whatever happens to the first.
    let now = app.clock.now();
    let idle_token = GeneratedSecret::generate(REFRESH_TOKEN_PREFIX);
    let second = TokenFamily {
        id: "second-device".into(),
        client_id: tessera::domain::client::ClientId::parse(&client.id).unwrap(),
        user_id: user.id.clone(),
        sid: claims["sid"].as_str().unwrap().to_owned(),
        scope: tessera::domain::scope::ScopeSet::parse("openid offline_access").unwrap(),
        auth_time: now,
        created_at: now,
        last_used_at: now,
        absolute_expires_at: now + Duration::days(90),
        revoked_at: None,
    };
    app.storage.create_family(&second, &idle_token.digest(), now + Duration::days(14)).await.unwrap();

    let listed = sessions_of(app, "rita");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["family_id"], fid.as_str(), "listed in login order");
    assert_eq!(listed[0]["last_used_at"], listed[0]["created_at"], "not used yet: the login is the last use");
    let login = time_of(&listed[0]["created_at"]);
    for hours in [3, 1] {
        app.clock.advance(Duration::hours(hours));
        // Stored with microseconds: the rotation's time, truncated, is at most 1 µs earlier.
        let before = app.clock.now() - Duration::microseconds(1);
        body = refreshed(app, &client, &refresh_token(&body)).await;
        let after = app.clock.now();
        let listed = sessions_of(app, "rita");
        let last_used = time_of(&listed[0]["last_used_at"]);
        assert!(before <= last_used && last_used <= after, "the rotation's time {before}..{after}, shown {last_used}");
        assert!(last_used > login + Duration::hours(hours), "not the login time {login}");
        assert_eq!(time_of(&listed[0]["created_at"]), login, "the login time stays");
        assert_eq!(listed[1]["last_used_at"], listed[1]["created_at"], "the other family was not used");
        let found = app.storage.find_family(&fid).await.unwrap().unwrap();
        assert_eq!(found.last_used_at, last_used, "find_family derives it too");
    }
    assert!(app.storage.find_family("no-such-family").await.unwrap().is_none());
    refreshed(app, &client, idle_token.expose()).await;
    let listed = sessions_of(app, "rita");
    assert!(time_of(&listed[1]["last_used_at"]) > time_of(&listed[1]["created_at"]), "now used as well");
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

async fn housekeeping_purges_what_nobody_can_use(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("quinn").await;
    let old = refresh_token(&app.offline_login(&client, &user).await);
    let rotated_away = refresh_token(&refreshed(app, &client, &old).await);
    app.clock.advance(Duration::days(91));
    let fresh = refresh_token(&app.offline_login(&client, &user).await);
    let purged = tessera::housekeeping::purge(&*app.storage, &*app.clock, 2).await.unwrap();
    assert!(purged >= 2, "the expired family and its tokens went ({purged} rows)");
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&old)).await.unwrap().is_none());
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&rotated_away)).await.unwrap().is_none());
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&fresh)).await.unwrap().is_some(), "live families stay");
    refreshed(app, &client, &fresh).await;
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
    revoking_a_refresh_token_revokes_its_family,
    revoking_an_access_token_makes_it_inactive,
    revocation_and_introspection_handle_bad_input,
    logout_revokes_the_sessions_families,
    disabling_a_user_or_changing_a_password_revokes_their_families,
    operators_list_and_revoke_sessions,
    session_list_shows_the_latest_rotation_as_last_use,
    a_replayed_code_revokes_the_family_it_created,
    housekeeping_purges_what_nobody_can_use,
);

mod zero_window {
    use super::*;
    crate::database_tests!(a_zero_window_disables_retries);
}
