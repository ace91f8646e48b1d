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

async fn clients_are_paged_by_age_then_id(db: &TestStorage) {
    // Two created at the same instant: the id breaks the tie, so no page repeats or skips one.
    let mut clients =
        vec![new_client("a", t(0)), new_client("b", t(10)), new_client("c", t(10)), new_client("d", t(20))];
    for client in &clients {
        db.insert_client(client).await.unwrap();
    }
    clients.sort_by(|x, y| (x.created_at, x.id.as_str()).cmp(&(y.created_at, y.id.as_str())));
    let expected: Vec<&str> = clients.iter().map(|c| c.id.as_str()).collect();

    let mut seen = vec![];
    let mut after = None;
    loop {
        let page = db.list_clients_page(after.as_ref(), 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.iter().map(|c| c.id.as_str().to_owned()));
    }
    assert_eq!(seen, expected);
    let listed: Vec<String> = db.list_clients().await.unwrap().into_iter().map(|c| c.id.as_str().to_owned()).collect();
    assert_eq!(listed, expected, "the same order as the full list");
    assert!(db.list_clients_page(Some(&ClientId::generate()), 3).await.unwrap().is_empty(), "an unknown anchor");
}

async fn a_change_keeps_the_secret_and_the_disabled_mark(db: &TestStorage) {
    let client = new_client("app", t(0));
    db.insert_client(&client).await.unwrap();
    // A change computed from a read taken before the rotation and the disable.
    let mut changed = client.clone();
    let rotated = SecretDigest::of("the new secret");
    assert!(db.set_client_secret(&client.id, &rotated, t(5)).await.unwrap());
    assert!(db.disable_client(&client.id, &revoke(Reason::ClientDisabled, t(6))).await.unwrap());
    changed.name = "renamed".into();
    changed.redirect_uris = vec!["https://app.example.com/new".into()];
    changed.require_pushed_authorization_requests = true;

    let revision = db.client_revision(&client.id).await.unwrap().unwrap();
    assert!(db.update_client(&changed, revision, t(7)).await.unwrap());
    assert!(!db.update_client(&changed, revision, t(7)).await.unwrap(), "a change from a stale read is refused");
    assert_eq!(db.client_revision(&client.id).await.unwrap(), Some(revision + 1));
    let found = db.find_client(&client.id).await.unwrap().unwrap();
    assert_eq!(found.name, "renamed");
    assert_eq!(found.redirect_uris, ["https://app.example.com/new"]);
    assert!(found.require_pushed_authorization_requests);
    assert_eq!(found.secret_digest.unwrap().as_str(), rotated.as_str(), "the rotation stays");
    assert_eq!(found.disabled_at, Some(t(6)), "the disable stays");
    let unknown = tessera::domain::client::Client { id: ClientId::generate(), ..changed };
    assert!(!db.update_client(&unknown, 0, t(8)).await.unwrap());
}

crate::backend_tests!(
    clients_are_paged_by_age_then_id,
    a_change_keeps_the_secret_and_the_disabled_mark,
    a_client_reads_back_as_it_was_stored,
    clients_are_listed_oldest_first,
    a_taken_client_id_is_a_conflict,
    a_client_is_disabled_once,
    a_client_secret_is_replaced,
);
