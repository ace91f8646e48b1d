//! Every way access ends produces its Security Event Token (SSF 1.0, CAEP 1.0, RISC 1.0),
//! whose subject names exactly what ended, matched against what the access tokens carry
//! (`sid`, `fid`, `sub`, `client_id`, `jti`). A receiver stream polls them here; the
//! receiver's side of matching is tessera-verify's (`verify_revocations.rs`).

use crate::helpers::browser::{form_tokens, AuthorizeRequest, PASSWORD};
use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::signals::{Receiver, Set, SESSION_REVOKED};
use crate::helpers::TestApp;
use serde_json::{json, Value};
use tessera::domain::user::User;

const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";

/// A receiver with a poll stream, and an offline login of `alice` at a web app.
struct Scene {
    receiver: Receiver,
    stream: String,
    client: TestClient,
    user: User,
    tokens: Value,
    /// The access token's claims, as a resource server verifies them.
    claims: Value,
}

async fn scene(app: &TestApp) -> Scene {
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    let claims = app.verify_access_token(tokens["access_token"].as_str().unwrap(), "https://api.example.com").await;
    Scene { receiver, stream, client, user, tokens, claims }
}

impl Scene {
    /// The SETs owed so far, acknowledged.
    async fn sets(&self, app: &TestApp) -> Vec<Set> {
        app.drain(&self.receiver, &self.stream).await
    }

    fn user_subject(&self, app: &TestApp) -> Value {
        json!({ "format": "iss_sub", "iss": app.address, "sub": self.user.id.as_str() })
    }

    fn sid(&self) -> &str {
        self.claims["sid"].as_str().expect("a token from a login carries sid")
    }

    fn fid(&self) -> &str {
        self.claims["fid"].as_str().expect("a token from a family carries fid")
    }
}

/// The one SET of `sets`, which must be a session-revoked: its event.
fn one_session_revoked(sets: &[Set]) -> &Set {
    assert_eq!(sets.len(), 1, "exactly one SET: {sets:?}");
    assert_eq!(sets[0].event_type, SESSION_REVOKED);
    assert!(sets[0].event["reason_admin"]["en"].is_string(), "the interop profile §3.1: reason_admin");
    assert!(sets[0].event["event_timestamp"].is_number());
    &sets[0]
}

async fn a_logout_revokes_its_session(app: &TestApp) {
    let scene = scene(app).await;
    let hint = scene.tokens["id_token"].as_str().unwrap();
    let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", hint)]).send().await.unwrap();
    assert_eq!(out.status(), 200, "the hint names this session: no question");
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(
        set.subject(),
        &json!({ "format": "complex", "user": scene.user_subject(app), "session": { "format": "opaque", "id": scene.sid() } })
    );
    assert_eq!(set.event["initiating_entity"], "user");
    assert_eq!(set.event["reason_admin"], json!({ "en": "logout" }));
}

async fn a_confirmed_logout_revokes_its_session(app: &TestApp) {
    let scene = scene(app).await;
    assert_eq!(app.log_out_confirmed(&[]).await.status(), 200);
    let sets = scene.sets(app).await;
    assert_eq!(one_session_revoked(&sets).subject()["session"]["id"], scene.sid());
}

async fn signing_in_as_someone_else_ends_the_previous_session_and_signing_in_again_does_not(app: &TestApp) {
    let scene = scene(app).await;
    // Alice signs in again (prompt=login): the same session, renewed; nothing ends.
    let again = AuthorizeRequest::new(&scene.client, WEB_APP_REDIRECT_URI).with("prompt", "login");
    let params = app.authorize_and_log_in(&again, &scene.user).await;
    let tokens: Value = app.exchange_code(&scene.client, &params["code"], &again).await.json().await.unwrap();
    let claims = app.verify_access_token(tokens["access_token"].as_str().unwrap(), "https://api.example.com").await;
    assert_eq!(claims["sid"], scene.sid(), "the session keeps its sid");
    assert!(scene.sets(app).await.is_empty());
    // Bob signs in in the same browser: Alice's session ends, as a logout would end it.
    let bob = app.create_user("bob").await;
    let page = app.get_authorize(&again).await.text().await.unwrap();
    let response = app.submit_login(&form_tokens(&page), bob.username.as_str(), PASSWORD).await;
    assert!(response.status().is_success() || response.status() == 303);
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(set.subject()["session"]["id"], scene.sid());
    assert_eq!(set.subject()["user"], scene.user_subject(app));
    // And her family ended with it.
    let refresh = app.refresh(&scene.client, &refresh_token(&scene.tokens), None).await;
    assert_eq!(refresh.status(), 400);
}

