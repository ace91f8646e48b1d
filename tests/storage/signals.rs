//! `SignalStore`: Shared Signals streams, the event outbox fanned out to them, polling with
//! acknowledgements, push leases, verification requests and the purge.

use crate::helpers::{new_client, race, t, TestStorage, RACERS};
use chrono::Duration;
use tessera::domain::client::{Client, ClientId};
use tessera::domain::signals::{
    Cause, Delivery, EventType, Initiator, Sealed, SecurityEvent, Stream, StreamStatus, Subject,
};
use tessera::storage::{PushOutcome, Verification};

const ISSUER: &str = "https://id.example";

async fn receiver(db: &TestStorage) -> Client {
    let client = new_client("receiver", t(-100));
    db.insert_client(&client).await.unwrap();
    client
}

fn stream(receiver: &ClientId, requested: Option<&[EventType]>, delivery: Delivery) -> Stream {
    Stream {
        id: tessera::domain::signals::new_id(),
        receiver: receiver.clone(),
        events_requested: requested.map(|types| types.iter().map(|t| t.uri().to_owned()).collect()),
        delivery,
        description: Some("a receiver".into()),
        status: StreamStatus::Enabled,
        status_reason: None,
        created_at: t(0),
        updated_at: t(0),
        last_activity_at: t(0),
        last_verification_at: None,
    }
}

fn push() -> Delivery {
    Delivery::Push {
        endpoint_url: "https://receiver.example/events".parse().unwrap(),
        authorization_header: Some(Sealed(vec![1, 2, 3])),
    }
}

/// A session-revoked event at `at` seconds, expiring five minutes later.
fn revoked(at: i64) -> SecurityEvent {
    Cause::new(ISSUER, t(at), Duration::minutes(5)).session_revoked(
        Subject::session(ISSUER, "u1", "s1"),
        Initiator::User,
        "logout",
    )
}

fn enabled(at: i64) -> SecurityEvent {
    Cause::new(ISSUER, t(at), Duration::minutes(5)).account_enabled(Subject::user(ISSUER, "u1"))
}

async fn owed(db: &TestStorage, stream: &Stream, at: i64) -> Vec<String> {
    let (sets, _) = db.poll_stream(&stream.id, &[], 100, t(at)).await.unwrap();
    sets.into_iter().map(|s| s.event.id).collect()
}

async fn a_stream_reads_back_and_is_listed_per_receiver(db: &TestStorage) {
    let receiver = receiver(db).await;
    let other = new_client("other", t(-50));
    db.insert_client(&other).await.unwrap();
    let polled = stream(&receiver.id, None, Delivery::Poll);
    let pushed = Stream {
        created_at: t(1),
        updated_at: t(2),
        last_activity_at: t(3),
        ..stream(&receiver.id, Some(&[EventType::AccountEnabled]), push())
    };
    let elsewhere = Stream { created_at: t(2), ..stream(&other.id, None, Delivery::Poll) };
    for s in [&polled, &pushed, &elsewhere] {
        assert!(db.insert_stream(s, 10, t(0)).await.unwrap());
    }
    let found = db.find_stream(&pushed.id).await.unwrap().expect("the stream");
    assert_eq!(format!("{found:?}"), format!("{pushed:?}"));
    assert_eq!(found.delivery, pushed.delivery, "the sealed header reads back");
    let mine: Vec<String> = db.list_streams(Some(&receiver.id)).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(mine, [polled.id.clone(), pushed.id.clone()]);
    assert_eq!(db.list_streams(None).await.unwrap().len(), 3);
    assert!(db.find_stream("no-such-stream").await.unwrap().is_none());

    let updated = Stream {
        events_requested: Some(vec![EventType::SessionRevoked.uri().to_owned()]),
        delivery: Delivery::Poll,
        description: None,
        updated_at: t(9),
        ..pushed.clone()
    };
    assert!(db.update_stream(&updated).await.unwrap());
    let found = db.find_stream(&pushed.id).await.unwrap().unwrap();
    assert_eq!(found.delivery, Delivery::Poll);
    assert_eq!(found.events_requested, updated.events_requested);
    assert_eq!((found.description, found.updated_at, found.last_activity_at), (None, t(9), t(9)));
    assert!(!db.update_stream(&Stream { id: "missing".into(), ..updated }).await.unwrap());
    assert!(db.delete_stream(&pushed.id).await.unwrap());
    assert!(!db.delete_stream(&pushed.id).await.unwrap());
}

async fn a_receiver_gets_at_most_its_bound_of_streams_however_many_race(db: &TestStorage) {
    let receiver = receiver(db).await;
    let streams: Vec<Stream> = (0..RACERS).map(|_| stream(&receiver.id, None, Delivery::Poll)).collect();
    let created = race(streams.iter().map(|s| db.insert_stream(s, 5, t(0)))).await;
    assert_eq!(created.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 5);
    assert_eq!(db.list_streams(Some(&receiver.id)).await.unwrap().len(), 5);
}

