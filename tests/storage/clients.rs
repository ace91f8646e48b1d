//! `ClientStore`: registrations, read back exactly, listed, disabled once, re-keyed.

use crate::helpers::{assert_same, new_client, revoke, t, TestStorage};
use tessera::domain::client::ClientId;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;
use tessera::storage::StorageError;

async fn a_client_reads_back_as_it_was_stored(db: &TestStorage) {
    let client = new_client("reader", t(0));
    db.insert_client(&client).await.unwrap();

    let found = db.find_client(&client.id).await.unwrap().expect("the stored client");
    assert_same(&found, &client);
    // `SecretDigest`'s `Debug` shows only a prefix.
    assert_eq!(found.secret_digest.unwrap().as_str(), client.secret_digest.unwrap().as_str());
    assert!(db.find_client(&ClientId::generate()).await.unwrap().is_none());
}

async fn clients_are_listed_oldest_first(db: &TestStorage) {
    let newer = new_client("newer", t(60));
    let older = new_client("older", t(0));
    db.insert_client(&newer).await.unwrap();
    db.insert_client(&older).await.unwrap();

    let listed: Vec<String> = db.list_clients().await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(listed, ["older", "newer"]);
}

async fn a_taken_client_id_is_a_conflict(db: &TestStorage) {
    let client = new_client("first", t(0));
    db.insert_client(&client).await.unwrap();
    let imposter = new_client("second", t(1));
    let imposter = tessera::domain::client::Client { id: client.id.clone(), ..imposter };

    let outcome = db.insert_client(&imposter).await;
    assert!(matches!(outcome, Err(StorageError::Conflict("client id"))), "{outcome:?}");
    assert_eq!(db.find_client(&client.id).await.unwrap().unwrap().name, "first");
}

async fn a_client_is_disabled_once(db: &TestStorage) {
    let client = new_client("app", t(0));
    db.insert_client(&client).await.unwrap();

    assert!(db.disable_client(&client.id, &revoke(Reason::ClientDisabled, t(5))).await.unwrap());
    assert_eq!(db.find_client(&client.id).await.unwrap().unwrap().disabled_at, Some(t(5)));
    // Already disabled: no change, and the first time stays.
    assert!(!db.disable_client(&client.id, &revoke(Reason::ClientDisabled, t(9))).await.unwrap());
    assert_eq!(db.find_client(&client.id).await.unwrap().unwrap().disabled_at, Some(t(5)));
    assert!(!db.disable_client(&ClientId::generate(), &revoke(Reason::ClientDisabled, t(9))).await.unwrap());
}

async fn a_client_secret_is_replaced(db: &TestStorage) {
    let client = new_client("app", t(0));
    db.insert_client(&client).await.unwrap();
    let rotated = SecretDigest::of("the new secret");

    assert!(db.set_client_secret(&client.id, &rotated, t(5)).await.unwrap());
    let found = db.find_client(&client.id).await.unwrap().unwrap();
    assert_eq!(found.secret_digest.unwrap().as_str(), rotated.as_str());
    assert!(!db.set_client_secret(&ClientId::generate(), &rotated, t(5)).await.unwrap());
}

crate::backend_tests!(
    a_client_reads_back_as_it_was_stored,
    clients_are_listed_oldest_first,
    a_taken_client_id_is_a_conflict,
    a_client_is_disabled_once,
    a_client_secret_is_replaced,
);