async fn refresh_token_reuse_revokes_its_family_alone(app: &TestApp) {
    let scene = scene(app).await;
    let first = refresh_token(&scene.tokens);
    refreshed(app, &scene.client, &first).await;
    app.clock.advance(chrono::Duration::seconds(10)); // past the retry window
    assert_eq!(app.refresh(&scene.client, &first, None).await.status(), 400, "RFC 9700 §4.14.2: reuse");
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(
        set.subject(),
        &json!({
            "format": "complex",
            "user": scene.user_subject(app),
            "session": { "format": "opaque", "id": scene.sid() },
            "token_family": { "format": "opaque", "id": scene.fid() },
        })
    );
    assert_eq!(set.event["initiating_entity"], "policy");
}

async fn revoking_a_refresh_token_revokes_its_family_once(app: &TestApp) {
    let scene = scene(app).await;
    let token = refresh_token(&scene.tokens);
    assert_eq!(app.revoke(&scene.client, &token).await.status(), 200);
    assert_eq!(app.revoke(&scene.client, &token).await.status(), 200, "RFC 7009 §2.2");
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(set.subject()["token_family"]["id"], scene.fid(), "once: nothing was revoked the second time");
    assert_eq!(set.event["initiating_entity"], "user");
}

async fn revoking_an_access_token_names_it_by_its_jti(app: &TestApp) {
    let scene = scene(app).await;
    let token = scene.tokens["access_token"].as_str().unwrap();
    assert_eq!(app.revoke(&scene.client, token).await.status(), 200);
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(set.subject(), &json!({ "format": "jwt_id", "iss": app.address, "jti": scene.claims["jti"] }));
    // Another client's token is not revoked by this one, and nothing is sent.
    let other = app.register_client(ClientSpec::service()).await;
    let other_token: Value = app.client_credentials(&other.id, other.secret(), &[]).await.json().await.unwrap();
    app.revoke(&scene.client, other_token["access_token"].as_str().unwrap()).await;
    assert!(scene.sets(app).await.is_empty());
}

async fn an_operator_revokes_a_family_or_everything_of_a_user(app: &TestApp) {
    let scene = scene(app).await;
    let output = tessera(app, &["session", "revoke", scene.fid()], None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sets = scene.sets(app).await;
    let set = one_session_revoked(&sets);
    assert_eq!(set.subject()["token_family"]["id"], scene.fid());
    assert_eq!(set.event["initiating_entity"], "admin");

    let output = tessera(app, &["session", "revoke", "--user", "alice"], None);
    assert!(output.status.success());
    let sets = scene.sets(app).await;
    assert_eq!(
        one_session_revoked(&sets).subject(),
        &json!({ "format": "complex", "user": scene.user_subject(app) }),
        "every session of the user"
    );
}

async fn disabling_and_enabling_a_user_tell_the_receivers(app: &TestApp) {
    let scene = scene(app).await;
    assert!(tessera(app, &["user", "disable", "alice"], None).status.success());
    let sets = scene.sets(app).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    let disabled = sets.iter().find(|s| s.event_type == ACCOUNT_DISABLED).expect("RISC account-disabled");
    let revoked = sets.iter().find(|s| s.event_type == SESSION_REVOKED).expect("CAEP session-revoked");
    assert_eq!(disabled.subject(), &scene.user_subject(app));
    assert_eq!(revoked.subject(), &json!({ "format": "complex", "user": scene.user_subject(app) }));
    assert_eq!(disabled.claims["txn"], revoked.claims["txn"], "SSF §4.1.9: one cause, one txn");

    assert!(tessera(app, &["user", "enable", "alice"], None).status.success());
    let sets = scene.sets(app).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].event_type, ACCOUNT_ENABLED);
    assert_eq!(sets[0].subject(), &scene.user_subject(app));
    assert!(tessera(app, &["user", "enable", "alice"], None).status.success());
    assert!(scene.sets(app).await.is_empty(), "not disabled: nothing happened, nothing is sent");
}