async fn events_are_owed_to_the_streams_that_deliver_their_type(db: &TestStorage) {
    let receiver = receiver(db).await;
    let everything = stream(&receiver.id, None, Delivery::Poll);
    let enabling_only = stream(&receiver.id, Some(&[EventType::AccountEnabled]), Delivery::Poll);
    let off = stream(&receiver.id, None, Delivery::Poll);
    for s in [&everything, &enabling_only, &off] {
        db.insert_stream(s, 10, t(0)).await.unwrap();
    }
    db.set_stream_status(&off.id, StreamStatus::Disabled, None, t(1), t(0), None).await.unwrap();
    let mut signal = db.events_signal();
    signal.borrow_and_update();

    let event = revoked(10);
    db.record_events(std::slice::from_ref(&event)).await.unwrap();
    assert!(signal.has_changed().unwrap(), "waiters are woken");
    assert_eq!(owed(db, &everything, 11).await, std::slice::from_ref(&event.id));
    assert!(owed(db, &enabling_only, 11).await.is_empty(), "a type it does not deliver");
    assert!(owed(db, &off, 11).await.is_empty(), "a disabled stream holds nothing");

    let (sets, _) = db.poll_stream(&everything.id, &[], 10, t(11)).await.unwrap();
    let set = &sets[0];
    assert_eq!(set.event.txn, event.txn);
    assert_eq!(set.event.subject, event.subject);
    assert_eq!(set.event.body, event.body);
    assert_eq!(set.issued_at, t(10));
    assert!(set.jti.contains(&everything.id), "one jti per event and stream");
}

async fn a_poll_returns_the_oldest_first_and_forgets_what_was_acknowledged(db: &TestStorage) {
    let receiver = receiver(db).await;
    let s = stream(&receiver.id, None, Delivery::Poll);
    db.insert_stream(&s, 10, t(0)).await.unwrap();
    let events: Vec<SecurityEvent> = (0..5).map(|i| revoked(10 + i)).collect();
    db.record_events(&events).await.unwrap();

    let (first, more) = db.poll_stream(&s.id, &[], 2, t(20)).await.unwrap();
    assert!(more);
    assert_eq!(
        first.iter().map(|p| p.event.id.clone()).collect::<Vec<_>>(),
        [events[0].id.clone(), events[1].id.clone()]
    );
    // Not acknowledged yet: sent again.
    let (again, _) = db.poll_stream(&s.id, &[], 2, t(21)).await.unwrap();
    assert_eq!(again[0].jti, first[0].jti);
    let acks: Vec<String> = first.iter().map(|p| p.jti.clone()).collect();
    let (rest, more) = db.poll_stream(&s.id, &acks, 10, t(22)).await.unwrap();
    assert!(!more);
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[0].event.id, events[2].id);
    assert_eq!(db.find_stream(&s.id).await.unwrap().unwrap().last_activity_at, t(22), "polling is activity");
    // An acknowledgement-only poll (maxEvents 0) returns nothing.
    let all: Vec<String> = rest.iter().map(|p| p.jti.clone()).collect();
    let (none, more) = db.poll_stream(&s.id, &all, 0, t(23)).await.unwrap();
    assert!(none.is_empty() && !more);
    assert!(owed(db, &s, 24).await.is_empty());
    // Expired events are not delivered.
    db.record_events(&[revoked(30)]).await.unwrap();
    assert!(owed(db, &s, 30 + 301).await.is_empty());
}

async fn a_new_stream_is_owed_the_recent_events_that_still_matter(db: &TestStorage) {
    let receiver = receiver(db).await;
    let (old, recent, expired) = (revoked(-200), revoked(-20), revoked(-400));
    db.record_events(&[old.clone(), recent.clone(), expired.clone(), enabled(-10)]).await.unwrap();
    let s = stream(&receiver.id, Some(&[EventType::SessionRevoked]), Delivery::Poll);
    // Seeded since 100 seconds ago: `old` is older; `expired` expired; account-enabled not requested.
    assert!(db.insert_stream(&s, 10, t(-100)).await.unwrap());
    assert_eq!(owed(db, &s, 0).await, [recent.id]);
}

