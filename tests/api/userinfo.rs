//! The UserInfo endpoint (OpenID Connect Core §5.3) refuses a missing, invalid or
//! under-scoped Bearer token with the RFC 6750 §3 challenge.

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;

async fn userinfo_errors_follow_rfc_6750(app: &TestApp) {
    let missing = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"tessera\"");
    let garbage = app.userinfo("not-a-token").await;
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    // A client_credentials token has no openid scope.
    let service = app.register_client(ClientSpec::service()).await;
    let body: serde_json::Value =
        app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    let forbidden = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

crate::backend_tests!(userinfo_errors_follow_rfc_6750);
