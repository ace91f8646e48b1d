//! Resubmitting a login form from the browser's history (a shared computer, after the
//! person signed in, or signed in and out): the form's CSRF cookie is gone once it did its
//! work, so the replay signs nobody in, even with the right password inside the form.

use super::login_form;
use crate::helpers::browser::{form_tokens, redirect_params, AuthorizeRequest, PASSWORD};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

async fn a_login_form_resubmitted_after_signing_in_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("alice").await;
    let form = login_form(app, &client).await;
    let signed_in = app.submit_login(&form, user.username.as_str(), PASSWORD).await;
    assert!(redirect_params(&signed_in).contains_key("code"), "a first-party client gets its code at once");
    let replayed = app.submit_login(&form, user.username.as_str(), PASSWORD).await;
    assert_eq!(replayed.status(), 403, "the CSRF cookie was cleared at sign-in");
}

async fn a_login_form_resubmitted_after_logging_out_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    let user = app.create_user("alice").await;
    let form = login_form(app, &client).await;
    let signed_in = app.submit_login(&form, user.username.as_str(), PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    // A second form (prompt=login asks for the password again), left open in another tab,
    // and a logout through the confirmation page.
    let again = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "login");
    let page = app.get_authorize(&again).await;
    assert_eq!(page.status(), 200, "the login page again");
    let second = form_tokens(&page.text().await.unwrap());
    let question = app.http.get(app.url("/logout")).send().await.unwrap().text().await.unwrap();
    let token = crate::helpers::browser::hidden_field(&question, "csrf_token").expect("the confirmation's token");
    let out = app.http.post(app.url("/logout")).form(&[("confirm", "yes"), ("csrf_token", &token)]).send().await;
    assert_eq!(out.unwrap().status(), 200, "logged out");
    let replayed = app.submit_login(&second, user.username.as_str(), PASSWORD).await;
    assert_eq!(replayed.status(), 403, "the CSRF cookie was cleared at logout");
}

crate::backend_tests!(
    a_login_form_resubmitted_after_signing_in_is_refused,
    a_login_form_resubmitted_after_logging_out_is_refused
);
