//! `KeyStore`: signing keys, at most one `current` and one `next` however many replicas
//! race, promoted in one transaction, deleted only from the expected state.

use crate::helpers::{assert_same, race, t, TestStorage, RACERS};
use chrono::{DateTime, Utc};
use tessera::storage::{KeyState, StoredKey};

fn key(kid: &str, state: KeyState, created_at: DateTime<Utc>) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        algorithm: "RS256".to_owned(),
        state,
        encrypted_private_key: format!("sealed private key of {kid}").into_bytes(),
        public_jwk: serde_json::json!({ "kty": "RSA", "kid": kid, "n": "0vx7", "e": "AQAB" }),
        created_at,
        activated_at: (state == KeyState::Current).then_some(created_at),
        retired_at: None,
    }
}

async fn states(db: &TestStorage) -> Vec<(String, KeyState)> {
    db.list_signing_keys().await.unwrap().into_iter().map(|k| (k.kid, k.state)).collect()
}

async fn keys_read_back_oldest_first(db: &TestStorage) {
    let next = key("k2", KeyState::Next, t(60));
    let current = key("k1", KeyState::Current, t(0));
    assert!(db.insert_signing_key(&next).await.unwrap());
    assert!(db.insert_signing_key(&current).await.unwrap());

    let listed = db.list_signing_keys().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_same(&listed[0], &current);
    assert_same(&listed[1], &next);
}

async fn a_second_current_or_next_key_or_a_taken_kid_changes_nothing(db: &TestStorage) {
    assert!(db.insert_signing_key(&key("k1", KeyState::Current, t(0))).await.unwrap());
    assert!(db.insert_signing_key(&key("k2", KeyState::Next, t(1))).await.unwrap());

    assert!(!db.insert_signing_key(&key("k3", KeyState::Current, t(2))).await.unwrap());
    assert!(!db.insert_signing_key(&key("k4", KeyState::Next, t(3))).await.unwrap());
    assert!(!db.insert_signing_key(&key("k1", KeyState::Retired, t(4))).await.unwrap());
    // Retired keys are not limited.
    assert!(db.insert_signing_key(&key("k5", KeyState::Retired, t(5))).await.unwrap());
    assert!(db.insert_signing_key(&key("k6", KeyState::Retired, t(6))).await.unwrap());

    assert_eq!(
        states(db).await,
        [
            ("k1".into(), KeyState::Current),
            ("k2".into(), KeyState::Next),
            ("k5".into(), KeyState::Retired),
            ("k6".into(), KeyState::Retired)
        ]
    );
}

async fn promotion_retires_the_current_key_and_activates_the_next(db: &TestStorage) {
    db.insert_signing_key(&key("k1", KeyState::Current, t(0))).await.unwrap();
    db.insert_signing_key(&key("k2", KeyState::Next, t(1))).await.unwrap();

    assert!(db.promote_next_key("k1", "k2", t(100)).await.unwrap());
    let keys = db.list_signing_keys().await.unwrap();
    assert_eq!((keys[0].state, keys[0].retired_at), (KeyState::Retired, Some(t(100))));
    assert_eq!((keys[1].state, keys[1].activated_at), (KeyState::Current, Some(t(100))));
}

async fn a_stale_promotion_changes_nothing(db: &TestStorage) {
    db.insert_signing_key(&key("k1", KeyState::Current, t(0))).await.unwrap();
    db.insert_signing_key(&key("k2", KeyState::Next, t(1))).await.unwrap();
    let before = states(db).await;

    // The current key is retired by the first statement, then the next key is not there:
    // the transaction rolls the retirement back.
    assert!(!db.promote_next_key("k1", "unknown", t(100)).await.unwrap());
    assert!(!db.promote_next_key("k1", "k1", t(100)).await.unwrap());
    assert_eq!(states(db).await, before);
    assert!(db.list_signing_keys().await.unwrap().iter().all(|k| k.retired_at.is_none()));

    // Another replica promoted already.
    assert!(db.promote_next_key("k1", "k2", t(100)).await.unwrap());
    assert!(!db.promote_next_key("k1", "k2", t(200)).await.unwrap());
    let keys = db.list_signing_keys().await.unwrap();
    assert_eq!((keys[0].retired_at, keys[1].activated_at), (Some(t(100)), Some(t(100))));
}

async fn a_key_is_deleted_only_from_the_expected_state(db: &TestStorage) {
    db.insert_signing_key(&key("k1", KeyState::Current, t(0))).await.unwrap();
    db.insert_signing_key(&key("k0", KeyState::Retired, t(-1))).await.unwrap();

    assert!(!db.delete_signing_key("k1", KeyState::Retired).await.unwrap());
    assert!(!db.delete_signing_key("k0", KeyState::Next).await.unwrap());
    assert!(db.delete_signing_key("k0", KeyState::Retired).await.unwrap());
    assert!(!db.delete_signing_key("k0", KeyState::Retired).await.unwrap());
    assert_eq!(states(db).await, [("k1".into(), KeyState::Current)]);
}

async fn of_many_replicas_creating_the_first_key_one_wins(db: &TestStorage) {
    let keys: Vec<StoredKey> = (0..RACERS).map(|i| key(&format!("k{i}"), KeyState::Current, t(0))).collect();
    let inserted = race(keys.iter().map(|k| db.insert_signing_key(k))).await;

    let winners: Vec<&str> =
        keys.iter().zip(&inserted).filter(|(_, ok)| *ok.as_ref().unwrap()).map(|(k, _)| &*k.kid).collect();
    assert_eq!(winners.len(), 1, "{inserted:?}");
    assert_eq!(states(db).await, [(winners[0].to_owned(), KeyState::Current)]);
}

async fn of_many_replicas_promoting_the_next_key_one_wins(db: &TestStorage) {
    db.insert_signing_key(&key("k1", KeyState::Current, t(0))).await.unwrap();
    db.insert_signing_key(&key("k2", KeyState::Next, t(1))).await.unwrap();

    let promoted = race((0..RACERS).map(|_| db.promote_next_key("k1", "k2", t(100)))).await;
    assert_eq!(promoted.iter().filter(|p| *p.as_ref().unwrap()).count(), 1, "{promoted:?}");
    assert_eq!(states(db).await, [("k1".into(), KeyState::Retired), ("k2".into(), KeyState::Current)]);
}

crate::backend_tests!(
    keys_read_back_oldest_first,
    a_second_current_or_next_key_or_a_taken_kid_changes_nothing,
    promotion_retires_the_current_key_and_activates_the_next,
    a_stale_promotion_changes_nothing,
    a_key_is_deleted_only_from_the_expected_state,
    of_many_replicas_creating_the_first_key_one_wins,
    of_many_replicas_promoting_the_next_key_one_wins,
);
