//! `UserStore`: accounts, found by name and id, listed, disabled once, re-hashed.

use crate::helpers::{assert_same, new_user, revoke, t, TestStorage};
use tessera::domain::signals::Reason;
use tessera::domain::user::{User, UserId, Username};
use tessera::storage::StorageError;

fn username(raw: &str) -> Username {
    Username::parse(raw).unwrap()
}

async fn a_user_reads_back_by_name_and_by_id(db: &TestStorage) {
    let user = new_user("alice");
    db.insert_user(&user).await.unwrap();

    assert_same(&db.find_user_by_username(&username("alice")).await.unwrap().expect("by name"), &user);
    assert_same(&db.find_user_by_id(&user.id).await.unwrap().expect("by id"), &user);
    assert!(db.find_user_by_username(&username("bob")).await.unwrap().is_none());
    assert!(db.find_user_by_id(&UserId::parse("no-such-id").unwrap()).await.unwrap().is_none());
}

async fn users_are_listed_by_name(db: &TestStorage) {
    for name in ["carol", "alice", "bob"] {
        db.insert_user(&new_user(name)).await.unwrap();
    }
    let listed: Vec<String> = db.list_users().await.unwrap().into_iter().map(|u| u.username.to_string()).collect();
    assert_eq!(listed, ["alice", "bob", "carol"]);
}

async fn users_are_paged_by_name(db: &TestStorage) {
    for name in ["dave", "carol", "alice", "bob"] {
        db.insert_user(&new_user(name)).await.unwrap();
    }
    let names = |users: Vec<User>| users.into_iter().map(|u| u.username.to_string()).collect::<Vec<_>>();
    assert_eq!(names(db.list_users_page(None, 3).await.unwrap()), ["alice", "bob", "carol"]);
    let after = Username::parse("carol").unwrap();
    assert_eq!(names(db.list_users_page(Some(&after), 3).await.unwrap()), ["dave"]);
    let after = Username::parse("dave").unwrap();
    assert!(db.list_users_page(Some(&after), 3).await.unwrap().is_empty());
}

async fn a_profile_is_changed(db: &TestStorage) {
    let user = new_user("alice");
    db.insert_user(&user).await.unwrap();
    assert!(db.update_user_profile(&user.id, Some("alice@example.org"), None, false, 0, t(5)).await.unwrap());
    assert!(!db.update_user_profile(&user.id, Some("stale@example.org"), None, false, 0, t(5)).await.unwrap(), "stale");
    assert_eq!(db.user_revision(&user.id).await.unwrap(), Some(1));
    let found = db.find_user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!((found.email.as_deref(), found.name.as_deref()), (Some("alice@example.org"), None));
    assert_eq!(found.updated_at, t(5));
    assert_eq!(found.password_hash, user.password_hash, "the password stays");
    assert!(!db.update_user_profile(&UserId::generate(), None, None, false, 0, t(5)).await.unwrap());
}

async fn a_taken_username_is_a_conflict(db: &TestStorage) {
    let alice = new_user("alice");
    db.insert_user(&alice).await.unwrap();
    // Usernames are case-folded: `Alice` is the same account.
    let again = User { name: Some("Another Alice".into()), ..new_user("Alice") };

    let outcome = db.insert_user(&again).await;
    assert!(matches!(outcome, Err(StorageError::Conflict("username"))), "{outcome:?}");
    assert_eq!(db.list_users().await.unwrap().len(), 1);
    assert!(db.find_user_by_id(&again.id).await.unwrap().is_none());
}

async fn a_user_is_disabled_once(db: &TestStorage) {
    let alice = db.a_user("alice").await;

    assert!(db.disable_user(&alice.id, &revoke(Reason::UserDisabled, t(5))).await.unwrap());
    let found = db.find_user_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!((found.disabled_at, found.updated_at), (Some(t(5)), t(5)));
    assert!(!db.disable_user(&alice.id, &revoke(Reason::UserDisabled, t(9))).await.unwrap());
    assert_eq!(db.find_user_by_id(&alice.id).await.unwrap().unwrap().disabled_at, Some(t(5)));
    assert!(!db.disable_user(&UserId::generate(), &revoke(Reason::UserDisabled, t(9))).await.unwrap());
}

async fn a_password_hash_is_replaced(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;

    assert!(db.set_password_hash(&alice.id, "$argon2id$new", &revoke(Reason::PasswordChanged, t(5))).await.unwrap());
    let found = db.find_user_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!((found.password_hash.as_str(), found.updated_at), ("$argon2id$new", t(5)));
    assert_eq!(db.find_user_by_id(&bob.id).await.unwrap().unwrap().password_hash, bob.password_hash);
    assert!(!db
        .set_password_hash(&UserId::generate(), "$argon2id$new", &revoke(Reason::PasswordChanged, t(5)))
        .await
        .unwrap());
}

crate::backend_tests!(
    users_are_paged_by_name,
    a_profile_is_changed,
    a_user_reads_back_by_name_and_by_id,
    users_are_listed_by_name,
    a_taken_username_is_a_conflict,
    a_user_is_disabled_once,
    a_password_hash_is_replaced,
);
