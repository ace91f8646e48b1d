//! Cascades: what ends refresh-token families besides their own tokens (RFC 9700 §4.14.2
//! lets a server revoke them "in case of a security event, such as: password change or
//! logout at the authorization server"): a logout ends the families of its session; a
//! password change or disabling the user ends all of the user's.

use crate::helpers::assert_oauth_error;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::refresh_token;
use crate::helpers::TestApp;

async fn logout_revokes_the_sessions_families(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("leo").await;
    let body = app.offline_login(&client, &user).await;
    let out = app.log_out_confirmed(&[]).await;
    assert_eq!(out.status(), 200);
    assert!(out.text().await.unwrap().contains("signed out"));
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
}

async fn disabling_a_user_or_changing_a_password_revokes_their_families(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("mia").await;
    let body = app.offline_login(&client, &user).await;
    let output = crate::helpers::cli::tessera(
        app,
        &["user", "set-password", "mia", "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;

    let other = app.create_user("nina").await;
    let body = app.offline_login(&client, &other).await;
    let access = body["access_token"].as_str().unwrap().to_owned();
    let output = crate::helpers::cli::tessera(app, &["user", "disable", "nina"], None);
    assert!(output.status.success());
    assert_oauth_error(app.refresh(&client, &refresh_token(&body), None).await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(&client, &access).await["active"], false, "a disabled user's access tokens are inactive");
}

crate::backend_tests!(
    logout_revokes_the_sessions_families,
    disabling_a_user_or_changing_a_password_revokes_their_families
);
