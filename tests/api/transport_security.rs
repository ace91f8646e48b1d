//! HTTP Strict Transport Security (RFC 6797): an https issuer tells browsers to keep to
//! https; an http one (development, tests) must not.

use crate::helpers::test_app::test_settings;
use crate::helpers::{TestApp, TestDatabase};
use std::net::TcpListener;
use tessera::config::Issuer;
use tessera::startup::Application;

const ONE_YEAR: &str = "max-age=31536000";

async fn hsts(http: &reqwest::Client, url: String) -> Option<String> {
    let response = http.post(url).send().await.unwrap();
    response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned())
}

async fn an_https_issuer_sends_hsts_on_every_response(database: &TestDatabase) {
    // The harness always makes the listener's http address the issuer; here the issuer is
    // https, as behind a TLS-terminating proxy, and the test talks to the plain listener.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = test_settings(database);
    settings.issuer = Issuer::parse("https://auth.example.com").unwrap();
    let app = Application::with_listener(settings, listener).await.expect("Tessera starts");
    let handle = app.stopper();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    for path in ["/healthz", "/.well-known/openid-configuration", "/token", "/no-such-page", "/authorize"] {
        let response = http.get(format!("{address}{path}")).send().await.unwrap();
        let header = response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header.as_deref(), Some(ONE_YEAR), "GET {path} ({})", response.status());
    }
    assert_eq!(hsts(&http, format!("{address}/token")).await.as_deref(), Some(ONE_YEAR), "an OAuth error too");
    handle.stop(true).await;

    let plain = TestApp::spawn(database, |_| {}).await.expect("Tessera starts");
    assert!(plain.address.starts_with("http://"));
    for path in ["/healthz", "/token"] {
        let response = plain.http.get(plain.url(path)).send().await.unwrap();
        assert!(response.headers().get("strict-transport-security").is_none(), "GET {path} over an http issuer");
    }
    assert_eq!(hsts(&plain.http, plain.url("/token")).await, None);
    plain.stop().await;
}

crate::database_tests!(an_https_issuer_sends_hsts_on_every_response);
