//! Opaque access tokens, a client's `access_token_format = opaque`: random references
//! (`tat_…`) that only Tessera can read. Introspection (RFC 7662) answers for them as for
//! JWTs, `/revoke` (RFC 7009) ends one at once, `/userinfo`, DPoP (RFC 9449 §6.2) and the
//! admin API take them, and every cascade that ends a JWT ends them: logout, a disabled
//! user or client, a replayed code, expiry. A JWT client is unaffected.

use crate::attacks::in_parallel;
use crate::dpop::offline_login_with;
use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::dpop::DpopKey;
use crate::helpers::node::run_script;
use crate::helpers::TestApp;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera::domain::access_token::{is_opaque_access_token, AccessTokenFormat};
use tessera::domain::client::ClientId;
use tessera::domain::signals::Reason;
use tessera::domain::user::UserId;

const API: &str = "https://api.example.com";
const INACTIVE: fn() -> Value = || json!({ "active": false });

fn opaque(spec: ClientSpec) -> ClientSpec {
    ClientSpec { access_token_format: AccessTokenFormat::Opaque, ..spec }
}

/// A resource server serving `API`: it may introspect every token meant for it.
async fn resource_server(app: &TestApp) -> TestClient {
    app.register_client(ClientSpec {
        audiences: vec!["https://self.example.com"],
        served_audiences: vec![API],
        ..ClientSpec::service()
    })
    .await
}

async fn token_response(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// Logs a new user in at `client` (scope with `openid offline_access`) in a browser of its
/// own (a session already in the test's browser would be reused), and exchanges the code:
/// the token response, and the user.
async fn logged_in(app: &TestApp, client: &TestClient) -> (Value, UserId) {
    let user = app.create_user(&format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..10])).await;
    let (browser, _) = app.other_browser();
    let body = browser.offline_login(client, &user).await;
    assert_eq!(app.introspect(client, &access_token(&body)).await["sub"], user.id.as_str());
    (body, user.id)
}

async fn client_credentials_tokens_are_opaque_and_introspect_like_jwts(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let api = resource_server(app).await;
    let body = token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await;
    let token = access_token(&body);
    assert!(is_opaque_access_token(&token), "{token}");
    assert!(!token.contains('.'), "not a JWS");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300, "{body}");

    let introspected = app.introspect(&api, &token).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["client_id"], service.id.as_str());
    assert_eq!(introspected["sub"], service.id.as_str(), "a client's own token");
    assert_eq!(introspected["aud"], API);
    assert_eq!(introspected["scope"], "invoices:read invoices:write");
    assert_eq!(introspected["token_type"], "Bearer");
    assert_eq!(introspected["iss"], app.settings.issuer.as_str());
    let (iat, exp) = (introspected["iat"].as_i64().unwrap(), introspected["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(introspected["jti"].is_string());
    assert!(introspected.get("sid").is_none() && introspected.get("fid").is_none());

    // Each request gets its own token, and each is its own row.
    let second = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);
    assert_ne!(second, token);
    assert_ne!(app.introspect(&api, &second).await["jti"], introspected["jti"]);

    // RFC 7662 §4 applies as to JWTs: a client that neither owns nor serves it learns nothing.
    let stranger = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.introspect(&stranger, &token).await, INACTIVE());
}

async fn a_jwt_clients_tokens_stay_jwts(app: &TestApp) {
    let jwt = app.register_client(ClientSpec::service()).await;
    let token = access_token(&token_response(app.client_credentials(&jwt.id, jwt.secret(), &[]).await).await);
    assert!(!is_opaque_access_token(&token));
    let claims = app.verify_access_token(&token, API).await;
    assert_eq!(claims["client_id"], jwt.id.as_str());
}

async fn unknown_forged_or_altered_opaque_tokens_are_inactive(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let token = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);
    let forged = format!("tat_{}", "A".repeat(43));
    // One character changed: another digest, so no row.
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for garbage in [forged.as_str(), altered.as_str(), "tat_", &format!("{token}x"), &token[..token.len() - 1]] {
        assert_eq!(app.introspect(&service, garbage).await, INACTIVE(), "{garbage}");
        assert_eq!(app.userinfo(garbage).await.status(), 401, "{garbage}");
        assert_eq!(app.revoke(&service, garbage).await.status(), 200, "RFC 7009 §2.2");
    }
    assert_eq!(app.introspect(&service, &token).await["active"], true, "the real one is untouched");
}