async fn a_paused_stream_holds_its_sets_and_a_disabled_one_drops_them(db: &TestStorage) {
    let receiver = receiver(db).await;
    let s = stream(&receiver.id, None, Delivery::Poll);
    db.insert_stream(&s, 10, t(0)).await.unwrap();
    let first = revoked(10);
    db.record_events(std::slice::from_ref(&first)).await.unwrap();

    let paused_at = Cause::new(ISSUER, t(11), Duration::minutes(5));
    let announcement = paused_at.stream_updated(&s.id, StreamStatus::Paused, Some("maintenance"));
    assert!(db
        .set_stream_status(&s.id, StreamStatus::Paused, Some("maintenance"), t(11), t(0), Some(&announcement))
        .await
        .unwrap());
    let held = revoked(12);
    db.record_events(std::slice::from_ref(&held)).await.unwrap();
    assert_eq!(
        owed(db, &s, 13).await,
        std::slice::from_ref(&announcement.id),
        "paused: only its own announcement goes out"
    );
    let found = db.find_stream(&s.id).await.unwrap().unwrap();
    assert_eq!((found.status, found.status_reason.as_deref()), (StreamStatus::Paused, Some("maintenance")));

    db.set_stream_status(&s.id, StreamStatus::Enabled, None, t(14), t(0), None).await.unwrap();
    assert_eq!(owed(db, &s, 15).await, [first.id.clone(), announcement.id.clone(), held.id.clone()]);

    db.set_stream_status(&s.id, StreamStatus::Disabled, None, t(16), t(16), None).await.unwrap();
    db.record_events(&[revoked(17)]).await.unwrap();
    assert_eq!(
        owed(db, &s, 18).await,
        std::slice::from_ref(&announcement.id),
        "disabled: nothing held but its announcement"
    );
    // Enabled again: owed afresh what still matters since the given time.
    db.set_stream_status(&s.id, StreamStatus::Enabled, None, t(19), t(0), None).await.unwrap();
    assert_eq!(owed(db, &s, 20).await.len(), 4, "the three revocations and the announcement");
    assert!(!db.set_stream_status("missing", StreamStatus::Enabled, None, t(20), t(0), None).await.unwrap());
}

async fn one_verification_per_interval_however_many_race(db: &TestStorage) {
    let receiver = receiver(db).await;
    let s = stream(&receiver.id, Some(&[]), Delivery::Poll);
    db.insert_stream(&s, 10, t(0)).await.unwrap();
    let requests: Vec<SecurityEvent> = (0..RACERS)
        .map(|i| Cause::new(ISSUER, t(10), Duration::minutes(5)).verification(&s.id, Some(&format!("state-{i}"))))
        .collect();
    let outcomes = race(requests.iter().map(|e| db.request_verification(e, Duration::seconds(30)))).await;
    let requested = outcomes.iter().filter(|o| *o.as_ref().unwrap() == Verification::Requested).count();
    assert_eq!(requested, 1);
    assert!(outcomes.iter().all(|o| matches!(o, Ok(Verification::Requested | Verification::TooSoon))));
    let (sets, _) = db.poll_stream(&s.id, &[], 10, t(11)).await.unwrap();
    assert_eq!(sets.len(), 1, "verification goes to a stream that requested no events");
    assert_eq!(sets[0].event.event_type, EventType::Verification);

    let later = Cause::new(ISSUER, t(40), Duration::minutes(5)).verification(&s.id, None);
    assert_eq!(db.request_verification(&later, Duration::seconds(30)).await.unwrap(), Verification::Requested);
    let nowhere = Cause::new(ISSUER, t(40), Duration::minutes(5)).verification("missing", None);
    assert_eq!(db.request_verification(&nowhere, Duration::seconds(30)).await.unwrap(), Verification::NoStream);
}

async fn a_push_delivery_is_claimed_once_however_many_dispatchers_race(db: &TestStorage) {
    let receiver = receiver(db).await;
    let streams: Vec<Stream> = (0..4).map(|_| stream(&receiver.id, None, push())).collect();
    let polled = stream(&receiver.id, None, Delivery::Poll);
    for s in streams.iter().chain([&polled]) {
        db.insert_stream(s, 10, t(0)).await.unwrap();
    }
    let (older, newer) = (revoked(10), revoked(11));
    db.record_events(&[older.clone(), newer.clone()]).await.unwrap();

    // Per stream only its oldest SET is in flight: four of the eight deliveries.
    let claims = race((0..RACERS).map(|_| db.claim_pushes(t(20), t(50), 10, 10))).await;
    let mut claimed: Vec<(String, String)> = Vec::new();
    for attempt in claims.into_iter().flat_map(Result::unwrap) {
        assert_ne!(attempt.stream.id, polled.id, "poll streams are not pushed");
        assert_eq!(attempt.attempts, 1);
        assert_eq!(attempt.set.event.id, older.id, "the oldest first");
        claimed.push((attempt.stream.id, attempt.set.jti));
    }
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 4, "each stream's oldest exactly once: {claimed:?}");
    assert!(db.claim_pushes(t(21), t(60), 10, 10).await.unwrap().is_empty(), "every stream has one in flight");

    let (first, second) = (&claimed[0], &claimed[1]);
    db.settle_push(&first.0, &first.1, &PushOutcome::Delivered).await.unwrap();
    db.settle_push(&second.0, &second.1, &PushOutcome::Retry { at: t(100), error: "503".into() }).await.unwrap();
    let next = db.claim_pushes(t(22), t(60), 10, 10).await.unwrap();
    assert_eq!(next.len(), 1, "the delivered stream's next SET; the failed stream waits whole");
    assert_eq!((next[0].stream.id.as_str(), next[0].set.event.id.as_str()), (first.0.as_str(), newer.id.as_str()));
    db.settle_push(&first.0, &next[0].set.jti, &PushOutcome::Delivered).await.unwrap();

    // After their lease: the two unsettled streams' oldest again; the failed stream only at
    // its time, its oldest first although its newer SET was due earlier.
    let again = db.claim_pushes(t(60), t(200), 10, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|a| a.attempts == 2 && a.set.event.id == older.id && a.stream.id != second.0));
    assert!(db.claim_pushes(t(99), t(130), 10, 10).await.unwrap().iter().all(|a| a.stream.id != second.0));
    let retried = db.claim_pushes(t(100), t(130), 10, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].set.jti.as_str(), retried[0].attempts), (second.1.as_str(), 2));
}

