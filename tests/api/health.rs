use crate::helpers::TestApp;

async fn health_and_readiness_answer(app: &TestApp) {
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

async fn every_response_carries_a_request_id(app: &TestApp) {
    let response = app.http.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = app.http.get(app.url("/healthz")).header("x-request-id", "bad id with spaces").send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 32, "an invalid id is replaced by a generated one");
}

crate::backend_tests!(health_and_readiness_answer, every_response_carries_a_request_id);
