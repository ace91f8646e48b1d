//! `SessionStore`, login throttling: a password check is reserved before it runs, and
//! failures plus checks in flight never pass the limit, however many arrive at once.

use crate::helpers::{race, t, TestStorage, RACERS};
use actix_web::web::Data;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tessera::domain::authorization::ThrottleSubject;
use tessera::login::throttle::{attempt, Attempted, Settle};
use tessera::login::LoginSettings;
use tokio::sync::Semaphore;

/// The failure window is ten minutes.
async fn reserve(db: &TestStorage, subject: &str, limit: i64, now: DateTime<Utc>) -> bool {
    db.reserve_attempt(subject, limit, now, now - chrono::Duration::minutes(10)).await.unwrap()
}

async fn reservations_stop_at_the_limit_and_a_release_gives_one_back(db: &TestStorage) {
    let subject = "account:alice";
    for _ in 0..3 {
        assert!(reserve(db, subject, 3, t(0)).await);
    }
    assert!(!reserve(db, subject, 3, t(0)).await);

    db.release_attempt(subject).await.unwrap();
    assert!(reserve(db, subject, 3, t(1)).await);
    assert!(!reserve(db, subject, 3, t(1)).await);
    assert!(!reserve(db, "account:nobody", 0, t(1)).await, "a limit of zero admits nothing");
}

async fn failures_count_against_the_limit(db: &TestStorage) {
    let subject = "account:alice";
    for expected in 1..=3 {
        assert!(reserve(db, subject, 3, t(expected)).await);
        assert_eq!(db.settle_failure(subject).await.unwrap(), expected);
    }
    assert!(!reserve(db, subject, 3, t(10)).await);
    assert_eq!(db.settle_failure("account:nobody").await.unwrap(), 0);
}

async fn after_a_lock_ends_one_attempt_at_a_time_goes_past_the_limit(db: &TestStorage) {
    let subject = "account:alice";
    for _ in 0..3 {
        assert!(reserve(db, subject, 3, t(0)).await);
        db.settle_failure(subject).await.unwrap();
    }
    db.lock(subject, t(60)).await.unwrap();
    assert!(!reserve(db, subject, 3, t(30)).await);

    assert!(reserve(db, subject, 3, t(61)).await);
    assert!(!reserve(db, subject, 3, t(61)).await, "one in flight already");
    assert_eq!(db.settle_failure(subject).await.unwrap(), 4);
}

async fn a_lock_is_never_shortened(db: &TestStorage) {
    let subject = "ip:203.0.113.7";
    assert!(reserve(db, subject, 3, t(0)).await);
    db.settle_failure(subject).await.unwrap();
    db.lock(subject, t(120)).await.unwrap();
    db.lock(subject, t(60)).await.unwrap();

    assert!(!reserve(db, subject, 3, t(90)).await);
    assert!(reserve(db, subject, 3, t(121)).await);
}

async fn clearing_resets_failures_and_lock_and_keeps_attempts_in_flight(db: &TestStorage) {
    let subject = "account:alice";
    for _ in 0..3 {
        assert!(reserve(db, subject, 3, t(0)).await);
    }
    assert_eq!(db.settle_failure(subject).await.unwrap(), 1); // two still in flight
    db.lock(subject, t(600)).await.unwrap();
    db.clear_throttle(subject).await.unwrap(); // settles one: one still in flight

    // No failure, no lock, one in flight: two more places.
    assert!(reserve(db, subject, 3, t(1)).await);
    assert!(reserve(db, subject, 3, t(1)).await);
    assert!(!reserve(db, subject, 3, t(1)).await);
}

async fn a_window_that_started_before_the_cutoff_restarts(db: &TestStorage) {
    let subject = "account:alice";
    for _ in 0..2 {
        assert!(reserve(db, subject, 2, t(0)).await);
        db.settle_failure(subject).await.unwrap();
    }
    assert!(!reserve(db, subject, 2, t(599)).await);

    // Ten minutes on, the window restarts empty (the crashed attempts' places with it).
    assert!(reserve(db, subject, 2, t(601)).await);
    assert!(reserve(db, subject, 2, t(601)).await);
    assert!(!reserve(db, subject, 2, t(601)).await);
}

async fn of_many_concurrent_attempts_only_the_limit_is_reserved(db: &TestStorage) {
    let reserved = race((0..RACERS).map(|_| reserve(db, "account:alice", 5, t(0)))).await;
    assert_eq!(reserved.iter().filter(|ok| **ok).count(), 5);
}

