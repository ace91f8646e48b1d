//! Prometheus metrics on their own listener: a scrape after a known sequence of requests
//! shows the counters moved by exactly that sequence.

use crate::helpers::browser::{form_tokens, AuthorizeRequest};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::refresh::refresh_token;
use crate::helpers::{TestApp, TestDatabase};
use std::collections::HashMap;

/// `name{labels}` → value, from the text exposition format.
pub async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let url = format!("{}/metrics", app.metrics_address.as_deref().expect("metrics.bind is set"));
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, series: &str) -> f64 {
    after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
}

async fn metrics_count_exactly_what_happened(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.metrics.bind = Some("127.0.0.1:0".parse().unwrap())).await.unwrap();
    let service = app.register_client(ClientSpec::service()).await;
    let web = app.register_client(ClientSpec::offline_app()).await;
    let alice = app.create_user("alice").await;
    let before = scrape(&app).await;

    for _ in 0..3 {
        assert_eq!(app.client_credentials(&service.id, service.secret(), &[]).await.status(), 200);
    }
    assert_eq!(app.client_credentials(&service.id, "wrong-secret", &[]).await.status(), 401);
    assert_eq!(app.http.get(app.url("/no-such-page/12345")).send().await.unwrap().status(), 404);
    // One failed login, then one that succeeds and exchanges its code.
    let page = app.get_authorize(&AuthorizeRequest::new(&web, WEB_APP_REDIRECT_URI)).await;
    let tokens = form_tokens(&page.text().await.unwrap());
    assert_eq!(app.submit_login(&tokens, "alice", "not-her-password").await.status(), 401);
    let login = app.offline_login(&web, &alice).await;
    // Rotated, then the same token again inside the retry window, then outside it: reuse.
    let first = refresh_token(&login);
    assert_eq!(app.refresh(&web, &first, None).await.status(), 200);
    assert_eq!(app.refresh(&web, &first, None).await.status(), 200);
    app.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(app.refresh(&web, &first, None).await.status(), 400);

    let after = scrape(&app).await;
    let d = |series: &str| delta(&before, &after, series);
    assert_eq!(d(r#"tessera_tokens_issued_total{grant="client_credentials",kind="access_token"}"#), 3.0);
    assert_eq!(d(r#"tessera_http_requests_total{method="POST",route="/token",status="200"}"#), 6.0);
    assert_eq!(d(r#"tessera_http_requests_total{method="POST",route="/token",status="401"}"#), 1.0);
    assert_eq!(d(r#"tessera_http_requests_total{method="POST",route="/token",status="400"}"#), 1.0);
    assert_eq!(d(r#"tessera_http_requests_total{method="GET",route="unmatched",status="404"}"#), 1.0);
    assert_eq!(d(r#"tessera_http_request_duration_seconds_count{method="POST",route="/token"}"#), 8.0);
    assert_eq!(d(r#"tessera_tokens_issued_total{grant="authorization_code",kind="access_token"}"#), 1.0);
    assert_eq!(d(r#"tessera_tokens_issued_total{grant="authorization_code",kind="id_token"}"#), 1.0);
    assert_eq!(d(r#"tessera_tokens_issued_total{grant="authorization_code",kind="refresh_token"}"#), 1.0);
    assert_eq!(d(r#"tessera_tokens_issued_total{grant="refresh_token",kind="refresh_token"}"#), 2.0);
    assert_eq!(d(r#"tessera_refresh_rotations_total{outcome="rotated"}"#), 1.0);
    assert_eq!(d(r#"tessera_refresh_rotations_total{outcome="retried"}"#), 1.0);
    assert_eq!(d(r#"tessera_refresh_rotations_total{outcome="reuse_detected"}"#), 1.0);
    assert_eq!(d(r#"tessera_logins_total{outcome="failure"}"#), 1.0);
    assert_eq!(d(r#"tessera_logins_total{outcome="success"}"#), 1.0);
    // No path a stranger chose became a label.
    assert!(after.keys().all(|series| !series.contains("no-such-page")));
    // State read at scrape time.
    assert_eq!(after[&format!("tessera_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))], 1.0);
    assert!(after[r#"tessera_db_pool_connections{state="idle"}"#] >= 0.0);
    assert!(after["tessera_db_writes_queued"] >= 0.0, "exported (SQLite counts its writer queue, PostgreSQL 0)");
    assert!(after["tessera_signing_key_age_seconds"] >= 0.0);
    assert!(after["tessera_signing_key_next_rotation_step_seconds"] > 0.0);
    assert_eq!(after["tessera_ssf_backlog_events"], 0.0, "no receiver, nothing owed");

    // Never on the public listener.
    assert_eq!(app.http.get(app.url("/metrics")).send().await.unwrap().status(), 404);
}

/// Off by default: no listener at all.
async fn no_metrics_listener_unless_configured(database: &TestDatabase) {
    let app = TestApp::spawn(database, |_| {}).await.unwrap();
    assert!(app.metrics_address.is_none());
    assert_eq!(app.http.get(app.url("/metrics")).send().await.unwrap().status(), 404);
}

crate::database_tests!(metrics_count_exactly_what_happened, no_metrics_listener_unless_configured);
