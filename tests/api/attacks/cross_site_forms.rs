//! Login and device CSRF from a sibling host: `evil.example.com` can plant cookies for
//! `login.example.com` (`__Secure-` ones too, with `Domain=`), so it can set the CSRF
//! cookie a double submit compares with, and post a form of its own choosing. The pages'
//! posts are also refused when the browser says they come from elsewhere (`Origin`,
//! `Sec-Fetch-Site`); here the double-submit tokens are all valid, only the headers differ.

use super::login_form;
use crate::helpers::browser::{form_tokens, hidden_field, FormTokens, PASSWORD};
use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::{assert_oauth_error, TestApp};
use serde_json::Value;

const FOREIGN: &[(&str, &str)] = &[
    ("origin", "https://evil.example"),
    ("origin", "null"),
    ("sec-fetch-site", "cross-site"),
    ("sec-fetch-site", "same-site"),
];

async fn post_login(app: &TestApp, form: &FormTokens, username: &str, header: (&str, &str)) -> reqwest::Response {
    let fields = [
        ("pending", form.pending.as_str()),
        ("csrf_token", &form.csrf_token),
        ("username", username),
        ("password", PASSWORD),
    ];
    app.http.post(app.url("/login")).header(header.0, header.1).form(&fields).send().await.unwrap()
}

async fn a_login_posted_from_another_site_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("alice").await;
    let form = login_form(app, &client).await;
    for &header in FOREIGN {
        let refused = post_login(app, &form, user.username.as_str(), header).await;
        assert_eq!(refused.status(), 403, "{header:?}");
        assert!(refused.text().await.unwrap().contains("sent from another site"), "{header:?}: the error page");
    }
    assert_eq!(app.count_rows("sessions").await, 0, "nobody signed in");
    // The issuer's own origin (what a browser sends from the login page) is accepted.
    let accepted = post_login(app, &form, user.username.as_str(), ("origin", &app.origin)).await;
    assert_eq!(accepted.status(), 303);
}

async fn a_same_origin_fetch_metadata_login_is_accepted(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("alice").await;
    let form = login_form(app, &client).await;
    let accepted = post_login(app, &form, user.username.as_str(), ("sec-fetch-site", "same-origin")).await;
    assert_eq!(accepted.status(), 303);
}

async fn a_device_approval_posted_from_another_site_is_refused(app: &TestApp) {
    let client: TestClient = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("viewer").await;
    let body: Value = app.device_code(&client, None).await;
    let (user_code, device_code) = (body["user_code"].as_str().unwrap(), body["device_code"].as_str().unwrap());
    let entry = app.open_device_page(&user, None).await;
    let confirm = app.enter_user_code(&entry, user_code).await.text().await.unwrap();
    let tokens = form_tokens(&confirm);
    let fields = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", "allow")];
    for &(name, value) in FOREIGN {
        let refused =
            app.http.post(app.url("/device/decision")).header(name, value).form(&fields).send().await.unwrap();
        assert_eq!(refused.status(), 403, "{name}: {value}");
    }
    assert_oauth_error(app.poll_device(&client, device_code).await, 400, "authorization_pending").await;
    let accepted =
        app.http.post(app.url("/device/decision")).header("origin", &app.origin).form(&fields).send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(app.poll_device(&client, device_code).await.status(), 200, "approved");
}

/// RP-Initiated Logout 1.0 §2 lets a relying party post the logout request from its own
/// origin; only the confirmation form's post must come from Tessera's page.
async fn only_the_logout_confirmation_must_come_from_the_issuer(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("leaving").await;
    let tokens = app.offline_login(&client, &user).await;
    let rp = [("client_id", client.id.as_str())];
    let asked = app.http.post(app.url("/logout")).header("origin", "https://app.example.com").form(&rp).send().await;
    let page = asked.unwrap().text().await.unwrap();
    assert!(page.contains("Sign out of Tessera?"), "the relying party's post is asked about: {page}");
    let csrf_token = hidden_field(&page, "csrf_token").unwrap();
    let confirmed = [("client_id", client.id.as_str()), ("csrf_token", &csrf_token), ("confirm", "yes")];
    for &(name, value) in FOREIGN {
        let refused = app.http.post(app.url("/logout")).header(name, value).form(&confirmed).send().await.unwrap();
        assert_eq!(refused.status(), 403, "{name}: {value}");
    }
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(&client, refresh_token, None).await.status(), 200, "still signed in");
    let out = app.http.post(app.url("/logout")).header("origin", &app.origin).form(&confirmed).send().await.unwrap();
    assert!(out.text().await.unwrap().contains("signed out"));
}

crate::backend_tests!(
    a_login_posted_from_another_site_is_refused,
    a_same_origin_fetch_metadata_login_is_accepted,
    a_device_approval_posted_from_another_site_is_refused,
    only_the_logout_confirmation_must_come_from_the_issuer,
);

/// Under a path the issuer's origin is the host's; the pages' own posts still pass.
mod under_a_path {
    use super::*;
    crate::path_issuer_tests!(
        a_login_posted_from_another_site_is_refused,
        a_device_approval_posted_from_another_site_is_refused,
    );
}
