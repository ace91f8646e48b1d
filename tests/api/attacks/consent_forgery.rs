//! Finding 6: `/consent` took a login-stage request, so a code was issued for the cookie's
//! session with no password entered, bypassing `prompt=login` and `max_age` (OIDC Core
//! §3.1.2.1); it also took another session's request. Finding 9: submitting the consent
//! form twice at once issued two codes (check and delete were separate).

use super::in_parallel;
use crate::helpers::browser::{form_tokens, AuthorizeRequest, PASSWORD};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

/// No code came back: an error page, not a redirect to the client.
fn assert_no_code(response: &reqwest::Response) {
    assert_ne!(response.status(), 303, "no redirect with a code");
    assert!(response.headers().get("location").is_none());
}

async fn a_login_stage_request_posted_to_consent_issues_nothing(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("reauth").await;
    app.authorize_and_log_in(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI), &user).await;
    // prompt=login demands the password again; the attacker posts its form to /consent instead.
    let page = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "login")).await;
    let login = form_tokens(&page.text().await.unwrap());
    assert_no_code(&app.submit_consent(&login, "allow").await);
}

async fn another_sessions_consent_request_is_not_found(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    app.create_user("owner").await;
    app.create_user("intruder").await;
    // The owner reaches a consent page in their browser.
    let page = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    let consent = app.submit_login(&form_tokens(&page.text().await.unwrap()), "owner", PASSWORD).await;
    let owners = form_tokens(&consent.text().await.unwrap());
    // The intruder, signed in elsewhere, posts the owner's form with a matching CSRF cookie.
    let (intruder, jar) = app.other_browser();
    let page = intruder.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await;
    let theirs = intruder.submit_login(&form_tokens(&page.text().await.unwrap()), "intruder", PASSWORD).await;
    assert_eq!(theirs.status(), 200, "the intruder's own consent page");
    jar.add_cookie_str(&format!("tessera_csrf={}", owners.csrf_token), &app.address.parse().unwrap());
    assert_no_code(&intruder.submit_consent(&owners, "allow").await);
    // The owner's own answer still works.
    assert_eq!(app.submit_consent(&owners, "allow").await.status(), 303);
}

async fn twenty_parallel_submissions_of_one_consent_form_issue_one_code(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    app.create_user("double").await;
    // Ten rounds: a single round can happen to serialise on one keep-alive connection.
    for round in 1..=10 {
        let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "consent");
        let mut html = app.get_authorize(&request).await.text().await.unwrap();
        if html.contains("name=\"password\"") {
            // First round: sign in; later rounds reach the consent page straight away.
            html = app.submit_login(&form_tokens(&html), "double", PASSWORD).await.text().await.unwrap();
        }
        let tokens = form_tokens(&html);
        let statuses = in_parallel(20, |_| {
            let (app, tokens) = (app, &tokens);
            async move { app.submit_consent(tokens, "allow").await.status().as_u16() }
        })
        .await;
        assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 1, "one code: {statuses:?}");
        assert_eq!(app.count_rows("authorization_codes").await, round);
    }
}

crate::backend_tests!(
    a_login_stage_request_posted_to_consent_issues_nothing,
    another_sessions_consent_request_is_not_found,
    twenty_parallel_submissions_of_one_consent_form_issue_one_code,
);
