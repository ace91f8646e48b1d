//! `DpopProofStore`: a DPoP proof is accepted once (RFC 9449 §11.1), however many
//! presentations race, and its record goes when it expires.

use crate::helpers::{race, t, TestStorage, RACERS};
use tessera::domain::secret::SecretDigest;

async fn a_proof_is_recorded_once(db: &TestStorage) {
    let proof = SecretDigest::of("jkt jti-1");
    assert!(db.record_dpop_proof(&proof, t(60)).await.unwrap());
    assert!(!db.record_dpop_proof(&proof, t(60)).await.unwrap(), "a replay");
    assert!(!db.record_dpop_proof(&proof, t(120)).await.unwrap(), "a replay, whatever its expiry");
    assert!(db.record_dpop_proof(&SecretDigest::of("jkt jti-2"), t(60)).await.unwrap());
}

async fn of_many_concurrent_presentations_one_is_recorded(db: &TestStorage) {
    let proof = SecretDigest::of("jkt raced");
    let outcomes = race((0..RACERS).map(|_| db.record_dpop_proof(&proof, t(60)))).await;
    let firsts = outcomes.iter().filter(|o| *o.as_ref().expect("no database error")).count();
    assert_eq!(firsts, 1, "exactly one presentation is the first");
}

async fn expired_proof_records_are_purged_in_batches(db: &TestStorage) {
    for i in 0..3 {
        db.record_dpop_proof(&SecretDigest::of(&format!("old {i}")), t(60)).await.unwrap();
    }
    let live = SecretDigest::of("live");
    db.record_dpop_proof(&live, t(600)).await.unwrap();
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 2);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 1);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 0);
    assert!(!db.record_dpop_proof(&live, t(600)).await.unwrap(), "the live record stays");
}

crate::backend_tests!(
    a_proof_is_recorded_once,
    of_many_concurrent_presentations_one_is_recorded,
    expired_proof_records_are_purged_in_batches,
);