async fn a_users_opaque_token_works_at_userinfo_and_its_id_token_binds_it(app: &TestApp) {
    let client = app.register_client(opaque(ClientSpec::offline_app())).await;
    let (body, user_id) = logged_in(app, &client).await;
    let token = access_token(&body);
    assert!(is_opaque_access_token(&token));
    let userinfo = app.userinfo(&token).await;
    assert_eq!(userinfo.status(), 200);
    let userinfo: Value = userinfo.json().await.unwrap();
    assert_eq!(userinfo["sub"], user_id.as_str());

    // OIDC Core §3.1.3.6: `at_hash` is over the token as issued, whatever its format.
    let id_token = app.verify_id_token(body["id_token"].as_str().unwrap(), &client.id).await;
    let hash = digest(&SHA256, token.as_bytes());
    assert_eq!(id_token["at_hash"], URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]));

    let introspected = app.introspect(&client, &token).await;
    assert_eq!(introspected["sub"], user_id.as_str());
    assert_eq!(introspected["sid"], id_token["sid"], "the login session");
    assert!(introspected["fid"].is_string(), "the refresh family: {introspected}");
    assert_eq!(introspected["auth_time"], id_token["auth_time"]);

    // A refresh issues another opaque token; both are live until something ends them.
    let refreshed: Value =
        token_response(app.refresh(&client, body["refresh_token"].as_str().unwrap(), None).await).await;
    let next = access_token(&refreshed);
    assert!(is_opaque_access_token(&next) && next != token);
    assert_eq!(app.userinfo(&next).await.status(), 200);
}

async fn revoking_an_opaque_token_ends_it_at_once_and_only_for_its_owner(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let api = resource_server(app).await;
    let other = app.register_client(opaque(ClientSpec::service())).await;
    let token = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);
    let kept = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);

    // Another client's revocation answers 200 (RFC 7009 §2.2) and changes nothing; nor does
    // the resource server's, which may read the token but does not own it.
    for stranger in [&other, &api] {
        assert_eq!(app.revoke(stranger, &token).await.status(), 200);
        assert_eq!(app.introspect(&api, &token).await["active"], true, "revoked by a stranger");
    }
    assert_eq!(app.revoke(&service, &token).await.status(), 200);
    assert_eq!(app.introspect(&api, &token).await, INACTIVE());
    assert_eq!(app.introspect(&service, &token).await, INACTIVE());
    assert_eq!(app.introspect(&api, &kept).await["active"], true, "one token, not the client's others");
    assert_eq!(app.revoke(&service, &token).await.status(), 200, "again: nothing to do");
}

async fn a_users_opaque_token_revoked_is_refused_at_userinfo(app: &TestApp) {
    let client = app.register_client(opaque(ClientSpec::offline_app())).await;
    let (body, _) = logged_in(app, &client).await;
    let token = access_token(&body);
    assert_eq!(app.revoke(&client, &token).await.status(), 200);
    let refused = app.userinfo(&token).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    // Revoking the access token is not a logout: the refresh token still works.
    token_response(app.refresh(&client, body["refresh_token"].as_str().unwrap(), None).await).await;
}

async fn every_cascade_that_ends_a_jwt_ends_an_opaque_token(app: &TestApp) {
    let client = app.register_client(opaque(ClientSpec::offline_app())).await;
    let api = resource_server(app).await;

    // The refresh family revoked (the refresh token revoked by its client).
    let (body, _) = logged_in(app, &client).await;
    let token = access_token(&body);
    assert_eq!(app.introspect(&api, &token).await["active"], true);
    assert_eq!(app.revoke(&client, body["refresh_token"].as_str().unwrap()).await.status(), 200);
    assert_eq!(app.introspect(&api, &token).await, INACTIVE(), "family revoked");

    // The user disabled.
    let (body, user_id) = logged_in(app, &client).await;
    let token = access_token(&body);
    assert!(app.storage.disable_user(&user_id, &app.revocation(Reason::UserDisabled)).await.unwrap());
    assert_eq!(app.introspect(&api, &token).await, INACTIVE(), "user disabled");
    assert_eq!(app.userinfo(&token).await.status(), 401);

    // The client disabled: its users' tokens and its own.
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let own = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);
    let (body, _) = logged_in(app, &client).await;
    let token = access_token(&body);
    for id in [&client.id, &service.id] {
        let id = ClientId::parse(id).unwrap();
        assert!(app.storage.disable_client(&id, &app.revocation(Reason::ClientDisabled)).await.unwrap());
    }
    assert_eq!(app.introspect(&api, &token).await, INACTIVE(), "client disabled");
    assert_eq!(app.introspect(&api, &own).await, INACTIVE(), "client disabled");
}

