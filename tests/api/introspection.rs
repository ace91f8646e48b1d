//! Who may introspect what (RFC 7662 §4): a token's own client, a resource server serving
//! one of its audiences, or a client registered to introspect any token; to every other
//! client a live token is `{"active": false}` and nothing more (§2.2). And a disabled
//! client's tokens die with it, at `/introspect` and `/userinfo` alike.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;
use serde_json::{json, Value};
use tessera::domain::client::{ClientId, GrantType};

const API: &str = "https://api.example.com";

/// A resource server: authenticates with a secret, gets no tokens of its own for `API`.
fn resource_server(serves: Vec<&'static str>) -> ClientSpec {
    ClientSpec { audiences: vec!["https://self.example.com"], served_audiences: serves, ..ClientSpec::service() }
}

/// A user's access token from the code flow at `client` (no refresh token, so no family
/// whose revocation could be what makes it inactive).
async fn user_access_token(app: &TestApp, client: &TestClient, username: &str) -> String {
    let user = app.create_user(username).await;
    let request = AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let response = app.exchange_code(client, &params["code"], &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    body["access_token"].as_str().unwrap().to_owned()
}

async fn client_credentials_token(app: &TestApp, client: &TestClient) -> String {
    let body: Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

async fn a_client_that_neither_owns_nor_serves_a_token_learns_nothing(app: &TestApp) {
    let web_app = app.register_client(ClientSpec::web_app()).await;
    let service = app.register_client(ClientSpec::service()).await;
    let stranger = app.register_client(ClientSpec::service()).await;
    let other_api = app.register_client(resource_server(vec!["https://other.example.com"])).await;
    let user_token = user_access_token(app, &web_app, "ada").await;
    let service_token = client_credentials_token(app, &service).await;

    // Both tokens are live, and their owners see them (the control for what follows).
    assert_eq!(app.introspect(&web_app, &user_token).await["active"], true);
    assert_eq!(app.introspect(&service, &service_token).await["active"], true);
    for (caller, token) in [
        (&stranger, &user_token),
        (&stranger, &service_token),
        (&service, &user_token),
        (&web_app, &service_token),
        (&other_api, &user_token),
        (&other_api, &service_token),
    ] {
        assert_eq!(app.introspect(caller, token).await, json!({ "active": false }), "RFC 7662 §2.2: nothing else");
    }
}

async fn the_owner_sees_its_own_tokens_in_full(app: &TestApp) {
    let web_app = app.register_client(ClientSpec::web_app()).await;
    let token = user_access_token(app, &web_app, "bea").await;
    let body = app.introspect(&web_app, &token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], web_app.id.as_str());
    assert_eq!(body["aud"], API);
    assert!(body["sub"].is_string() && body["sid"].is_string(), "{body}");
}

async fn a_resource_server_sees_the_tokens_of_the_audiences_it_serves(app: &TestApp) {
    let web_app = app.register_client(ClientSpec::web_app()).await;
    let api = app.register_client(resource_server(vec!["https://billing.example.com", API])).await;
    let user_token = user_access_token(app, &web_app, "cyd").await;
    let body = app.introspect(&api, &user_token).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], web_app.id.as_str(), "the token's client, not the caller");

    // An `aud` array matches when any of its values is served.
    let multi = app
        .register_client(ClientSpec {
            audiences: vec!["https://reports.example.com", "https://billing.example.com"],
            ..ClientSpec::service()
        })
        .await;
    let token = client_credentials_token(app, &multi).await;
    let body = app.introspect(&api, &token).await;
    assert_eq!(body["aud"], json!(["https://reports.example.com", "https://billing.example.com"]));
    assert_eq!(body["active"], true);
    let reports_only = app.register_client(resource_server(vec!["https://reports.example.com/"])).await;
    assert_eq!(app.introspect(&reports_only, &token).await, json!({ "active": false }), "audiences compare exactly");
}

async fn a_client_registered_to_introspect_any_token_sees_every_access_token(app: &TestApp) {
    let web_app = app.register_client(ClientSpec::web_app()).await;
    let service = app.register_client(ClientSpec::service()).await;
    let gateway = app.register_client(ClientSpec { may_introspect_any: true, ..resource_server(vec![]) }).await;
    for token in [user_access_token(app, &web_app, "dot").await, client_credentials_token(app, &service).await] {
        assert_eq!(app.introspect(&gateway, &token).await["active"], true);
    }
}

async fn refresh_tokens_introspect_only_for_their_own_client(app: &TestApp) {
    let offline = app.register_client(ClientSpec::offline_app()).await;
    let api = app.register_client(resource_server(vec![API])).await;
    let gateway = app.register_client(ClientSpec { may_introspect_any: true, ..resource_server(vec![API]) }).await;
    let user = app.create_user("eve").await;
    let body = app.offline_login(&offline, &user).await;
    let refresh_token = body["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(&offline, refresh_token).await["active"], true);
    assert_eq!(app.introspect(&api, refresh_token).await, json!({ "active": false }));
    assert_eq!(app.introspect(&gateway, refresh_token).await, json!({ "active": false }));
    // The access token of the same login is the API's to introspect.
    assert_eq!(app.introspect(&api, body["access_token"].as_str().unwrap()).await["active"], true);
}

async fn a_disabled_clients_user_tokens_are_inactive_and_refused_at_userinfo(app: &TestApp) {
    let web_app = app.register_client(ClientSpec::web_app()).await;
    let api = app.register_client(resource_server(vec![API])).await;
    let token = user_access_token(app, &web_app, "fay").await;
    assert_eq!(app.introspect(&api, &token).await["active"], true);
    assert_eq!(app.userinfo(&token).await.status(), 200);

    let id = ClientId::parse(&web_app.id).unwrap();
    assert!(app
        .storage
        .disable_client(&id, &app.revocation(tessera::domain::signals::Reason::ClientDisabled))
        .await
        .unwrap());
    // No expire_client_cache(): the web app's registration is in the cache from its code
    // exchange, and a token's client is read from storage, so this takes effect at once.
    assert_eq!(app.introspect(&api, &token).await, json!({ "active": false }));
    let refused = app.userinfo(&token).await;
    assert_eq!(refused.status(), 401);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
}

async fn public_clients_still_cannot_introspect(app: &TestApp) {
    let public = app
        .register_client(ClientSpec {
            served_audiences: vec![API],
            may_introspect_any: true,
            grant_types: vec![GrantType::AuthorizationCode],
            ..ClientSpec::public_app()
        })
        .await;
    let service = app.register_client(ClientSpec::service()).await;
    let token = client_credentials_token(app, &service).await;
    let response = app.client_post(&public, "/introspect", &mut vec![("token", token.as_str())]).await;
    crate::helpers::assert_oauth_error(response, 401, "invalid_client").await;
}

crate::backend_tests!(
    a_client_that_neither_owns_nor_serves_a_token_learns_nothing,
    the_owner_sees_its_own_tokens_in_full,
    a_resource_server_sees_the_tokens_of_the_audiences_it_serves,
    a_client_registered_to_introspect_any_token_sees_every_access_token,
    refresh_tokens_introspect_only_for_their_own_client,
    a_disabled_clients_user_tokens_are_inactive_and_refused_at_userinfo,
    public_clients_still_cannot_introspect,
);