/// One receiver's many streams (or slow endpoints) take at most its share of the places.
async fn a_receiver_has_at_most_its_share_of_pushes_in_flight(db: &TestStorage) {
    let greedy = receiver(db).await;
    let other = new_client("other", t(-50));
    db.insert_client(&other).await.unwrap();
    let many: Vec<Stream> = (0..6).map(|_| stream(&greedy.id, None, push())).collect();
    let theirs = stream(&other.id, None, push());
    for s in many.iter().chain([&theirs]) {
        db.insert_stream(s, 10, t(0)).await.unwrap();
    }
    db.record_events(&[revoked(10)]).await.unwrap();

    let first = db.claim_pushes(t(20), t(50), 100, 2).await.unwrap();
    let of = |attempts: &[tessera::storage::PushAttempt], who: &ClientId| {
        attempts.iter().filter(|a| &a.stream.receiver == who).count()
    };
    assert_eq!((of(&first, &greedy.id), of(&first, &other.id)), (2, 1));
    assert!(db.claim_pushes(t(21), t(50), 100, 2).await.unwrap().is_empty(), "both at their share");

    let done = first.iter().find(|a| a.stream.receiver == greedy.id).unwrap();
    db.settle_push(&done.stream.id, &done.set.jti, &PushOutcome::Delivered).await.unwrap();
    let freed = db.claim_pushes(t(22), t(50), 100, 2).await.unwrap();
    assert_eq!(of(&freed, &greedy.id), 1, "a freed place goes to the same receiver's next stream");
}

async fn the_purge_removes_what_expired_and_inactive_poll_streams(db: &TestStorage) {
    let receiver = receiver(db).await;
    let idle = stream(&receiver.id, None, Delivery::Poll);
    let active = stream(&receiver.id, None, Delivery::Poll);
    let pushed = stream(&receiver.id, None, push());
    for s in [&idle, &active, &pushed] {
        db.insert_stream(s, 10, t(0)).await.unwrap();
    }
    db.record_events(&[revoked(10), revoked(20)]).await.unwrap();
    db.poll_stream(&active.id, &[], 0, t(1000)).await.unwrap();

    // At 400 s both events have expired; `idle` and `pushed` were last active at 0.
    let mut purged = 0;
    loop {
        let round = db.purge_signals(t(400), t(500), 1).await.unwrap();
        purged += round;
        if round == 0 {
            break;
        }
    }
    assert!(purged > 2 * 3 + 2, "six deliveries, two events, one stream: {purged}");
    assert!(db.find_stream(&idle.id).await.unwrap().is_none(), "an inactive poll stream");
    assert!(db.find_stream(&active.id).await.unwrap().is_some());
    assert!(db.find_stream(&pushed.id).await.unwrap().is_some(), "push streams are not purged for inactivity");
    assert!(db.claim_pushes(t(401), t(430), 10, 10).await.unwrap().is_empty());
}

crate::backend_tests!(
    a_stream_reads_back_and_is_listed_per_receiver,
    a_receiver_gets_at_most_its_bound_of_streams_however_many_race,
    events_are_owed_to_the_streams_that_deliver_their_type,
    a_poll_returns_the_oldest_first_and_forgets_what_was_acknowledged,
    a_new_stream_is_owed_the_recent_events_that_still_matter,
    a_paused_stream_holds_its_sets_and_a_disabled_one_drops_them,
    one_verification_per_interval_however_many_race,
    a_push_delivery_is_claimed_once_however_many_dispatchers_race,
    a_receiver_has_at_most_its_share_of_pushes_in_flight,
    the_purge_removes_what_expired_and_inactive_poll_streams,
);
