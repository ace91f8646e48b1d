//! Finding 3: a code issued before a password change, a disable, a logout or an
//! operator's revocation, redeemed after it, returned 200 with a fresh refresh-token
//! family that then rotated forever. One test per cascade, and one for the redemption's
//! own check (a credential change with no cascade at all).

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp};
use std::collections::HashMap;

/// A first-party offline client, a user, and a code not yet redeemed.
async fn unredeemed_code(app: &TestApp, username: &str) -> (TestClient, AuthorizeRequest, HashMap<String, String>) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user(username).await;
    let request = AuthorizeRequest {
        scope: Some("openid offline_access".into()),
        ..AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)
    };
    let params = app.authorize_and_log_in(&request, &user).await;
    assert!(params.contains_key("code"));
    (client, request, params)
}

async fn assert_code_refused(app: &TestApp, client: &TestClient, request: &AuthorizeRequest, code: &str) {
    assert_oauth_error(app.exchange_code(client, code, request).await, 400, "invalid_grant").await;
}

fn run_cli(app: &TestApp, args: &[&str], stdin: Option<&str>) {
    let output = tessera(app, args, stdin);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

async fn a_code_from_before_a_password_change_is_refused(app: &TestApp) {
    let (client, request, params) = unredeemed_code(app, "pw-change").await;
    run_cli(app, &["user", "set-password", "pw-change", "--password-stdin"], Some("a brand new password\n"));
    assert_code_refused(app, &client, &request, &params["code"]).await;
}

async fn a_code_from_before_a_disable_is_refused(app: &TestApp) {
    let (client, request, params) = unredeemed_code(app, "to-disable").await;
    run_cli(app, &["user", "disable", "to-disable"], None);
    // The disabled user alone would be refused anyway; the cascade also deletes the code.
    assert_eq!(app.count_rows("authorization_codes").await, 0, "the unused code is gone");
    assert_code_refused(app, &client, &request, &params["code"]).await;
}

async fn a_code_from_before_a_logout_is_refused(app: &TestApp) {
    let (client, request, params) = unredeemed_code(app, "logs-out").await;
    assert_eq!(app.log_out_confirmed(&[]).await.status(), 200);
    assert_code_refused(app, &client, &request, &params["code"]).await;
}

async fn a_code_from_before_an_operator_revocation_is_refused(app: &TestApp) {
    let (client, request, params) = unredeemed_code(app, "revoked").await;
    run_cli(app, &["session", "revoke", "--user", "revoked"], None);
    assert_code_refused(app, &client, &request, &params["code"]).await;
}

async fn redemption_itself_refuses_a_code_older_than_the_users_credentials(app: &TestApp) {
    let (client, request, params) = unredeemed_code(app, "no-cascade").await;
    // Straight to the database: the password changes, but nothing ends the session or the
    // code (storage's own `set_password_hash` runs the cascade, which this test leaves out).
    let later = (chrono::Utc::now() + chrono::Duration::seconds(1)).timestamp_micros();
    app.execute_sql(
        &format!("UPDATE users SET password_hash = 'changed', credentials_changed_at = {later} WHERE username = 'no-cascade'"),
        &format!(
            "UPDATE users SET password_hash = 'changed', credentials_changed_at = to_timestamp({later}::float8 / 1000000) \
             WHERE username = 'no-cascade'"
        ),
    )
    .await;
    assert_code_refused(app, &client, &request, &params["code"]).await;
}

crate::backend_tests!(
    a_code_from_before_a_password_change_is_refused,
    a_code_from_before_a_disable_is_refused,
    a_code_from_before_a_logout_is_refused,
    a_code_from_before_an_operator_revocation_is_refused,
    redemption_itself_refuses_a_code_older_than_the_users_credentials,
);