async fn logout_ends_the_opaque_tokens_of_the_session(app: &TestApp) {
    let client = app.register_client(opaque(ClientSpec::offline_app())).await;
    let user = app.create_user("lou").await;
    let body = app.offline_login(&client, &user).await;
    let token = access_token(&body);
    assert_eq!(app.userinfo(&token).await.status(), 200);
    let out = app.log_out_confirmed(&[]).await;
    assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
    assert_eq!(app.userinfo(&token).await.status(), 401, "the session's family is revoked");
    assert_eq!(app.introspect(&client, &token).await, INACTIVE());
}

async fn a_replayed_code_revokes_the_opaque_token_it_issued(app: &TestApp) {
    let client = app.register_client(opaque(ClientSpec::web_app())).await;
    let user = app.create_user("rae").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let token = access_token(&token_response(app.exchange_code(&client, &params["code"], &request).await).await);
    assert_eq!(app.introspect(&client, &token).await["active"], true);
    let replay = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(app.introspect(&client, &token).await, INACTIVE(), "RFC 6749 §4.1.2");
}

async fn an_opaque_token_expires_with_its_lifetime(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let token = access_token(&token_response(app.client_credentials(&service.id, service.secret(), &[]).await).await);
    app.clock.advance(chrono::Duration::seconds(299));
    assert_eq!(app.introspect(&service, &token).await["active"], true);
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(app.introspect(&service, &token).await, INACTIVE(), "at exp");
}

async fn a_dpop_bound_opaque_token_needs_its_proof(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let key = DpopKey::es256();
    let body =
        token_response(app.dpop_token_request(&service, &[("grant_type", "client_credentials")], &key).await).await;
    assert_eq!(body["token_type"], "DPoP");
    let token = access_token(&body);
    assert!(is_opaque_access_token(&token));
    // RFC 9449 §6.2: introspection reports the binding.
    let introspected = app.introspect(&service, &token).await;
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.thumbprint());

    // A user's bound token at /userinfo: refused as Bearer, accepted with a proof whose
    // `ath` is the hash of the opaque string.
    let client = app.register_client(opaque(ClientSpec::offline_app())).await;
    let token = access_token(&offline_login_with(app, &client, Some(&key)).await);
    assert!(is_opaque_access_token(&token));
    assert_eq!(app.userinfo(&token).await.status(), 401, "a bound token as Bearer");
    let other_key = DpopKey::es256();
    let wrong = app.userinfo_with("DPoP", &token, Some(&other_key.userinfo_proof(app, &token))).await;
    assert_eq!(wrong.status(), 401, "a proof of another key");
    let ok = app.userinfo_with("DPoP", &token, Some(&key.userinfo_proof(app, &token))).await;
    assert_eq!(ok.status(), 200);
}

