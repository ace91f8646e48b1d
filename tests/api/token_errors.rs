//! Every malformed or unauthorised token request gets its RFC 6749 §5.2 error, never a 5xx.

use crate::helpers::clients::ClientSpec;
use crate::helpers::{assert_oauth_error, TestApp};
use base64::Engine;
use tessera::domain::client::{AuthMethod, GrantType};

const FORM: &str = "application/x-www-form-urlencoded";

async fn missing_grant_type_is_invalid_request(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret)
        .form(&[("scope", "a")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

async fn unknown_grant_type_is_unsupported(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    // The device grant is supported (RFC 8628) under its URN only: the CLI's short name is not a grant type.
    for grant in ["password", "implicit", "device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"] {
        let response = app
            .http
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", grant)])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "unsupported_grant_type").await;
    }
}

async fn unknown_client_is_invalid_client_with_basic_challenge(app: &TestApp) {
    let response = app.client_credentials("no-such-client", "whatever", &[]).await;
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert!(challenge.is_some_and(|c| c.starts_with("Basic")), "RFC 6749 §5.2: 401 with WWW-Authenticate");
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn wrong_secret_is_invalid_client(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app.client_credentials(&client.id, "tcs_wrong", &[]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = app.client_credentials(&client.id, "", &[]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn missing_client_authentication_is_invalid_client(app: &TestApp) {
    let response = app.http.post(app.url("/token")).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn a_public_client_cannot_use_client_credentials(app: &TestApp) {
    let client = app.register_client(ClientSpec { auth_method: AuthMethod::None, ..ClientSpec::service() }).await;
    let form = [("grant_type", "client_credentials"), ("client_id", client.id.as_str())];
    let response = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

async fn two_authentication_methods_at_once_are_invalid_request(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let form = [("grant_type", "client_credentials"), ("client_secret", client.secret())];
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

async fn the_registered_authentication_method_is_enforced(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await; // client_secret_basic
    let form = [("grant_type", "client_credentials"), ("client_id", &client.id), ("client_secret", client.secret())];
    let response = app.http.post(app.url("/token")).form(&form).send().await.unwrap();
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn a_disabled_client_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec { disabled: true, ..ClientSpec::service() }).await;
    let response = app.client_credentials(&client.id, client.secret(), &[]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn a_client_without_the_grant_is_unauthorized_client(app: &TestApp) {
    let client = app
        .register_client(ClientSpec { grant_types: vec![GrantType::AuthorizationCode], ..ClientSpec::service() })
        .await;
    let response = app.client_credentials(&client.id, client.secret(), &[]).await;
    assert_oauth_error(response, 400, "unauthorized_client").await;
}

async fn scopes_beyond_the_registration_are_invalid_scope(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app.client_credentials(&client.id, client.secret(), &[("scope", "invoices:read admin")]).await;
    assert_oauth_error(response, 400, "invalid_scope").await;
    let response = app.client_credentials(&client.id, client.secret(), &[("scope", "bad\"scope")]).await;
    assert_oauth_error(response, 400, "invalid_scope").await;
}

async fn resources_outside_the_registration_are_invalid_target(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response =
        app.client_credentials(&client.id, client.secret(), &[("resource", "https://evil.example.com")]).await;
    assert_oauth_error(response, 400, "invalid_target").await;
    let response = app.client_credentials(&client.id, client.secret(), &[("resource", "not-a-uri")]).await;
    assert_oauth_error(response, 400, "invalid_target").await;
}

async fn a_non_form_content_type_is_invalid_request(app: &TestApp) {
    let response = app.post_token_raw("application/json", r#"{"grant_type":"client_credentials"}"#).await;
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app.http.post(app.url("/token")).body("grant_type=client_credentials").send().await.unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
    let response = app.post_token_raw("application/x-www-form-urlencoded; charset=latin1", "grant_type=x").await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

async fn a_body_over_16_kib_is_rejected(app: &TestApp) {
    let body = format!("grant_type=client_credentials&scope={}", "a".repeat(17 * 1024));
    let response = app.post_token_raw(FORM, body).await;
    assert_oauth_error(response, 413, "invalid_request").await;
    // Without Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b'a'; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app.post_token_raw(FORM, stream).await;
    assert_oauth_error(response, 413, "invalid_request").await;
}

async fn repeated_parameters_are_invalid_request(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .header("content-type", FORM)
        .body("grant_type=client_credentials&scope=invoices:read&scope=invoices:write")
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(response, 400, "invalid_request").await;
    assert!(body["error_description"].as_str().unwrap().contains("scope"));
}

async fn malformed_authorization_headers_are_invalid_request(app: &TestApp) {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let headers = [
        "Basic".to_owned(),
        "Basic !!!not-base64!!!".to_owned(),
        format!("Basic {}", b64("no-colon")),
        format!("Basic {}", b64("id:%zz")),
        "Bearer some-token".to_owned(),
    ];
    for header in headers {
        let response = app
            .http
            .post(app.url("/token"))
            .header("authorization", &header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
    }
    // Not even valid header text (obs-text byte).
    let value = reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap();
    let response = app
        .http
        .post(app.url("/token"))
        .header("authorization", value)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

async fn bad_percent_encoding_and_non_utf8_are_invalid_request(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    for body in [
        &b"grant_type=client_credentials&scope=%zz"[..],
        b"grant_type=client%2",
        b"grant_type=client_credentials&scope=\xff\xfe",
        b"grant_type=%C3%28",
    ] {
        let response = app
            .http
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_ref())
            .header("content-type", FORM)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
    }
}

async fn get_on_the_token_endpoint_is_405(app: &TestApp) {
    let response = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    assert_oauth_error(response, 405, "invalid_request").await;
}

crate::backend_tests!(
    missing_grant_type_is_invalid_request,
    unknown_grant_type_is_unsupported,
    unknown_client_is_invalid_client_with_basic_challenge,
    wrong_secret_is_invalid_client,
    missing_client_authentication_is_invalid_client,
    a_public_client_cannot_use_client_credentials,
    two_authentication_methods_at_once_are_invalid_request,
    the_registered_authentication_method_is_enforced,
    a_disabled_client_is_refused,
    a_client_without_the_grant_is_unauthorized_client,
    scopes_beyond_the_registration_are_invalid_scope,
    resources_outside_the_registration_are_invalid_target,
    a_non_form_content_type_is_invalid_request,
    a_body_over_16_kib_is_rejected,
    repeated_parameters_are_invalid_request,
    malformed_authorization_headers_are_invalid_request,
    bad_percent_encoding_and_non_utf8_are_invalid_request,
    get_on_the_token_endpoint_is_405,
);
