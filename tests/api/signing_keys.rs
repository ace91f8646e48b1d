//! Signing keys live in the database, encrypted; they survive restarts and refuse to load
//! without the key-encryption key they were sealed with.

use crate::helpers::clients::ClientSpec;
use crate::helpers::{TestApp, TestDatabase};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};

const OTHER_KEK: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn key_material_survives_a_restart(database: &TestDatabase) {
    let first = TestApp::spawn(database, |_| {}).await.unwrap();
    let client = first.register_client(ClientSpec::service()).await;
    let body: serde_json::Value =
        first.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    first.stop().await;

    // No bootstrap file this time: the key must come from the database.
    let second = TestApp::spawn(database, |s| s.keys.bootstrap_key_file = None).await.unwrap();
    assert_eq!(second.kid, first.kid);
    let jwks = second.jwks().await;
    assert_eq!(jwks.keys.len(), 1, "a restart must not add keys");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert!(jwks.find(header.kid.as_deref().unwrap()).is_some(), "tokens from before the restart still verify");
    second.stop().await;
}

async fn a_generated_key_and_kek_file_are_reused_and_required(database: &TestDatabase) {
    let keys_dir = database.scratch_dir().join("generated-keys");
    let generated = |s: &mut tessera::config::Settings| {
        s.keys.bootstrap_key_file = None;
        s.key_encryption_key = None;
        s.keys_dir = keys_dir.clone();
    };
    let first = TestApp::spawn(database, generated).await.unwrap();
    let kek_file = keys_dir.join("kek");
    assert!(kek_file.is_file(), "a KEK file is generated on first start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let jwks = first.jwks().await;
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(first.kid.as_str()));
    first.stop().await;

    let again = TestApp::spawn(database, generated).await.unwrap();
    assert_eq!(again.kid, first.kid, "the generated key is loaded, not generated again");
    again.stop().await;

    // The database has keys; without the KEK that sealed them the server must not start.
    let empty_dir = database.scratch_dir().join("no-keys-here");
    let error = TestApp::spawn(database, |s| {
        generated(s);
        s.keys_dir = empty_dir.clone();
    })
    .await
    .err()
    .expect("startup without the KEK must fail");
    let message = format!("{error:#}");
    assert!(message.contains("TESSERA_KEY_ENCRYPTION_KEY"), "{message}");
    assert!(!empty_dir.join("kek").exists(), "no new KEK may be generated for a database that has keys");

    let error = TestApp::spawn(database, |s| {
        generated(s);
        s.key_encryption_key = Some(tessera::config::Secret::new(OTHER_KEK.into()));
    })
    .await
    .err()
    .expect("startup with the wrong KEK must fail");
    let message = format!("{error:#}");
    assert!(message.contains("cannot be decrypted") && message.contains(&first.kid), "{message}");
}

async fn private_keys_are_stored_encrypted(database: &TestDatabase) {
    let app = TestApp::spawn(database, |_| {}).await.unwrap();
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem")).unwrap();
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap().to_pkcs8_der().unwrap();
    let stored = app.storage.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    let sealed = &stored[0].encrypted_private_key;
    let plaintext = der.as_bytes();
    assert!(sealed.len() >= plaintext.len(), "sealed key is the DER plus nonce and tag");
    assert!(
        !sealed.windows(32).any(|w| plaintext.windows(32).any(|p| p == w)),
        "no run of the private key is stored in clear"
    );
    assert_eq!(stored[0].public_jwk["kid"], app.kid.as_str());
    app.stop().await;
}

crate::database_tests!(
    key_material_survives_a_restart,
    a_generated_key_and_kek_file_are_reused_and_required,
    private_keys_are_stored_encrypted
);
