//! openid-client 6 (Node), an independent DPoP client (RFC 9449): it must accept every
//! response Tessera gives it — nonces (§8, answered by the library itself), `token_type`
//! DPoP, `/userinfo` with the DPoP scheme — and Tessera must bind what it issues to the
//! library's key. Skipped outside CI when Node or the packages are missing.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::node::run_script;
use crate::helpers::TestApp;
use serde_json::Value;
use tessera::domain::client::AuthMethod;

/// Runs `dpop-client.mjs` with `args` (see `helpers::node::run_script`).
async fn run(args: &[&str]) -> Option<Value> {
    run_script("dpop-client.mjs", args).await
}

async fn cnf_jkt(app: &TestApp, token: &Value) -> Value {
    app.verify_access_token(token.as_str().unwrap(), "https://api.example.com").await["cnf"]["jkt"].clone()
}

async fn openid_client_gets_dpop_bound_client_credentials_tokens(app: &TestApp) {
    let client = app.register_client(ClientSpec { dpop_bound_access_tokens: true, ..ClientSpec::service() }).await;
    let Some(summary) = run(&["client_credentials", &app.address, &client.id, client.secret()]).await else { return };
    assert_eq!(summary["token_type"], "dpop", "openid-client lower-cases token_type: {summary}");
    assert_eq!(summary["second_token_type"], "dpop");
    assert_eq!(cnf_jkt(app, &summary["access_token"]).await, summary["jkt"]);
}

async fn openid_client_exchanges_refreshes_and_calls_userinfo_with_dpop(app: &TestApp) {
    let client = app.register_client(ClientSpec { auth_method: AuthMethod::None, ..ClientSpec::offline_app() }).await;
    let user = app.create_user("dora").await;
    let request = AuthorizeRequest {
        scope: Some("openid profile offline_access invoices:read".into()),
        ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
    }
    .with("prompt", "consent");
    let params = app.authorize_and_log_in(&request, &user).await;
    let callback = url::Url::parse_with_params(WEB_APP_REDIRECT_URI, params.iter()).unwrap();
    let args = [
        "code",
        &app.address,
        &client.id,
        callback.as_str(),
        &request.pkce.verifier,
        request.state.as_deref().unwrap(),
        request.nonce.as_deref().unwrap(),
    ];
    let Some(summary) = run(&args).await else { return };
    assert_eq!(summary["token_type"], "dpop", "{summary}");
    assert_eq!(summary["refreshed_token_type"], "dpop");
    assert_eq!(summary["userinfo_sub"], user.id.as_str());
    assert_eq!(summary["refreshed_userinfo_sub"], user.id.as_str());
    assert_eq!(cnf_jkt(app, &summary["access_token"]).await, summary["jkt"]);
    assert_eq!(cnf_jkt(app, &summary["refreshed_access_token"]).await, summary["jkt"]);
}

crate::backend_tests!(
    openid_client_gets_dpop_bound_client_credentials_tokens,
    openid_client_exchanges_refreshes_and_calls_userinfo_with_dpop,
);