async fn a_new_password_tells_the_receivers_what_ended(app: &TestApp) {
    let scene = scene(app).await;
    let output = tessera(app, &["user", "set-password", "alice", "--password-stdin"], Some("a brand new password\n"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sets = scene.sets(app).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    let changed = sets.iter().find(|s| s.event_type == CREDENTIAL_CHANGE).expect("CAEP credential-change");
    assert_eq!(changed.event["credential_type"], "password");
    assert_eq!(changed.event["change_type"], "update");
    let revoked = sets.iter().find(|s| s.event_type == SESSION_REVOKED).expect("every session of the user");
    assert_eq!(revoked.subject(), &json!({ "format": "complex", "user": scene.user_subject(app) }));
    assert_eq!(changed.claims["txn"], revoked.claims["txn"]);
}

async fn disabling_a_client_names_it(app: &TestApp) {
    let scene = scene(app).await;
    assert!(tessera(app, &["client", "disable", &scene.client.id], None).status.success());
    let sets = scene.sets(app).await;
    assert_eq!(
        one_session_revoked(&sets).subject(),
        &json!({ "format": "complex", "application": { "format": "opaque", "id": scene.client.id } })
    );
    assert_eq!(scene.claims["client_id"], scene.client.id.as_str(), "what a verifier matches");
}

async fn a_replayed_code_revokes_its_access_token_and_family(app: &TestApp) {
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access invoices:read".into()),
        ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
    }
    .with("prompt", "consent");
    let params = app.authorize_and_log_in(&request, &user).await;
    let first: Value = app.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();
    let replay = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(replay.status(), 400);
    let claims = app.verify_access_token(first["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let sets = app.drain(&receiver, &stream).await;
    assert_eq!(sets.len(), 2, "{sets:?}");
    assert!(sets.iter().all(|s| s.event_type == SESSION_REVOKED && s.event["initiating_entity"] == "policy"));
    let subjects: Vec<&Value> = sets.iter().map(Set::subject).collect();
    assert!(subjects.contains(&&json!({ "format": "jwt_id", "iss": app.address, "jti": claims["jti"] })));
    assert!(subjects.iter().any(|s| s["token_family"]["id"] == claims["fid"]));
}

async fn a_receiver_that_starts_late_still_hears_of_what_still_matters(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    assert_eq!(app.revoke(&client, tokens["access_token"].as_str().unwrap()).await.status(), 200);
    // The stream is created after the revocation: it is owed the event all the same.
    let receiver = app.receiver().await;
    let stream = app.poll_stream(&receiver).await;
    let sets = app.drain(&receiver, &stream).await;
    assert_eq!(one_session_revoked(&sets).subject()["format"], "jwt_id");
    // Past the longest access-token lifetime (and verifiers' leeway) it no longer matters.
    app.clock.advance(chrono::Duration::seconds(app.settings.tokens.access_token_ttl.as_secs() as i64 + 301));
    let late = app.receiver().await;
    let stream = app.poll_stream(&late).await;
    assert!(app.drain(&late, &stream).await.is_empty());
}

async fn with_the_transmitter_off_nothing_is_recorded(database: &crate::helpers::TestDatabase) {
    let app = TestApp::spawn(database, |settings| settings.ssf.enabled = false).await.unwrap();
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &user).await;
    assert_eq!(app.revoke(&client, &refresh_token(&tokens)).await.status(), 200);
    assert!(tessera(&app, &["user", "disable", "alice"], None).status.success());
    assert_eq!(app.count_rows("ssf_events").await, 0);
    app.stop().await;
}

crate::backend_tests!(
    a_logout_revokes_its_session,
    a_confirmed_logout_revokes_its_session,
    signing_in_as_someone_else_ends_the_previous_session_and_signing_in_again_does_not,
    refresh_token_reuse_revokes_its_family_alone,
    revoking_a_refresh_token_revokes_its_family_once,
    revoking_an_access_token_names_it_by_its_jti,
    an_operator_revokes_a_family_or_everything_of_a_user,
    disabling_and_enabling_a_user_tell_the_receivers,
    a_new_password_tells_the_receivers_what_ended,
    disabling_a_client_names_it,
    a_replayed_code_revokes_its_access_token_and_family,
    a_receiver_that_starts_late_still_hears_of_what_still_matters,
);

mod transmitter_off {
    use super::*;
    crate::database_tests!(with_the_transmitter_off_nothing_is_recorded);
}
