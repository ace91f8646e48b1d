//! Liveness and readiness probes: `/healthz` answers while the process runs, `/readyz`
//! while the database does too.

use crate::helpers::TestApp;

async fn health_and_readiness_answer(app: &TestApp) {
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

crate::backend_tests!(health_and_readiness_answer);
