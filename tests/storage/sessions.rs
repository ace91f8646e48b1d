//! `SessionStore`, SSO sessions: started only for the password just verified, found
//! within their absolute and idle lifetimes, touched, ended one by one or per user.

use crate::helpers::{assert_same, new_session, revoke, t, TestStorage};
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;

fn session_id() -> SecretDigest {
    SecretDigest::of(&uuid::Uuid::new_v4().to_string())
}

async fn a_session_starts_only_for_the_verified_password_of_an_enabled_user(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let session = new_session(&alice, t(3600));

    // The password changed while it was being checked: the hash verified is not stored.
    let (stale, fresh) = (session_id(), session_id());
    assert!(!db.insert_session(&stale, &session, "$argon2id$an-older-hash").await.unwrap());
    assert!(db.find_session(&stale, t(1), t(-1)).await.unwrap().is_none());

    assert!(db.insert_session(&fresh, &session, &alice.password_hash).await.unwrap());
    assert_same(&db.find_session(&fresh, t(1), t(-1)).await.unwrap().expect("started"), &session);

    // Disabled meanwhile.
    db.disable_user(&alice.id, &revoke(Reason::UserDisabled, t(2))).await.unwrap();
    let later = session_id();
    let another = new_session(&alice, t(3600));
    assert!(!db.insert_session(&later, &another, &alice.password_hash).await.unwrap());
    assert!(db.find_session(&later, t(3), t(-1)).await.unwrap().is_none());
}

async fn a_session_is_found_within_its_absolute_and_idle_lifetimes(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    // Started and last seen at t(0), ending at t(3600).
    let (id, _) = db.a_session(&alice).await;

    assert!(db.find_session(&id, t(3599), t(-1)).await.unwrap().is_some());
    assert!(db.find_session(&id, t(3600), t(-1)).await.unwrap().is_none(), "absolute expiry");
    assert!(db.find_session(&id, t(10), t(0)).await.unwrap().is_none(), "last seen at the idle cutoff");
    assert!(db.find_session(&session_id(), t(10), t(-1)).await.unwrap().is_none());
}

async fn touching_a_session_keeps_it_from_going_idle(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let (id, _) = db.a_session(&alice).await;
    assert!(db.find_session(&id, t(100), t(50)).await.unwrap().is_none());

    db.touch_session(&id, t(60)).await.unwrap();
    let found = db.find_session(&id, t(100), t(50)).await.unwrap().expect("seen after the cutoff");
    assert_eq!(found.last_seen_at, t(60));
}

async fn a_session_is_deleted_once(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let (id, session) = db.a_session(&alice).await;

    assert_same(&db.end_session(&id, &revoke(Reason::Logout, t(1))).await.unwrap().expect("it existed"), &session);
    assert!(db.end_session(&id, &revoke(Reason::Logout, t(1))).await.unwrap().is_none());
    assert!(db.find_session(&id, t(1), t(-1)).await.unwrap().is_none());
}

async fn a_users_sessions_end_together_and_no_one_elses(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let (first, _) = db.a_session(&alice).await;
    let (second, _) = db.a_session(&alice).await;
    let (bobs, _) = db.a_session(&bob).await;

    db.end_user_access(&alice.id, &revoke(Reason::RevokedByOperator, t(1))).await.unwrap();
    assert!(db.find_session(&first, t(1), t(-1)).await.unwrap().is_none());
    assert!(db.find_session(&second, t(1), t(-1)).await.unwrap().is_none());
    assert!(db.find_session(&bobs, t(1), t(-1)).await.unwrap().is_some());
}

crate::backend_tests!(
    a_session_starts_only_for_the_verified_password_of_an_enabled_user,
    a_session_is_found_within_its_absolute_and_idle_lifetimes,
    touching_a_session_keeps_it_from_going_idle,
    a_session_is_deleted_once,
    a_users_sessions_end_together_and_no_one_elses,
);
