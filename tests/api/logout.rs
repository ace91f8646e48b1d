//! RP-Initiated Logout 1.0 (§2–§3): with a valid `id_token_hint` the session ends and the
//! browser goes to a registered `post_logout_redirect_uri` only; without one, Tessera asks
//! first, and only its confirmation form, with its CSRF token, logs anyone out.

use crate::helpers::browser::{location, redirect_params, AuthorizeRequest};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

async fn logout_ends_the_session_and_redirects_to_a_registered_uri(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("ivan").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let body: serde_json::Value = app.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    let bad = app
        .http
        .get(app.url("/logout"))
        .query(&[("id_token_hint", id_token), ("post_logout_redirect_uri", "https://evil.example.com/")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "unregistered post_logout_redirect_uri: no redirect");
    assert!(bad.headers().get("location").is_none());

    let out = app
        .http
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://app.example.com/logged-out"),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "https://app.example.com/logged-out?state=bye");

    let after = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none")).await;
    assert_eq!(redirect_params(&after)["error"], "login_required", "the session is gone");
    let page = app.http.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sign out of Tessera?"), "without a hint, logout asks first");
}

async fn logout_without_an_id_token_hint_asks_first(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("judy").await;
    app.authorize_and_log_in(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI), &user).await;
    let query = [
        ("client_id", client.id.as_str()),
        ("post_logout_redirect_uri", "https://app.example.com/logged-out"),
        ("state", "s1"),
    ];
    let page = app.http.get(app.url("/logout")).query(&query).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out of Tessera?"), "a confirmation, not a logout");
    let still_in =
        app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none")).await;
    assert!(
        redirect_params(&still_in).contains_key("code"),
        "a GET alone (e.g. an <img> on another site) logs nobody out"
    );

    // Confirming without the form's CSRF token does nothing but ask again.
    let mut form: Vec<(&str, &str)> = query.to_vec();
    form.push(("confirm", "yes"));
    let forged = app.http.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(forged.status(), 200, "no CSRF token: asked again");
    let still_in =
        app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none")).await;
    assert!(redirect_params(&still_in).contains_key("code"), "a post without the CSRF token logs nobody out");
    let out = app.log_out_confirmed(&query).await;
    assert_eq!(out.status(), 303);
    assert_eq!(location(&out), "https://app.example.com/logged-out?state=s1");
    let after = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none")).await;
    assert_eq!(redirect_params(&after)["error"], "login_required");
}

crate::backend_tests!(
    logout_ends_the_session_and_redirects_to_a_registered_uri,
    logout_without_an_id_token_hint_asks_first,
);