async fn concurrent_failures_are_all_counted(db: &TestStorage) {
    let subject = "ip:198.51.100.1";
    for _ in 0..RACERS {
        assert!(reserve(db, subject, 1000, t(0)).await);
    }
    let mut counts: Vec<i64> =
        race((0..RACERS).map(|_| db.settle_failure(subject))).await.into_iter().map(|count| count.unwrap()).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=RACERS as i64).collect::<Vec<_>>());
}

fn settings(max_failures: u32, attempts_in_flight: usize) -> LoginSettings {
    LoginSettings {
        max_failures,
        failure_window: chrono::Duration::minutes(10),
        lockout: chrono::Duration::seconds(30),
        max_lockout: chrono::Duration::minutes(15),
        trust_forwarded_headers: false,
        attempts_in_flight: Arc::new(Semaphore::new(attempts_in_flight)),
    }
}

/// An attempt whose check panics (or whose task is dropped) still gives its places back:
/// its reservation releases them from a task of its own.
async fn an_attempt_whose_check_panics_gives_its_places_back(db: &TestStorage) {
    let subjects = vec![ThrottleSubject::ClientIp("192.0.2.1".into()), ThrottleSubject::account("alice")];
    let check = |_| async {
        if true {
            panic!("the check went wrong");
        }
        (Settle::Release, ())
    };
    let panicked = attempt(Data::from(db.shared()), settings(1, 8), subjects, t(0), check).await;
    assert!(panicked.is_err(), "a panic is an error for the request, not a crash");
    // The account's one place comes back.
    for _ in 0..500 {
        if reserve(db, "account:alice", 1, t(1)).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the account's place was never given back");
}

/// Attempts in flight are bounded: past the bound one is refused before it reserves
/// anything, and the bound's places come back as attempts end. A client that hangs up no
/// longer ends its attempt's work, so only this bounds what resets can pile up.
async fn attempts_beyond_the_bound_are_busy_and_reserve_nothing(db: &TestStorage) {
    let shared = settings(5, 2);
    let storage: Data<dyn tessera::storage::Storage> = Data::from(db.shared());
    let subject = |n: usize| vec![ThrottleSubject::account(&format!("user{n}"))];
    let (release, held) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    for n in 0..2 {
        let mut held = held.clone();
        let check = move |_| async move {
            let _ = held.wait_for(|released| *released).await;
            (Settle::Release, n)
        };
        running.push(tokio::spawn(attempt(storage.clone(), shared.clone(), subject(n), t(0), check)));
    }
    // Both hold their places (a limit of one is then full): the bound is taken.
    for n in 0..2 {
        let key = format!("account:user{n}");
        let mut tries = 0;
        while reserve(db, &key, 1, t(0)).await {
            db.release_attempt(&key).await.unwrap();
            tries += 1;
            assert!(tries < 500, "attempt {n} never reserved its place");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let refused = attempt(storage.clone(), shared.clone(), subject(2), t(0), |_| async { (Settle::Release, 2) });
    assert!(matches!(refused.await.unwrap(), Attempted::Busy), "the third waits, then is refused while two run");
    assert!(reserve(db, "account:user2", 1, t(0)).await, "and reserved nothing");
    db.release_attempt("account:user2").await.unwrap();
    // One that waits gets its turn as soon as a place is free.
    let fourth = |_| async { (Settle::Release, 4) };
    let waiting = tokio::spawn(attempt(storage.clone(), shared.clone(), subject(4), t(0), fourth));
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.send(true).unwrap();
    assert!(matches!(waiting.await.unwrap().unwrap(), Attempted::Checked(4)), "admitted when a place came back");
    for handle in running {
        assert!(matches!(handle.await.unwrap().unwrap(), Attempted::Checked(_)));
    }
    let admitted = attempt(storage, shared, subject(3), t(0), |_| async { (Settle::Release, 3) });
    assert!(matches!(admitted.await.unwrap(), Attempted::Checked(3)), "the bound's places came back");
}

crate::backend_tests!(
    reservations_stop_at_the_limit_and_a_release_gives_one_back,
    failures_count_against_the_limit,
    after_a_lock_ends_one_attempt_at_a_time_goes_past_the_limit,
    a_lock_is_never_shortened,
    clearing_resets_failures_and_lock_and_keeps_attempts_in_flight,
    a_window_that_started_before_the_cutoff_restarts,
    of_many_concurrent_attempts_only_the_limit_is_reserved,
    concurrent_failures_are_all_counted,
    an_attempt_whose_check_panics_gives_its_places_back,
    attempts_beyond_the_bound_are_busy_and_reserve_nothing,
);
