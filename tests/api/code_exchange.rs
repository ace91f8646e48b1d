//! Redeeming an authorization code at `/token` (RFC 6749 §4.1.3, RFC 7636 §4.6): a code
//! works once, for its own client, redirect URI and verifier, before it expires; a
//! replayed code revokes what it issued (RFC 6749 §4.1.2).

use crate::helpers::assert_oauth_error;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::refresh_token;
use crate::helpers::TestApp;
use serde_json::Value;

async fn a_replayed_code_revokes_the_family_it_created(app: &TestApp) {
    use crate::helpers::browser::AuthorizeRequest;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("pat").await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&client, crate::helpers::clients::WEB_APP_REDIRECT_URI)
    };
    let params = app.authorize_and_log_in(&request, &user).await;
    let body: Value = app.exchange_code(&client, &params["code"], &request).await.json().await.unwrap();
    assert_oauth_error(app.exchange_code(&client, &params["code"], &request).await, 400, "invalid_grant").await;
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
}

crate::backend_tests!(a_replayed_code_revokes_the_family_it_created);
