//! Finding 7 (RFC 8252 §8.6): remembered consent or `first_party` let any local process
//! receive a code (and a refresh token) for a public loopback client, on a port of its
//! choosing, without the person noticing. Finding 13 (OIDC Core §3.1.2.1): an
//! `id_token_hint` naming another user was ignored, so `prompt=none` answered for
//! whoever's session the browser had.

use crate::helpers::browser::{redirect_params, AuthorizeRequest};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

const LOOPBACK: &str = "http://127.0.0.1/callback";

async fn a_public_loopback_client_never_gets_a_code_silently(app: &TestApp) {
    let native = app
        .register_client(ClientSpec { redirect_uris: vec![LOOPBACK], is_first_party: true, ..ClientSpec::public_app() })
        .await;
    let user = app.create_user("native-user").await;
    // The person signs in once: that is interaction, and the code comes back.
    let first = AuthorizeRequest::new(&native, "http://127.0.0.1:50000/callback");
    assert!(app.authorize_and_log_in(&first, &user).await.contains_key("code"));
    // A local process on another port asks again: the person is asked, not bypassed.
    let port = "http://127.0.0.1:50001/callback";
    let again = app.get_authorize(&AuthorizeRequest::new(&native, port)).await;
    assert_eq!(again.status(), 200, "a page for the person, not a redirect");
    assert!(again.text().await.unwrap().contains("Allow access?"));
    let silent = app.get_authorize(&AuthorizeRequest::new(&native, port).with("prompt", "none")).await;
    assert_eq!(redirect_params(&silent)["error"], "interaction_required");
}

async fn a_public_client_never_gets_offline_access_silently(app: &TestApp) {
    let spa = app
        .register_client(ClientSpec {
            scope: "openid offline_access",
            is_first_party: true,
            grant_types: vec![
                tessera::domain::client::GrantType::AuthorizationCode,
                tessera::domain::client::GrantType::RefreshToken,
            ],
            ..ClientSpec::public_app()
        })
        .await;
    let user = app.create_user("spa-user").await;
    let plain = AuthorizeRequest { scope: Some("openid".into()), ..AuthorizeRequest::new(&spa, WEB_APP_REDIRECT_URI) };
    assert!(app.authorize_and_log_in(&plain, &user).await.contains_key("code"));
    // SSO without a refresh token stays silent for an https public client...
    let sso = AuthorizeRequest { scope: Some("openid".into()), ..AuthorizeRequest::new(&spa, WEB_APP_REDIRECT_URI) };
    assert!(redirect_params(&app.get_authorize(&sso).await).contains_key("code"));
    // ...but a refresh token needs the person.
    let offline = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&spa, WEB_APP_REDIRECT_URI)
    };
    assert_eq!(app.get_authorize(&offline).await.status(), 200);
}

async fn an_id_token_hint_for_another_user_is_not_answered_silently(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let alice = app.create_user("hint-alice").await;
    let bob = app.create_user("hint-bob").await;
    let (elsewhere, _) = app.other_browser();
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = elsewhere.authorize_and_log_in(&request, &bob).await;
    let bobs: serde_json::Value =
        elsewhere.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &alice).await;
    let alices: serde_json::Value = app.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();

    let hinted = |token: &str| {
        AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none").with("id_token_hint", token)
    };
    let for_bob = app.get_authorize(&hinted(bobs["id_token"].as_str().unwrap())).await;
    assert_eq!(redirect_params(&for_bob)["error"], "login_required", "alice's session does not answer for bob");
    let for_alice = app.get_authorize(&hinted(alices["id_token"].as_str().unwrap())).await;
    assert!(redirect_params(&for_alice).contains_key("code"));
    let forged = app.get_authorize(&hinted("eyJhbGciOiJub25lIn0.e30.")).await;
    assert_eq!(redirect_params(&forged)["error"], "invalid_request");
}

crate::backend_tests!(
    a_public_loopback_client_never_gets_a_code_silently,
    a_public_client_never_gets_offline_access_silently,
    an_id_token_hint_for_another_user_is_not_answered_silently,
);
