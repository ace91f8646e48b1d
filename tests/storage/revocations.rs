//! `RevocationStore`: each way access ends is one transaction with its cascade and the
//! events that report it, owed to the streams at once; nothing changed, nothing recorded.
//! And `SessionStore::renew_session`, the same person signing in again.

use crate::helpers::{new_client, revoke, t, TestStorage};
use chrono::Duration;
use std::sync::Arc;
use tessera::domain::client::ClientId;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::{
    new_id, Delivery, EventSource, EventType, Reason, Revocation, Stream, StreamStatus, Subject,
};

const ISSUER: &str = "https://id.example";

/// A revocation at `at` that records its events.
fn recorded(why: Reason, at: i64) -> Revocation {
    let source = EventSource { issuer: Arc::from(ISSUER), relevance: Duration::minutes(10) };
    Revocation::new(why, t(at), Some(source))
}

/// A stream delivering everything; returns its id.
async fn stream(db: &TestStorage) -> String {
    let receiver = new_client("receiver", t(-10));
    db.insert_client(&receiver).await.unwrap();
    let stream = Stream {
        id: new_id(),
        receiver: receiver.id,
        events_requested: None,
        delivery: Delivery::Poll,
        description: None,
        status: StreamStatus::Enabled,
        status_reason: None,
        created_at: t(0),
        updated_at: t(0),
        last_activity_at: t(0),
        last_verification_at: None,
    };
    db.insert_stream(&stream, 10, t(0)).await.unwrap();
    stream.id
}

/// The events owed to `stream`, acknowledged: (type, subject), in type order (the events
/// of one cause are made at one instant, so the stream's order among them is arbitrary).
async fn owed(db: &TestStorage, stream: &str) -> Vec<(EventType, Subject)> {
    let (sets, _) = db.poll_stream(stream, &[], 100, t(1)).await.unwrap();
    let acks: Vec<String> = sets.iter().map(|s| s.jti.clone()).collect();
    db.poll_stream(stream, &acks, 0, t(1)).await.unwrap();
    let mut events: Vec<(EventType, Subject)> =
        sets.into_iter().map(|s| (s.event.event_type, s.event.subject)).collect();
    events.sort_by_key(|(event_type, _)| event_type.uri());
    events
}

async fn each_revocation_records_what_it_ended_and_only_when_it_ended_something(db: &TestStorage) {
    let stream = stream(db).await;
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (session_id, session) = db.a_session(&alice).await;
    let (family, _) = db.a_family(&client, &session).await;

    assert!(db.revoke_family(&family.id, &recorded(Reason::RevokedByClient, 1)).await.unwrap());
    let family_subject = Subject::token_family(ISSUER, alice.id.as_str(), session.sid.as_str(), family.id.as_str());
    assert_eq!(owed(db, &stream).await, [(EventType::SessionRevoked, family_subject)]);
    assert!(!db.revoke_family(&family.id, &recorded(Reason::RevokedByClient, 2)).await.unwrap());
    assert!(owed(db, &stream).await.is_empty(), "revoked already: no event");

    assert!(db.end_session(&session_id, &recorded(Reason::Logout, 3)).await.unwrap().is_some());
    let session_subject = Subject::session(ISSUER, alice.id.as_str(), session.sid.as_str());
    assert_eq!(owed(db, &stream).await, [(EventType::SessionRevoked, session_subject)]);
    assert!(db.end_session(&session_id, &recorded(Reason::Logout, 4)).await.unwrap().is_none());
    assert!(owed(db, &stream).await.is_empty());

    assert!(db.revoke_access_token("jti-1", t(600), &recorded(Reason::RevokedByClient, 5)).await.unwrap());
    assert_eq!(owed(db, &stream).await, [(EventType::SessionRevoked, Subject::access_token(ISSUER, "jti-1"))]);
    assert!(!db.revoke_access_token("jti-1", t(600), &recorded(Reason::RevokedByClient, 6)).await.unwrap());
    assert!(owed(db, &stream).await.is_empty());

    assert!(db.disable_client(&client.id, &recorded(Reason::ClientDisabled, 7)).await.unwrap());
    assert_eq!(owed(db, &stream).await, [(EventType::SessionRevoked, Subject::application(&client.id))]);
    assert!(!db.disable_client(&ClientId::generate(), &recorded(Reason::ClientDisabled, 8)).await.unwrap());
    assert!(owed(db, &stream).await.is_empty());
}

