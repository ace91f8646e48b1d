//! Finding 4: any Tessera-signed `id_token_hint` skipped the logout confirmation, so a
//! link carrying the attacker's own ID token logged the victim out and revoked every
//! refresh-token family of the victim's session (RP-Initiated Logout 1.0 §2).

use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::TestApp;
use serde_json::Value;

/// The refresh response when the grant is still alive.
async fn refreshed(app: &TestApp, client: &TestClient, body: &Value) -> Option<Value> {
    let response = app.refresh(client, body["refresh_token"].as_str().unwrap(), None).await;
    if response.status() == 200 {
        Some(response.json().await.unwrap())
    } else {
        None
    }
}

async fn a_link_with_someone_elses_id_token_only_asks(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let victim = app.create_user("logout-victim").await;
    let attacker = app.create_user("logout-attacker").await;
    let victims = app.offline_login(&client, &victim).await;
    let (elsewhere, _) = app.other_browser();
    let attackers = elsewhere.offline_login(&client, &attacker).await;
    let attackers_hint = attackers["id_token"].as_str().unwrap();

    // The victim's browser follows the attacker's link.
    let page = app.http.get(app.url("/logout")).query(&[("id_token_hint", attackers_hint)]).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign out of Tessera?"), "asked, not logged out");
    let victims = refreshed(app, &client, &victims).await.expect("the victim's grant survives");

    // The victim's own hint names their session: no question.
    let own = victims["id_token"].as_str().unwrap();
    let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", own)]).send().await.unwrap();
    assert!(out.text().await.unwrap().contains("signed out"));
    assert!(refreshed(app, &client, &victims).await.is_none(), "logout revoked the session's families");
}

async fn the_confirmation_needs_its_csrf_token(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("logout-csrf").await;
    let body = app.offline_login(&client, &user).await;
    let forged = app.http.post(app.url("/logout")).form(&[("confirm", "yes"), ("csrf_token", "forged")]);
    let page = forged.send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Sign out of Tessera?"));
    let body = refreshed(app, &client, &body).await.expect("a forged confirmation logs nobody out");
    assert!(app.log_out_confirmed(&[]).await.text().await.unwrap().contains("signed out"));
    assert!(refreshed(app, &client, &body).await.is_none());
}

crate::backend_tests!(a_link_with_someone_elses_id_token_only_asks, the_confirmation_needs_its_csrf_token);
