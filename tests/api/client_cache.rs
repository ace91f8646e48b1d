//! Client registrations are cached for `database.client_cache_ttl` (src/storage/client_cache.rs):
//! what a change made elsewhere (the CLI, another replica, here a second storage handle)
//! does to a running server, and when.

use crate::helpers::clients::ClientSpec;
use crate::helpers::{assert_oauth_error, TestApp, TestDatabase};
use chrono::Utc;
use tessera::config::Window;
use tessera::domain::client::ClientId;
use tessera::domain::secret::GeneratedSecret;

async fn a_disabled_client_keeps_its_cached_registration_until_the_ttl_ends(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    let id = ClientId::parse(&client.id).unwrap();
    assert!(app
        .storage
        .disable_client(&id, &app.revocation(tessera::domain::signals::Reason::ClientDisabled))
        .await
        .unwrap());

    // The documented bound, from both sides: still served from the cache within the TTL…
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    // …and refused once it has passed, at /token, /introspect and /revoke alike.
    app.expire_client_cache();
    assert_oauth_error(app.client_credentials(&client.id, client.secret(), &[]).await, 401, "invalid_client").await;
    for path in ["/introspect", "/revoke"] {
        let response = app.client_post(&client, path, &mut vec![("token", "anything")]).await;
        assert_oauth_error(response, 401, "invalid_client").await;
    }
}

async fn a_rotated_secret_works_at_once_and_the_old_one_ends_with_the_ttl(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    let id = ClientId::parse(&client.id).unwrap();
    let rotated = GeneratedSecret::generate("tcs_");
    assert!(app.storage.set_client_secret(&id, &rotated.digest(), Utc::now()).await.unwrap());

    // A secret that does not match the cached digest is checked against the database.
    let response = app.client_credentials(&client.id, rotated.expose(), &[]).await;
    assert_eq!(response.status(), 200, "the new secret is accepted at once");
    let body: serde_json::Value = response.json().await.unwrap();
    app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    // That re-read refreshed the entry, so the old secret is refused from now on.
    assert_oauth_error(app.client_credentials(&client.id, client.secret(), &[]).await, 401, "invalid_client").await;
    app.expire_client_cache();
    assert_oauth_error(app.client_credentials(&client.id, client.secret(), &[]).await, 401, "invalid_client").await;
    assert_eq!(app.client_credentials(&client.id, rotated.expose(), &[]).await.status(), 200);
}

async fn a_wrong_secret_is_refused_from_the_cache_and_after_a_reread(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    for _ in 0..3 {
        assert_oauth_error(app.client_credentials(&client.id, "tcs_wrong", &[]).await, 401, "invalid_client").await;
    }
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
}

async fn disabling_a_client_takes_effect_within_the_client_cache_ttl(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    let id = tessera::domain::client::ClientId::parse(&client.id).unwrap();
    assert!(app
        .storage
        .disable_client(&id, &app.revocation(tessera::domain::signals::Reason::ClientDisabled))
        .await
        .unwrap());
    app.expire_client_cache();
    let response = app.client_credentials(&client.id, client.secret(), &[]).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

async fn a_zero_ttl_reads_every_registration_from_the_database(database: &TestDatabase) {
    let app =
        TestApp::spawn(database, |settings| settings.database.client_cache_ttl = Window(std::time::Duration::ZERO))
            .await
            .unwrap();
    let client = app.register_client(ClientSpec::service()).await;
    assert_eq!(app.client_credentials(&client.id, client.secret(), &[]).await.status(), 200);
    let id = ClientId::parse(&client.id).unwrap();
    assert!(app
        .storage
        .disable_client(&id, &app.revocation(tessera::domain::signals::Reason::ClientDisabled))
        .await
        .unwrap());
    assert_oauth_error(app.client_credentials(&client.id, client.secret(), &[]).await, 401, "invalid_client").await;
    app.stop().await;
}

crate::backend_tests!(
    a_disabled_client_keeps_its_cached_registration_until_the_ttl_ends,
    a_rotated_secret_works_at_once_and_the_old_one_ends_with_the_ttl,
    a_wrong_secret_is_refused_from_the_cache_and_after_a_reread,
    disabling_a_client_takes_effect_within_the_client_cache_ttl,
);

mod zero_ttl {
    use super::*;
    crate::database_tests!(a_zero_ttl_reads_every_registration_from_the_database);
}
