//! `ClientRequestStore`: pushed authorization requests (RFC 9126), bounded per client and in
//! total and claimed once, only by their client and before they expire; client assertion
//! `jti`s (RFC 7523 §3), recorded once until they expire.

use crate::helpers::{assert_same, new_pending, race, t, TestStorage, RACERS};
use tessera::domain::authorization::PendingAuthorization;
use tessera::domain::secret::SecretDigest;
use tessera::storage::client_requests::{BoundRefused, RequestLimits};

const LIMITS: RequestLimits = RequestLimits { max_per_client: 3, max_total: 5 };

fn request_id() -> SecretDigest {
    SecretDigest::of(&uuid::Uuid::new_v4().to_string())
}

async fn a_pushed_request_is_claimed_once_by_its_client_before_it_expires(db: &TestStorage) {
    let client = db.a_client().await;
    let other = db.a_client().await;
    // A pushed request has no CSRF token yet: the login form it leads to gets one.
    let pending =
        PendingAuthorization { csrf_digest: SecretDigest::from_stored(String::new()), ..new_pending(&client, t(60)) };
    let id = request_id();
    assert_eq!(db.insert_pushed_request(&id, &pending, LIMITS, None, t(0)).await.unwrap(), Ok(()));
    assert!(db.claim_pushed_request(&id, &other.id, t(1)).await.unwrap().is_none(), "another client's");
    assert!(db.claim_pushed_request(&id, &client.id, t(60)).await.unwrap().is_none(), "expired");
    assert!(db.claim_pushed_request(&request_id(), &client.id, t(1)).await.unwrap().is_none());
    let claimed = db.claim_pushed_request(&id, &client.id, t(59)).await.unwrap().expect("the stored request");
    assert_same(&claimed, &pending);
    assert!(db.claim_pushed_request(&id, &client.id, t(2)).await.unwrap().is_none(), "used once");
}

async fn pushed_requests_are_bounded_per_client_and_in_total(db: &TestStorage) {
    let (a, b) = (db.a_client().await, db.a_client().await);
    for _ in 0..3 {
        assert_eq!(
            db.insert_pushed_request(&request_id(), &new_pending(&a, t(60)), LIMITS, None, t(0)).await.unwrap(),
            Ok(())
        );
    }
    let refused = db.insert_pushed_request(&request_id(), &new_pending(&a, t(60)), LIMITS, None, t(0)).await.unwrap();
    assert_eq!(refused, Err(BoundRefused::ClientLimit));
    for _ in 0..2 {
        assert_eq!(
            db.insert_pushed_request(&request_id(), &new_pending(&b, t(60)), LIMITS, None, t(0)).await.unwrap(),
            Ok(())
        );
    }
    let refused = db.insert_pushed_request(&request_id(), &new_pending(&b, t(60)), LIMITS, None, t(0)).await.unwrap();
    assert_eq!(refused, Err(BoundRefused::TotalLimit));
    // Expired requests count no more, and housekeeping purges them.
    assert_eq!(
        db.insert_pushed_request(&request_id(), &new_pending(&a, t(120)), LIMITS, None, t(60)).await.unwrap(),
        Ok(())
    );
    assert_eq!(db.purge_client_requests(t(61), 100).await.unwrap(), 5);
}

async fn concurrent_pushes_of_one_client_never_pass_its_bound(db: &TestStorage) {
    let client = db.a_client().await;
    let limits = RequestLimits { max_per_client: 3, max_total: 1000 };
    let requests: Vec<_> = (0..RACERS).map(|_| (request_id(), new_pending(&client, t(60)))).collect();
    let pushes =
        race(requests.iter().map(|(id, pending)| db.insert_pushed_request(id, pending, limits, None, t(0)))).await;
    let stored = pushes.into_iter().map(|push| push.unwrap()).filter(Result::is_ok).count();
    assert_eq!(stored, 3);
}

async fn of_many_concurrent_claims_of_a_pushed_request_one_wins(db: &TestStorage) {
    let client = db.a_client().await;
    let id = request_id();
    db.insert_pushed_request(&id, &new_pending(&client, t(60)), LIMITS, None, t(0)).await.unwrap().unwrap();
    let claims = race((0..RACERS).map(|_| db.claim_pushed_request(&id, &client.id, t(1)))).await;
    assert_eq!(claims.into_iter().map(|claim| claim.unwrap()).filter(Option::is_some).count(), 1);
}

async fn an_assertion_jti_is_recorded_once_until_it_expires(db: &TestStorage) {
    let jti = request_id();
    assert!(db.record_assertion_jti(&jti, t(60), t(0)).await.unwrap());
    assert!(!db.record_assertion_jti(&jti, t(60), t(1)).await.unwrap(), "a replay");
    assert!(!db.record_assertion_jti(&jti, t(120), t(59)).await.unwrap(), "a replay just before expiry");
    assert!(db.record_assertion_jti(&jti, t(120), t(60)).await.unwrap(), "expired, not yet purged: a new use");
    let jtis: Vec<SecretDigest> = (0..RACERS).map(|_| request_id()).collect();
    let racers = race(jtis.iter().map(|jti| db.record_assertion_jti(jti, t(60), t(0)))).await;
    assert!(racers.into_iter().all(|recorded| recorded.unwrap()), "different jtis do not collide");
    let same = request_id();
    let racers = race((0..RACERS).map(|_| db.record_assertion_jti(&same, t(60), t(0)))).await;
    assert_eq!(racers.into_iter().filter(|recorded| *recorded.as_ref().unwrap()).count(), 1);
    assert!(db.purge_client_requests(t(121), 1000).await.unwrap() as usize >= RACERS + 2);
}

crate::backend_tests!(
    a_pushed_request_is_claimed_once_by_its_client_before_it_expires,
    pushed_requests_are_bounded_per_client_and_in_total,
    concurrent_pushes_of_one_client_never_pass_its_bound,
    of_many_concurrent_claims_of_a_pushed_request_one_wins,
    an_assertion_jti_is_recorded_once_until_it_expires,
);
