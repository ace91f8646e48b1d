//! `SessionStore`, pending authorizations: one per session and client, claimed once,
//! only by their session and before they expire.

use crate::helpers::{assert_same, new_pending, race, sid, t, TestStorage, RACERS};
use tessera::domain::secret::SecretDigest;

fn request_id() -> SecretDigest {
    SecretDigest::of(&uuid::Uuid::new_v4().to_string())
}

async fn a_pending_request_is_claimed_once(db: &TestStorage) {
    let client = db.a_client().await;
    let pending = new_pending(&client, t(600));
    let id = request_id();
    db.insert_pending(&id, &sid("sid-1"), &pending).await.unwrap();

    let claimed = db.claim_pending(&id, &sid("sid-1"), t(10)).await.unwrap().expect("the stored request");
    assert_same(&claimed, &pending);
    assert_eq!(claimed.csrf_digest.as_str(), pending.csrf_digest.as_str());
    assert!(db.claim_pending(&id, &sid("sid-1"), t(11)).await.unwrap().is_none(), "a form submitted twice");
}

async fn only_its_session_claims_a_request_and_only_before_it_expires(db: &TestStorage) {
    let client = db.a_client().await;
    let id = request_id();
    db.insert_pending(&id, &sid("sid-1"), &new_pending(&client, t(600))).await.unwrap();

    assert!(db.claim_pending(&id, &sid("sid-2"), t(10)).await.unwrap().is_none());
    assert!(db.claim_pending(&id, &sid("sid-1"), t(600)).await.unwrap().is_none(), "expired");
    assert!(db.claim_pending(&request_id(), &sid("sid-1"), t(10)).await.unwrap().is_none());
    // None of those took it.
    assert!(db.claim_pending(&id, &sid("sid-1"), t(599)).await.unwrap().is_some());
}

async fn a_newer_request_of_the_same_session_and_client_replaces_the_older(db: &TestStorage) {
    let client = db.a_client().await;
    let other = db.a_client().await;
    let (older, newer, others) = (request_id(), request_id(), request_id());
    db.insert_pending(&older, &sid("sid-1"), &new_pending(&client, t(600))).await.unwrap();
    db.insert_pending(&others, &sid("sid-1"), &new_pending(&other, t(600))).await.unwrap();
    let replacement = new_pending(&client, t(900));
    db.insert_pending(&newer, &sid("sid-1"), &replacement).await.unwrap();

    assert!(db.claim_pending(&older, &sid("sid-1"), t(10)).await.unwrap().is_none());
    assert_same(&db.claim_pending(&newer, &sid("sid-1"), t(10)).await.unwrap().expect("the newer"), &replacement);
    assert!(db.claim_pending(&others, &sid("sid-1"), t(10)).await.unwrap().is_some(), "another client's stays");
}

async fn of_many_concurrent_claims_of_a_request_one_wins(db: &TestStorage) {
    let client = db.a_client().await;
    let id = request_id();
    db.insert_pending(&id, &sid("sid-1"), &new_pending(&client, t(600))).await.unwrap();

    let sid = sid("sid-1");
    let claims = race((0..RACERS).map(|_| db.claim_pending(&id, &sid, t(10)))).await;
    let won = claims.into_iter().map(|claim| claim.unwrap()).filter(Option::is_some).count();
    assert_eq!(won, 1);
}

crate::backend_tests!(
    a_pending_request_is_claimed_once,
    only_its_session_claims_a_request_and_only_before_it_expires,
    a_newer_request_of_the_same_session_and_client_replaces_the_older,
    of_many_concurrent_claims_of_a_request_one_wins,
);