async fn the_admin_api_takes_an_opaque_admin_token(app: &TestApp) {
    let admin = app
        .register_client(opaque(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }))
        .await;
    let token = app.token_of(&admin).await;
    assert!(is_opaque_access_token(&token));
    let listed = app.http.get(app.url("/admin/v1/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(app.revoke(&admin, &token).await.status(), 200);
    let refused = app.http.get(app.url("/admin/v1/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 401, "revoked at once");
}

async fn the_format_is_set_and_changed_through_the_admin_api(app: &TestApp) {
    let admin =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let admin_token = app.token_of(&admin).await;
    let created: Value = app
        .http
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&admin_token)
        .json(&json!({ "name": "reports", "grant_types": ["client_credentials"], "scope": "reports:read",
                       "access_token_format": "opaque" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["access_token_format"], "opaque", "{created}");
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let before = access_token(&token_response(app.client_credentials(id, secret, &[]).await).await);
    assert!(is_opaque_access_token(&before));

    let patched = app
        .http
        .patch(app.url(&format!("/admin/v1/clients/{id}")))
        .bearer_auth(&admin_token)
        .json(&json!({ "access_token_format": "jwt" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    app.expire_client_cache();
    let after = access_token(&token_response(app.client_credentials(id, secret, &[]).await).await);
    assert!(!is_opaque_access_token(&after) && after.split('.').count() == 3, "a JWT now");
    let reports = TestClient { id: id.to_owned(), secret: Some(secret.to_owned()) };
    assert_eq!(app.introspect(&reports, &before).await["active"], true, "an issued token keeps its format");

    let refused = app
        .http
        .post(app.url("/admin/v1/clients"))
        .bearer_auth(&admin_token)
        .json(&json!({ "name": "x", "grant_types": ["client_credentials"], "access_token_format": "paseto" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "an unknown format");
}

/// Issuance is one insert per token: forty at once give forty distinct live tokens; then
/// forty revocations and introspections of one token at once leave it inactive, with no
/// error on the way.
async fn concurrent_issuance_and_revocation(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let responses = in_parallel(40, |_| app.client_credentials(&service.id, service.secret(), &[])).await;
    let mut tokens = Vec::new();
    for response in responses {
        tokens.push(access_token(&token_response(response).await));
    }
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 40);
    for token in &tokens {
        assert_eq!(app.introspect(&service, token).await["active"], true);
    }
    let target = &tokens[0];
    let revocations = in_parallel(40, |_| app.revoke(&service, target)).await;
    assert!(revocations.iter().all(|r| r.status() == 200));
    assert_eq!(app.introspect(&service, target).await, INACTIVE());
    assert_eq!(app.introspect(&service, &tokens[1]).await["active"], true);
}

async fn a_device_grant_issues_opaque_tokens_too(app: &TestApp) {
    // The grants all go through one issuing path; the device grant is the last of them.
    let client = app.register_client(opaque(ClientSpec::device_app())).await;
    let user = app.create_user("tv-viewer").await;
    let body = app.device_code(&client, Some("openid offline_access")).await;
    app.answer_device(&user, body["user_code"].as_str().unwrap(), "allow").await;
    app.clock.advance(chrono::Duration::seconds(5));
    let tokens = token_response(app.poll_device(&client, body["device_code"].as_str().unwrap()).await).await;
    let token = access_token(&tokens);
    assert!(is_opaque_access_token(&token), "{token}");
    let userinfo: Value = app.userinfo(&token).await.json().await.unwrap();
    assert_eq!(userinfo["sub"], user.id.as_str());
}

/// openid-client 6 (Node), an independent client: it gets an opaque token, a resource
/// server introspects it with `tokenIntrospection`, the service revokes it with
/// `tokenRevocation`, and the next introspection says inactive.
async fn openid_client_introspects_and_revokes_an_opaque_token(app: &TestApp) {
    let service = app.register_client(opaque(ClientSpec::service())).await;
    let api = resource_server(app).await;
    let args = [app.address.as_str(), &service.id, service.secret(), &api.id, api.secret()];
    let Some(summary) = run_script("opaque-client.mjs", &args).await else { return };
    let token = summary["access_token"].as_str().unwrap();
    assert!(is_opaque_access_token(token), "{summary}");
    assert_eq!(summary["token_type"], "bearer", "openid-client lower-cases it: {summary}");
    assert_eq!(summary["before"]["active"], true, "{summary}");
    assert_eq!(summary["before"]["client_id"], service.id.as_str());
    assert_eq!(summary["before"]["scope"], "invoices:read");
    assert_eq!(summary["after"], INACTIVE(), "{summary}");
}

crate::backend_tests!(
    openid_client_introspects_and_revokes_an_opaque_token,
    client_credentials_tokens_are_opaque_and_introspect_like_jwts,
    a_jwt_clients_tokens_stay_jwts,
    unknown_forged_or_altered_opaque_tokens_are_inactive,
    a_users_opaque_token_works_at_userinfo_and_its_id_token_binds_it,
    revoking_an_opaque_token_ends_it_at_once_and_only_for_its_owner,
    a_users_opaque_token_revoked_is_refused_at_userinfo,
    every_cascade_that_ends_a_jwt_ends_an_opaque_token,
    logout_ends_the_opaque_tokens_of_the_session,
    a_replayed_code_revokes_the_opaque_token_it_issued,
    an_opaque_token_expires_with_its_lifetime,
    a_dpop_bound_opaque_token_needs_its_proof,
    the_admin_api_takes_an_opaque_admin_token,
    the_format_is_set_and_changed_through_the_admin_api,
    concurrent_issuance_and_revocation,
    a_device_grant_issues_opaque_tokens_too,
);