async fn a_users_cascades_end_everything_of_theirs_and_report_it_once(db: &TestStorage) {
    let stream = stream(db).await;
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let (alices_session_id, alices) = db.a_session(&alice).await;
    let (bobs_session_id, bobs) = db.a_session(&bob).await;
    let (alices_family, _) = db.a_family(&client, &alices).await;
    let (bobs_family, _) = db.a_family(&client, &bobs).await;

    assert!(db.disable_user(&alice.id, &recorded(Reason::UserDisabled, 1)).await.unwrap());
    let events = owed(db, &stream).await;
    assert_eq!(
        events,
        [
            (EventType::SessionRevoked, Subject::all_sessions_of(ISSUER, alice.id.as_str())),
            (EventType::AccountDisabled, Subject::Simple(Subject::user(ISSUER, alice.id.as_str()))),
        ]
    );
    assert!(db.find_session(&alices_session_id, t(2), t(-1)).await.unwrap().is_none());
    assert!(db.find_family(&alices_family.id).await.unwrap().unwrap().revoked_at.is_some());
    assert!(db.find_session(&bobs_session_id, t(2), t(-1)).await.unwrap().is_some(), "only hers");
    assert!(db.find_family(&bobs_family.id).await.unwrap().unwrap().revoked_at.is_none());
    assert!(!db.disable_user(&alice.id, &recorded(Reason::UserDisabled, 2)).await.unwrap());
    assert!(owed(db, &stream).await.is_empty(), "disabled already");

    assert!(db.enable_user(&alice.id, &recorded(Reason::UserEnabled, 3)).await.unwrap());
    assert_eq!(
        owed(db, &stream).await,
        [(EventType::AccountEnabled, Subject::Simple(Subject::user(ISSUER, alice.id.as_str())))]
    );
    assert!(db.find_user_by_id(&alice.id).await.unwrap().unwrap().disabled_at.is_none());
    assert!(!db.enable_user(&alice.id, &recorded(Reason::UserEnabled, 4)).await.unwrap());

    assert!(db.set_password_hash(&bob.id, "$argon2id$new", &recorded(Reason::PasswordChanged, 5)).await.unwrap());
    let events: Vec<EventType> = owed(db, &stream).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(events, [EventType::CredentialChange, EventType::SessionRevoked]);
    assert!(db.find_session(&bobs_session_id, t(6), t(-1)).await.unwrap().is_none());
    assert!(db.find_family(&bobs_family.id).await.unwrap().unwrap().revoked_at.is_some());
}

async fn without_an_event_source_nothing_is_recorded(db: &TestStorage) {
    let stream = stream(db).await;
    let alice = db.a_user("alice").await;
    let (session_id, _) = db.a_session(&alice).await;
    assert!(db.end_session(&session_id, &revoke(Reason::Logout, t(1))).await.unwrap().is_some());
    assert!(db.disable_user(&alice.id, &revoke(Reason::UserDisabled, t(2))).await.unwrap());
    assert!(owed(db, &stream).await.is_empty());
}

async fn signing_in_again_renews_the_session_under_a_new_id_and_the_same_sid(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    let (old_id, session) = db.a_session(&alice).await;
    let new_id = SecretDigest::of("a new session id");
    let renewed = tessera::domain::authorization::Session { auth_time: t(100), expires_at: t(9000), ..session.clone() };
    assert!(db.renew_session(&old_id, &new_id, &renewed, &alice.password_hash).await.unwrap());
    assert!(db.find_session(&old_id, t(101), t(-1)).await.unwrap().is_none(), "the old id is gone");
    let found = db.find_session(&new_id, t(101), t(-1)).await.unwrap().expect("renewed");
    assert_eq!((found.sid, found.auth_time, found.expires_at), (session.sid.clone(), t(100), t(9000)));
    // Not with another password hash (it changed while the new one was being checked).
    let again = SecretDigest::of("yet another id");
    assert!(!db.renew_session(&new_id, &again, &renewed, "$argon2id$stale").await.unwrap());
    assert!(db.find_session(&new_id, t(101), t(-1)).await.unwrap().is_some());
}

crate::backend_tests!(
    each_revocation_records_what_it_ended_and_only_when_it_ended_something,
    a_users_cascades_end_everything_of_theirs_and_report_it_once,
    without_an_event_source_nothing_is_recorded,
    signing_in_again_renews_the_session_under_a_new_id_and_the_same_sid,
);
