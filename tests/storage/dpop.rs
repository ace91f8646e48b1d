//! `DpopProofStore`: a DPoP proof is accepted once (RFC 9449 §11.1), however many
//! presentations race, and its record goes when it expires.

use crate::helpers::{race, t, TestStorage, RACERS};
use tessera::domain::secret::SecretDigest;
use tessera::storage::EXPIRED_PROOFS_TAKEN_PER_RECORD;

async fn a_proof_is_recorded_once(db: &TestStorage) {
    let proof = SecretDigest::of("jkt jti-1");
    assert!(db.record_dpop_proof(&proof, t(60), t(0)).await.unwrap());
    assert!(!db.record_dpop_proof(&proof, t(60), t(0)).await.unwrap(), "a replay");
    assert!(!db.record_dpop_proof(&proof, t(120), t(0)).await.unwrap(), "a replay, whatever its expiry");
    assert!(db.record_dpop_proof(&SecretDigest::of("jkt jti-2"), t(60), t(0)).await.unwrap());
}

async fn of_many_concurrent_presentations_one_is_recorded(db: &TestStorage) {
    let proof = SecretDigest::of("jkt raced");
    let outcomes = race((0..RACERS).map(|_| db.record_dpop_proof(&proof, t(60), t(0)))).await;
    let firsts = outcomes.iter().filter(|o| *o.as_ref().expect("no database error")).count();
    assert_eq!(firsts, 1, "exactly one presentation is the first");
}

async fn expired_proof_records_are_purged_in_batches(db: &TestStorage) {
    for i in 0..3 {
        db.record_dpop_proof(&SecretDigest::of(&format!("old {i}")), t(60), t(0)).await.unwrap();
    }
    let live = SecretDigest::of("live");
    db.record_dpop_proof(&live, t(600), t(0)).await.unwrap();
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 2);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 1);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 0);
    assert!(!db.record_dpop_proof(&live, t(600), t(0)).await.unwrap(), "the live record stays");
}

/// Counts the expired records by purging them: this store is the database's only one here.
async fn expired_left(db: &TestStorage, now: i64) -> u64 {
    db.purge_expired(t(now), 1_000).await.unwrap()
}

async fn each_record_takes_expired_records_with_it(db: &TestStorage) {
    for i in 0..5 {
        db.record_dpop_proof(&SecretDigest::of(&format!("old {i}")), t(60), t(0)).await.unwrap();
    }
    assert!(db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(100)).await.unwrap());
    let taken = EXPIRED_PROOFS_TAKEN_PER_RECORD as u64;
    assert_eq!(expired_left(db, 100).await, 5 - taken, "the record took {taken} expired ones");
    // A replay takes them too, and the live one stays.
    for i in 0..3 {
        db.record_dpop_proof(&SecretDigest::of(&format!("old again {i}")), t(60), t(0)).await.unwrap();
    }
    assert!(!db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(100)).await.unwrap(), "a replay");
    assert_eq!(expired_left(db, 100).await, 3 - taken);
    assert!(!db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(100)).await.unwrap(), "the live record stays");
}

/// A stranger's stream of proofs outruns no purge: under many concurrent records the
/// expired ones shrink, and every record still gets its answer.
async fn concurrent_records_shrink_the_expired_ones(db: &TestStorage) {
    let expired = 3 * RACERS as u64;
    for i in 0..expired {
        db.record_dpop_proof(&SecretDigest::of(&format!("old {i}")), t(60), t(0)).await.unwrap();
    }
    let outcomes =
        race((0..RACERS).map(|i| async move {
            db.record_dpop_proof(&SecretDigest::of(&format!("new {i}")), t(700), t(100)).await
        }))
        .await;
    assert!(outcomes.iter().all(|o| *o.as_ref().expect("no database error")), "every new proof is recorded");
    let left = expired_left(db, 100).await;
    assert!(left < expired, "{left} of {expired} expired records left");
}

crate::backend_tests!(
    each_record_takes_expired_records_with_it,
    concurrent_records_shrink_the_expired_ones,
    a_proof_is_recorded_once,
    of_many_concurrent_presentations_one_is_recorded,
    expired_proof_records_are_purged_in_batches,
);
