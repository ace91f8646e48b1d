//! Finding 2: duplicate detection compared each pair with every earlier one, so 32,000
//! empty pairs (64 KB) took a worker 1.2 s. Now parsing is linear, and the number of
//! parameters and the length of `/authorize` and `/logout` queries are capped, each
//! answered with the endpoint's own kind of error.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp};

async fn assert_html_error(response: reqwest::Response, mentions: &str) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(mentions), "the page names the limit ({mentions}): {html}");
}

async fn thirty_two_thousand_empty_pairs_are_refused_by_count(app: &TestApp) {
    let query = "&".repeat(32_000);
    let response = app.http.get(format!("{}?{query}", app.url("/authorize"))).send().await.unwrap();
    assert_html_error(response, "longer than").await;
    let body = "&".repeat(16_000);
    let response = app.post_token_raw("application/x-www-form-urlencoded", body).await;
    let error = assert_oauth_error(response, 400, "invalid_request").await;
    assert!(error["error_description"].as_str().unwrap().contains("parameters"), "{error}");
}

async fn more_than_a_hundred_parameters_are_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let mut params = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).params();
    params.extend((0..100).map(|i| (format!("x{i}"), "1".to_owned())));
    let response = app.http.get(app.url("/authorize")).query(&params).send().await.unwrap();
    assert_html_error(response, "parameters").await;
    let response = app.http.post(app.url("/authorize")).form(&params).send().await.unwrap();
    assert_html_error(response, "parameters").await;
}

async fn long_queries_are_refused_at_authorize_and_logout(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("ui_locales", &"a".repeat(9 * 1024));
    assert_html_error(app.get_authorize(&request).await, "longer than").await;
    let response = app.http.get(app.url("/logout")).query(&[("state", "s".repeat(9 * 1024))]).send().await.unwrap();
    assert_html_error(response, "longer than").await;
}

crate::backend_tests!(
    thirty_two_thousand_empty_pairs_are_refused_by_count,
    more_than_a_hundred_parameters_are_refused,
    long_queries_are_refused_at_authorize_and_logout,
);
