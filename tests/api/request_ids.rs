//! Every response carries an `X-Request-Id` (src/http/request_log.rs): the client's own
//! when it is safe to log and echo, a generated one otherwise.

use crate::helpers::TestApp;

async fn every_response_carries_a_request_id(app: &TestApp) {
    let response = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = app.http.get(app.url("/healthz")).header("x-request-id", "bad id with spaces").send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 32, "an invalid id is replaced by a generated one");
}

crate::backend_tests!(every_response_carries_a_request_id);
