//! Errors of the authorization request (RFC 6749 §4.1.2.1): nothing redirects to an
//! unverified redirect URI (a loopback one matches on any port, RFC 8252 §7.3), and every
//! later mistake comes back to the client as the right error.

use crate::helpers::browser::{redirect_params, AuthorizeRequest};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

fn assert_error_page_without_redirect(response: &reqwest::Response, status: u16) {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers().get("location").is_none(), "must never redirect to an unverified redirect_uri");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

async fn unknown_client_or_unregistered_redirect_uri_never_redirects(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let mut request = AuthorizeRequest::new(&client, "https://evil.example.com/callback");
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    request.redirect_uri = format!("{WEB_APP_REDIRECT_URI}/extra");
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    request.redirect_uri = WEB_APP_REDIRECT_URI.to_owned();
    request.client_id = "no-such-client".into();
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    let disabled = app.register_client(ClientSpec { disabled: true, ..ClientSpec::web_app() }).await;
    assert_error_page_without_redirect(
        &app.get_authorize(&AuthorizeRequest::new(&disabled, WEB_APP_REDIRECT_URI)).await,
        400,
    );
    let missing = app.http.get(app.url("/authorize")).query(&[("client_id", client.id.as_str())]).send().await.unwrap();
    assert_error_page_without_redirect(&missing, 400);
    let garbage = app.http.get(format!("{}?client_id=%zz", app.url("/authorize"))).send().await.unwrap();
    assert_error_page_without_redirect(&garbage, 400);
}

async fn loopback_redirect_uris_match_any_port(app: &TestApp) {
    let client = app
        .register_client(ClientSpec { redirect_uris: vec!["http://127.0.0.1/callback"], ..ClientSpec::public_app() })
        .await;
    let page = app.get_authorize(&AuthorizeRequest::new(&client, "http://127.0.0.1:49152/callback")).await;
    assert_eq!(page.status(), 200, "RFC 8252 §7.3: any port on a loopback redirect URI");
}

async fn pkce_is_required_and_plain_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let without: Vec<_> = request.params().into_iter().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    let response = app.http.get(app.url("/authorize")).query(&without).send().await.unwrap();
    let params = redirect_params(&response);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["iss"], app.address);
    assert_eq!(params["state"], request.state.clone().unwrap());

    let plain: Vec<_> = request
        .params()
        .into_iter()
        .map(|(k, v)| if k == "code_challenge_method" { (k, "plain".to_owned()) } else { (k, v) })
        .collect();
    let response = app.http.get(app.url("/authorize")).query(&plain).send().await.unwrap();
    assert_eq!(redirect_params(&response)["error"], "invalid_request");
}

async fn other_request_errors_redirect_with_their_codes(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let cases = [
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "openid admin", "invalid_scope"),
        ("prompt", "none login", "invalid_request"),
        ("max_age", "-1", "invalid_request"),
        ("request", "eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
    ];
    for (name, value, code) in cases {
        let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
        let params: Vec<_> = request
            .params()
            .into_iter()
            .filter(|(k, _)| k != name)
            .chain([(name.to_owned(), value.to_owned())])
            .collect();
        let response = app.http.get(app.url("/authorize")).query(&params).send().await.unwrap();
        let redirect = redirect_params(&response);
        assert_eq!(redirect["error"], code, "{name}={value}");
        assert_eq!(redirect["state"], request.state.clone().unwrap());
    }
    let service =
        app.register_client(ClientSpec { redirect_uris: vec![WEB_APP_REDIRECT_URI], ..ClientSpec::service() }).await;
    let response = app
        .get_authorize(&AuthorizeRequest { scope: None, ..AuthorizeRequest::new(&service, WEB_APP_REDIRECT_URI) })
        .await;
    assert_eq!(redirect_params(&response)["error"], "unauthorized_client");
}

crate::backend_tests!(
    unknown_client_or_unregistered_redirect_uri_never_redirects,
    loopback_redirect_uris_match_any_port,
    pkce_is_required_and_plain_is_refused,
    other_request_errors_redirect_with_their_codes,
);
