//! Black box: the real Tessera server, in-process on 127.0.0.1, issues a
//! client_credentials token, and the verifier accepts it.

use crate::support::TestKey;
use chrono::Utc;
use figment::providers::{Format, Toml};
use figment::Figment;
use std::net::TcpListener;
use tessera::config::{self, DatabaseUrl, Issuer};
use tessera::domain::client::{AuthMethod, Client, ClientId, GrantType};
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::GeneratedSecret;
use tessera::startup::Application;
use tessera_verify::{Verifier, VerifyError};

const AUDIENCE: &str = "https://invoices.example.com";

#[tokio::test]
async fn a_client_credentials_token_from_tessera_verifies() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let scratch = tempfile::tempdir().unwrap();
    let figment =
        Figment::from(Toml::string(config::DEFAULT_TOML)).merge(Toml::file(format!("{root}/config/test.toml")));
    let mut settings = config::extract(figment).expect("test settings");
    let database = format!("sqlite://{}", scratch.path().join("tessera.db").display());
    settings.database_url = DatabaseUrl::parse(&database).unwrap();
    settings.keys.bootstrap_key_file = Some(format!("{root}/keys/test-signing-key.pem").into());
    settings.keys_dir = scratch.path().join("keys");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    settings.issuer = Issuer::parse(&address).unwrap();
    let app = Application::with_listener(settings.clone(), listener).await.expect("Tessera starts");
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());

    let storage = tessera::storage::connect(&settings.database_url, &settings.database).await.unwrap();
    let secret = GeneratedSecret::generate("tcs_");
    let client = Client {
        id: ClientId::generate(),
        name: "Invoice worker".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        secret_digest: Some(secret.digest()),
        grant_types: vec![GrantType::ClientCredentials],
        scopes: ScopeSet::parse("invoices:read invoices:write").unwrap(),
        audiences: vec![AUDIENCE.into()],
        served_audiences: vec![],
        may_introspect_any: false,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        is_first_party: false,
        always_issue_refresh_token: false,
        created_at: Utc::now(),
        disabled_at: None,
    };
    storage.insert_client(&client).await.unwrap();

    let response = reqwest::Client::new()
        .post(format!("{address}/token"))
        .basic_auth(client.id.as_str(), Some(secret.expose()))
        .form(&[("grant_type", "client_credentials"), ("scope", "invoices:read")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().expect("an access token");

    // The mock issuer of the other tests serves the test key exactly as Tessera does.
    let jwks: serde_json::Value = reqwest::get(format!("{address}/jwks.json")).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"], serde_json::json!([TestKey::tessera().jwk_json()]));

    let verifier = Verifier::builder(&address).audience(AUDIENCE).build().await.expect("discovery and JWKS");
    let claims = verifier.verify(token).await.expect("Tessera's token verifies");
    assert_eq!(claims.iss, address);
    assert_eq!(claims.sub, client.id.as_str());
    assert_eq!(claims.client_id, client.id.as_str());
    assert_eq!(claims.aud, [AUDIENCE]);
    assert!(claims.scope.contains("invoices:read"));
    assert!(!claims.scope.contains("invoices:write"), "only the requested scope");
    assert!(claims.exp > claims.iat);
    assert_eq!(verifier.key_ids().len(), 1);

    // The same token is refused by a service with another audience.
    let other = Verifier::builder(&address).audience("https://billing.example.com").build().await.unwrap();
    assert!(matches!(other.verify(token).await, Err(VerifyError::WrongAudience)));

    server.stop(true).await;
}
