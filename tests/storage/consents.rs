//! `SessionStore`, consents: one per user and client, replaced when given again.

use crate::helpers::{scope, t, TestStorage};

async fn a_consent_is_saved_and_replaced(db: &TestStorage) {
    let client = db.a_client().await;
    let other = db.a_client().await;
    let alice = db.a_user("alice").await;
    assert!(db.find_consent(&alice.id, &client.id).await.unwrap().is_none());

    db.save_consent(&alice.id, &client.id, &scope("openid api"), t(0)).await.unwrap();
    assert_eq!(db.find_consent(&alice.id, &client.id).await.unwrap(), Some(scope("api openid")));

    db.save_consent(&alice.id, &client.id, &scope("openid"), t(10)).await.unwrap();
    assert_eq!(db.find_consent(&alice.id, &client.id).await.unwrap(), Some(scope("openid")));
    assert!(db.find_consent(&alice.id, &other.id).await.unwrap().is_none());
}

crate::backend_tests!(a_consent_is_saved_and_replaced);
