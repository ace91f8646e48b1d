//! What an attacker tries, as black-box tests on both backends. Each file is named after
//! the attack; each test failed on the code before the fix it guards (the hardening issue's
//! findings), and races are tried with dozens of parallel requests, since sequential tests
//! cannot see them.

mod code_replay;
mod consent_forgery;
mod cross_site_forms;
mod login_form_replay;
mod logout_forgery;
mod oversized_requests;
mod password_guessing;
mod signal_receivers;
mod silent_authorization;
mod stale_codes;
mod unauthenticated_storage;

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::browser::{form_tokens, FormTokens};
use crate::helpers::clients::{TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

/// The login form's hidden fields for a fresh authorization request at `client`.
pub async fn login_form(app: &TestApp, client: &TestClient) -> FormTokens {
    let page = app.get_authorize(&AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)).await;
    assert_eq!(page.status(), 200, "the login page");
    form_tokens(&page.text().await.unwrap())
}

/// Runs `count` copies of `request` at once and returns their results in order.
pub async fn in_parallel<T, F: std::future::Future<Output = T>>(count: usize, request: impl Fn(usize) -> F) -> Vec<T> {
    futures_util::future::join_all((0..count).map(request)).await
}
