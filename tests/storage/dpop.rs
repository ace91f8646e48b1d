//! `DpopProofStore`: a DPoP proof is accepted once (RFC 9449 §11.1), however many
//! presentations race, and its record goes when it expires.

use crate::helpers::{race, t, Backend, TestStorage, RACERS};
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

/// Counts the records expired at `now` by purging them: this store is the database's
/// only one here.
async fn expired_left(db: &TestStorage, now: i64) -> u64 {
    db.purge_expired(t(now), 1_000).await.unwrap()
}

/// How many expired records one new record takes: on SQLite, whose one writer housekeeping
/// waits for; PostgreSQL only inserts (see `DpopProofStore::record_dpop_proof`).
fn taken_per_record(db: &TestStorage) -> u64 {
    match db.backend {
        Backend::Sqlite => EXPIRED_PROOFS_TAKEN_PER_RECORD as u64,
        Backend::Postgres => 0,
    }
}

async fn each_record_takes_records_expired_before_the_cutoff(db: &TestStorage) {
    // Five expired at 60, two at 90; the cutoff (100 - a window of 20) is 80.
    for i in 0..5 {
        db.record_dpop_proof(&SecretDigest::of(&format!("old {i}")), t(60), t(0)).await.unwrap();
    }
    for i in 0..2 {
        db.record_dpop_proof(&SecretDigest::of(&format!("recent {i}")), t(90), t(0)).await.unwrap();
    }
    let taken = taken_per_record(db);
    assert!(db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(80)).await.unwrap());
    assert!(!db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(80)).await.unwrap(), "a replay");
    assert!(
        !db.record_dpop_proof(&SecretDigest::of("recent 0"), t(90), t(80)).await.unwrap(),
        "a record expired after the cutoff stays, and its proof is still a replay"
    );
    // The record and the two replays took up to `taken` each, oldest first, none after
    // the cutoff.
    assert_eq!(expired_left(db, 100).await, 5u64.saturating_sub(3 * taken) + 2);
    assert!(!db.record_dpop_proof(&SecretDigest::of("new"), t(700), t(80)).await.unwrap(), "the live record stays");
}

/// A stranger's stream of proofs outruns no purge: under many concurrent records the
/// expired ones shrink by what each record takes, and every record gets its answer.
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
    let taken = RACERS as u64 * taken_per_record(db);
    assert_eq!(expired_left(db, 100).await, expired - taken.min(expired));
}

crate::backend_tests!(
    each_record_takes_records_expired_before_the_cutoff,
    concurrent_records_shrink_the_expired_ones,
    a_proof_is_recorded_once,
    of_many_concurrent_presentations_one_is_recorded,
    expired_proof_records_are_purged_in_batches,
);
