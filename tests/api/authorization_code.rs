//! The authorization code flow end to end, as a browser and a web app see it.

use crate::helpers::browser::{form_tokens, location, redirect_params, AuthorizeRequest};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

async fn login_consent_code_and_tokens(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("alice").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);

    let page = app.get_authorize(&request).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("Test client") && html.contains("<label for=\"password\">"));

    let consent = app.submit_login(&form_tokens(&html), "alice", crate::helpers::browser::PASSWORD).await;
    assert_eq!(consent.status(), 200, "consent page for a third-party client");
    let consent_html = consent.text().await.unwrap();
    assert!(consent_html.contains("See your e-mail address"));
    let redirect = app.submit_consent(&form_tokens(&consent_html), "allow").await;
    let location = location(&redirect);
    assert!(location.starts_with(WEB_APP_REDIRECT_URI), "{location}");
    let params = redirect_params(&redirect);
    assert_eq!(params["state"], request.state.clone().unwrap());
    assert_eq!(params["iss"], app.address, "RFC 9207 iss");

    let response = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    let access_token = body["access_token"].as_str().unwrap();
    let claims = app.verify_access_token(access_token, "https://api.example.com").await;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert!(claims["sid"].is_string());

    let id_claims = app.verify_id_token(body["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id_claims["sub"], user.id.as_str());
    assert_eq!(id_claims["nonce"], request.nonce.clone().unwrap());
    assert_eq!(id_claims["azp"], client.id.as_str());
    assert_eq!(id_claims["sid"], claims["sid"]);
    assert!((id_claims["auth_time"].as_i64().unwrap() - chrono::Utc::now().timestamp()).abs() < 60);
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    assert_eq!(id_claims["at_hash"], URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]), "OIDC Core §3.1.3.6 at_hash");

    let userinfo = app.userinfo(access_token).await;
    assert_eq!(userinfo.status(), 200);
    let info: serde_json::Value = userinfo.json().await.unwrap();
    assert_eq!(info["sub"], user.id.as_str());
    assert_eq!(info["preferred_username"], "alice");
    assert_eq!(info["name"], "alice Example");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], false);
}

async fn a_public_client_exchanges_with_pkce_only(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::public_app() }).await;
    let user = app.create_user("bob").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let response = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(response.status(), 200);
}

async fn a_second_app_in_the_same_browser_needs_no_password(app: &TestApp) {
    let first = app.register_client(ClientSpec::web_app()).await;
    let second = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("carol").await;
    app.authorize_and_log_in(&AuthorizeRequest::new(&first, WEB_APP_REDIRECT_URI), &user).await;
    let response = app.get_authorize(&AuthorizeRequest::new(&second, WEB_APP_REDIRECT_URI)).await;
    let params = redirect_params(&response);
    assert!(params.contains_key("code"), "SSO: straight back with a code");
}

async fn consent_is_remembered_until_more_scopes_are_requested(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("dave").await;
    let narrow =
        AuthorizeRequest { scope: Some("openid".into()), ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI) };
    app.authorize_and_log_in(&narrow, &user).await;
    let again = app
        .get_authorize(&AuthorizeRequest {
            scope: Some("openid".into()),
            ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
        })
        .await;
    assert!(redirect_params(&again).contains_key("code"), "remembered consent: no page");
    let wider = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    assert_eq!(wider.status(), 200, "new scopes: consent again");
    assert!(wider.text().await.unwrap().contains("Allow access?"));
    let forced = app
        .get_authorize(
            &AuthorizeRequest { scope: Some("openid".into()), ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI) }
                .with("prompt", "consent"),
        )
        .await;
    assert_eq!(forced.status(), 200, "prompt=consent asks again");
}

async fn denying_consent_returns_access_denied(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    app.create_user("erin").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let html = app.get_authorize(&request).await.text().await.unwrap();
    let consent = app.submit_login(&form_tokens(&html), "erin", crate::helpers::browser::PASSWORD).await;
    let denied = app.submit_consent(&form_tokens(&consent.text().await.unwrap()), "deny").await;
    let params = redirect_params(&denied);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], request.state.clone().unwrap());
    assert_eq!(params["iss"], app.address);
}

async fn prompt_none_without_a_session_is_login_required(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "none");
    let params = redirect_params(&app.get_authorize(&request).await);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], request.state.clone().unwrap());
    assert_eq!(params["iss"], app.address);
}

async fn prompt_none_without_consent_is_consent_required(app: &TestApp) {
    let first_party = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let third_party = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("frank").await;
    app.authorize_and_log_in(&AuthorizeRequest::new(&first_party, WEB_APP_REDIRECT_URI), &user).await;
    let request = AuthorizeRequest::new(&third_party, WEB_APP_REDIRECT_URI).with("prompt", "none");
    assert_eq!(redirect_params(&app.get_authorize(&request).await)["error"], "consent_required");
}

async fn prompt_login_and_max_age_force_reauthentication(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("grace").await;
    app.authorize_and_log_in(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI), &user).await;
    let forced = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "login")).await;
    assert_eq!(forced.status(), 200, "prompt=login shows the login form");
    let html = forced.text().await.unwrap();
    assert!(html.contains("name=\"password\""));
    // max_age=0: any earlier login is too old (OIDC Core §3.1.2.1).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let aged = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("max_age", "0")).await;
    assert_eq!(aged.status(), 200);
    let relaxed =
        app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("max_age", "3600")).await;
    assert!(redirect_params(&relaxed).contains_key("code"));
}

async fn login_hint_prefills_the_username(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let page = app
        .get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("login_hint", "heidi@example.com"))
        .await;
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"heidi@example.com\""));
}

async fn post_to_authorize_works_like_get(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let response = app.http.post(app.url("/authorize")).form(&request.params()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("name=\"password\""));
}

crate::backend_tests!(
    login_consent_code_and_tokens,
    a_public_client_exchanges_with_pkce_only,
    a_second_app_in_the_same_browser_needs_no_password,
    consent_is_remembered_until_more_scopes_are_requested,
    denying_consent_returns_access_denied,
    prompt_none_without_a_session_is_login_required,
    prompt_none_without_consent_is_consent_required,
    prompt_login_and_max_age_force_reauthentication,
    login_hint_prefills_the_username,
    post_to_authorize_works_like_get,
);
