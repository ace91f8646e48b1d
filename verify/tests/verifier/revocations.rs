//! The revocation feed (the `revocations` feature) against the mock transmitter of
//! `test_util`: what each event refuses and spares, SETs that must not be applied,
//! acknowledgements, the deny-set bound and pruning, and a feed that is lost and found.

use crate::support::{claims, now, tessera_key, MockIssuer, MockIssuerExt, TestKey};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_verify::test_util::{fill_deny_set, subject, SecurityEvent, RECEIVER_ID, RECEIVER_SECRET};
use tessera_verify::{BuildError, FailMode, FeedState, RevocationError, Revocations, Verifier, VerifyError};

struct Fixture {
    issuer: MockIssuer,
    key: TestKey,
    verifier: Verifier,
}

/// A mock transmitter with short long polls, and a verifier subscribed to it.
async fn fixture(configure: impl FnOnce(Revocations) -> Revocations) -> Fixture {
    let (issuer, key) = transmitter();
    let verifier = subscribe(&issuer, configure).await;
    Fixture { issuer, key, verifier }
}

fn transmitter() -> (MockIssuer, TestKey) {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    issuer.enable_signals(&key);
    issuer.set_long_poll(Duration::from_secs(2));
    (issuer, key)
}

async fn subscribe(issuer: &MockIssuer, configure: impl FnOnce(Revocations) -> Revocations) -> Verifier {
    let revocations = configure(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET));
    issuer.verifier().revocations(revocations).build().await.expect("the verifier subscribes")
}

fn now_f() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

static JTI: AtomicUsize = AtomicUsize::new(0);

impl Fixture {
    /// A token like Tessera's with `changes` applied, and a `jti` of its own.
    fn token(&self, changes: Value) -> String {
        let mut claims = claims(self.issuer.issuer());
        claims["jti"] = json!(format!("at-{}", JTI.fetch_add(1, Ordering::SeqCst)));
        for (name, value) in changes.as_object().expect("an object") {
            claims[name] = value.clone();
        }
        self.key.sign(&claims)
    }

    fn iss(&self) -> &str {
        self.issuer.issuer()
    }

    async fn accepts(&self, token: &str) -> bool {
        match self.verifier.verify(token).await {
            Ok(_) => true,
            Err(VerifyError::Revoked) => false,
            Err(other) => panic!("neither accepted nor revoked: {other:?}"),
        }
    }

    /// Waits until the SETs `jtis` have been acknowledged (so applied).
    async fn applied(&self, jtis: &[String]) {
        let issuer = &self.issuer;
        issuer.wait_for("the SETs to be acknowledged", |i| jtis.iter().all(|j| i.acknowledged().contains(j))).await;
    }
}

/// Sends `event` and waits until the verifier has applied it.
async fn revoke(f: &Fixture, event: SecurityEvent) {
    let jtis = f.issuer.send(&event);
    assert!(!jtis.is_empty(), "a stream receives it");
    f.applied(&jtis).await;
}

async fn eventually(what: &str, condition: impl AsyncFn() -> bool) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_revocation_spares_the_sessions_other_families() {
    let f = fixture(|r| r).await;
    let family_1 = f.token(json!({ "sub": "u1", "sid": "s1", "fid": "f1" }));
    let family_1_again = f.token(json!({ "sub": "u1", "sid": "s1", "fid": "f1" }));
    let family_2 = f.token(json!({ "sub": "u1", "sid": "s1", "fid": "f2" }));
    let login = f.token(json!({ "sub": "u1", "sid": "s1" }));
    let other_session = f.token(json!({ "sub": "u1", "sid": "s2", "fid": "f3" }));
    for token in [&family_1, &family_2, &login, &other_session] {
        assert!(f.accepts(token).await);
    }
    revoke(&f, SecurityEvent::session_revoked(subject::family(f.iss(), "u1", "s1", "f1"), now_f())).await;
    assert!(!f.accepts(&family_1).await && !f.accepts(&family_1_again).await);
    assert!(f.accepts(&family_2).await, "the session's other family lives on");
    assert!(f.accepts(&login).await, "the session itself lives on");
    assert!(f.accepts(&other_session).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revocation_refuses_every_token_of_that_session_only() {
    let f = fixture(|r| r).await;
    let login = f.token(json!({ "sub": "u1", "sid": "s1" }));
    let family = f.token(json!({ "sub": "u1", "sid": "s1", "fid": "f1" }));
    let other_session = f.token(json!({ "sub": "u1", "sid": "s2" }));
    let other_user = f.token(json!({ "sub": "u2", "sid": "s3" }));
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
    assert!(!f.accepts(&login).await && !f.accepts(&family).await);
    assert!(f.accepts(&other_session).await && f.accepts(&other_user).await);
    // A token issued later in the same session is revoked too: the session is over.
    assert!(!f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1", "iat": now() + 5 }))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_revocation_spares_tokens_issued_after_it() {
    let f = fixture(|r| r).await;
    let earlier = f.token(json!({ "sub": "u1", "sid": "s1", "iat": now() - 10 }));
    let earlier_without_session = f.token(json!({ "sub": "u1", "iat": now() - 10 }));
    let other_user = f.token(json!({ "sub": "u2", "sid": "s2", "iat": now() - 10 }));
    revoke(&f, SecurityEvent::session_revoked(subject::user(f.iss(), "u1"), now_f())).await;
    assert!(!f.accepts(&earlier).await && !f.accepts(&earlier_without_session).await);
    assert!(f.accepts(&other_user).await);
    // Logged in again after a password change: the new tokens are good.
    let later = f.token(json!({ "sub": "u1", "sid": "s9", "iat": now() + 2 }));
    assert!(f.accepts(&later).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_revocation_spares_its_later_tokens_and_other_clients() {
    let f = fixture(|r| r).await;
    let earlier = f.token(json!({ "sub": "c1", "client_id": "c1", "iat": now() - 10 }));
    let users_token_via_c1 = f.token(json!({ "sub": "u1", "client_id": "c1", "sid": "s1", "iat": now() - 10 }));
    let other_client = f.token(json!({ "sub": "c2", "client_id": "c2", "iat": now() - 10 }));
    revoke(&f, SecurityEvent::session_revoked(subject::application("c1"), now_f())).await;
    assert!(!f.accepts(&earlier).await && !f.accepts(&users_token_via_c1).await);
    assert!(f.accepts(&other_client).await);
    assert!(f.accepts(&f.token(json!({ "sub": "c1", "client_id": "c1", "iat": now() + 2 }))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revocation_refuses_that_jti_only() {
    let f = fixture(|r| r).await;
    let revoked = f.token(json!({ "jti": "at-revoked" }));
    let sibling = f.token(json!({}));
    revoke(&f, SecurityEvent::session_revoked(subject::token(f.iss(), "at-revoked"), now_f())).await;
    assert!(!f.accepts(&revoked).await);
    assert!(f.accepts(&sibling).await);
    // Another issuer's token of the same jti is none of this verifier's business.
    revoke(&f, SecurityEvent::session_revoked(subject::token("https://other.example", "at-other"), now_f())).await;
    assert!(f.accepts(&f.token(json!({ "jti": "at-other" }))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deny_set_applies_to_introspected_opaque_tokens() {
    use tessera_verify::test_util::{
        introspection_response, opaque_token, INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET,
    };
    let (issuer, key) = transmitter();
    let introspection = tessera_verify::Introspection::new(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET);
    let verifier = issuer
        .verifier()
        .introspection(introspection)
        .revocations(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET))
        .build()
        .await
        .unwrap();
    let f = Fixture { issuer, key, verifier };
    let opaque = |sid: &str, fid: &str| {
        let token = opaque_token();
        let mut answer = introspection_response(f.iss(), crate::support::AUDIENCE);
        answer["sub"] = json!("u1");
        answer["sid"] = json!(sid);
        answer["fid"] = json!(fid);
        f.issuer.set_introspection(&token, answer);
        token
    };
    let (revoked, spared) = (opaque("s1", "f1"), opaque("s1", "f2"));
    // Cached as active before the revocation arrives: the deny set still refuses it.
    assert!(f.accepts(&revoked).await);
    revoke(&f, SecurityEvent::session_revoked(subject::family(f.iss(), "u1", "s1", "f1"), now_f())).await;
    assert!(!f.accepts(&revoked).await);
    assert!(f.accepts(&spared).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_events_revoke_as_tessera_means_them() {
    let f = fixture(|r| r).await;
    let earlier = f.token(json!({ "sub": "u1", "sid": "s1", "iat": now() - 10 }));
    let other_user = f.token(json!({ "sub": "u2", "sid": "s2", "iat": now() - 10 }));
    // A credential change alone revokes nothing: its session-revoked companion does.
    revoke(&f, SecurityEvent::credential_change(subject::account(f.iss(), "u1"), now_f())).await;
    assert!(f.accepts(&earlier).await);
    revoke(&f, SecurityEvent::account_disabled(subject::account(f.iss(), "u1"))).await;
    assert!(!f.accepts(&earlier).await);
    assert!(f.accepts(&other_user).await);
    // Enabling the account again undoes nothing; tokens issued afterwards are good.
    revoke(&f, SecurityEvent::account_enabled(subject::account(f.iss(), "u1"))).await;
    assert!(!f.accepts(&earlier).await);
    assert!(f.accepts(&f.token(json!({ "sub": "u1", "sid": "s3", "iat": now() + 2 }))).await);
    let status = f.verifier.revocation_status().unwrap();
    assert_eq!(
        status.last_event.unwrap().event_type,
        "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_account_disabled_takes_the_time_of_its_session_revoked() {
    let (issuer, key) = transmitter();
    // Disabled ten minutes ago, with Tessera's pair of events sharing a txn; enabled again,
    // and the user logged in since.
    let disabled_at = now_f() - 600.0;
    issuer.send_all(&[
        SecurityEvent::account_disabled(subject::account(issuer.issuer(), "u1")),
        SecurityEvent::session_revoked(subject::user(issuer.issuer(), "u1"), disabled_at),
    ]);
    issuer.send(&SecurityEvent::account_enabled(subject::account(issuer.issuer(), "u1")));
    // A verifier that starts now is seeded with those SETs, each with a fresh iat.
    let verifier = subscribe(&issuer, |r| r).await;
    let f = Fixture { issuer, key, verifier };
    assert!(!f.accepts(&f.token(json!({ "sub": "u1", "iat": disabled_at as i64 - 5 }))).await);
    let since_enabled = f.token(json!({ "sub": "u1", "sid": "s2", "iat": now() - 60 }));
    assert!(f.accepts(&since_enabled).await, "the seeded SET's iat is not the time of the disabling");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_the_transmitter_holds_are_known_when_build_returns() {
    let (issuer, key) = transmitter();
    issuer.send(&SecurityEvent::session_revoked(subject::session(issuer.issuer(), "u1", "s1"), now_f()));
    let verifier = subscribe(&issuer, |r| r).await;
    let f = Fixture { issuer, key, verifier };
    // No waiting: the first poll happened inside build().
    assert!(!f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await);
    let status = f.verifier.revocation_status().unwrap();
    assert_eq!(status.deny_entries, 1);
    assert_eq!(status.state, FeedState::Healthy);
    assert_eq!(status.stream_id, Some(f.issuer.stream_ids()[0].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_sets_are_refused_reported_and_not_applied() {
    let f = fixture(|r| r).await;
    let event = SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f());
    let header = json!({ "typ": "secevent+jwt", "alg": "RS256", "kid": f.key.kid() });
    // Signed with another key under the issuer's kid.
    let claims = f.issuer.set_claims(&event);
    let jti = claims["jti"].as_str().unwrap().to_owned();
    f.issuer.deliver_raw(&jti, &TestKey::generate().sign_with_header(&header, &claims));
    let issuer = &f.issuer;
    issuer
        .wait_for("the forged SET to be reported", |i| i.set_errors().contains(&(jti.clone(), "invalid_key".into())))
        .await;
    assert!(f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await);
    assert!(!f.issuer.acknowledged().contains(&jti));
    assert_eq!(f.verifier.revocation_status().unwrap().deny_entries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_of_the_wrong_type_or_for_someone_else_are_refused() {
    let f = fixture(|r| r).await;
    let event = SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f());
    let mut refused = Vec::new();
    let mut deliver = |header: Value, claims: Value, err: &str| {
        let jti = claims["jti"].as_str().unwrap().to_owned();
        f.issuer.deliver_raw(&jti, &f.key.sign_with_header(&header, &claims));
        refused.push((jti, err.to_owned()));
    };
    let kid = f.key.kid();
    for typ in ["JWT", "at+jwt", "application/secevent+jwt"] {
        deliver(json!({ "typ": typ, "alg": "RS256", "kid": kid }), f.issuer.set_claims(&event), "invalid_request");
    }
    deliver(json!({ "alg": "RS256", "kid": kid }), f.issuer.set_claims(&event), "invalid_request");
    let header = json!({ "typ": "secevent+jwt", "alg": "RS256", "kid": kid });
    let mut claims = f.issuer.set_claims(&event);
    claims["aud"] = json!("another-receiver");
    deliver(header.clone(), claims, "invalid_audience");
    let mut claims = f.issuer.set_claims(&event);
    claims["iss"] = json!("https://other.example");
    deliver(header.clone(), claims, "invalid_issuer");
    let mut claims = f.issuer.set_claims(&event);
    claims["exp"] = json!(now() + 60);
    deliver(header.clone(), claims, "invalid_request");
    let ps256 = json!({ "typ": "secevent+jwt", "alg": "PS256", "kid": kid });
    deliver(ps256, f.issuer.set_claims(&event), "invalid_key");
    let issuer = &f.issuer;
    issuer.wait_for("every SET to be reported", |i| refused.iter().all(|r| i.set_errors().contains(r))).await;
    assert!(f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await, "none was applied");
    assert!(refused.iter().all(|(jti, _)| !f.issuer.acknowledged().contains(jti)));
    assert_eq!(f.issuer.owed(), 0, "reported SETs are not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_signed_with_an_unknown_key_waits_for_a_refetch_then_is_refused() {
    let (issuer, key) = transmitter();
    let verifier = issuer
        .verifier()
        .min_refetch_interval(Duration::from_secs(1))
        .revocations(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET))
        .build()
        .await
        .unwrap();
    let f = Fixture { issuer, key, verifier };
    let stranger = TestKey::generate();
    let event = SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f());
    let claims = f.issuer.set_claims(&event);
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let header = json!({ "typ": "secevent+jwt", "alg": "RS256", "kid": stranger.kid() });
    f.issuer.deliver_raw(&jti, &stranger.sign_with_header(&header, &claims));
    let issuer = &f.issuer;
    issuer.wait_for("the SET to be reported", |i| i.set_errors().contains(&(jti.clone(), "invalid_key".into()))).await;
    assert!(f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_state_it_never_asked_for_is_reported() {
    let f = fixture(|r| r).await;
    let stream_id = f.issuer.stream_ids()[0].clone();
    let event = SecurityEvent {
        event_type: "https://schemas.openid.net/secevent/ssf/event-type/verification".into(),
        sub_id: json!({ "format": "opaque", "id": stream_id }),
        event: json!({ "state": "not-mine" }),
    };
    let claims = f.issuer.set_claims(&event);
    let jti = claims["jti"].as_str().unwrap().to_owned();
    let header = json!({ "typ": "secevent+jwt", "alg": "RS256", "kid": f.key.kid() });
    f.issuer.deliver_raw(&jti, &f.key.sign_with_header(&header, &claims));
    let issuer = &f.issuer;
    issuer.wait_for("invalid_state", |i| i.set_errors().contains(&(jti.clone(), "invalid_state".into()))).await;
}

/// A clock `offset` seconds ahead of the system's.
fn shifted(offset: &Arc<AtomicI64>) -> impl Fn() -> SystemTime + Send + Sync + 'static {
    let offset = Arc::clone(offset);
    move || {
        let seconds = offset.load(Ordering::SeqCst);
        SystemTime::now() + Duration::from_secs(seconds.unsigned_abs())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_deny_set_leaves_sets_unacknowledged_until_pruning_makes_room() {
    let (issuer, key) = transmitter();
    let offset = Arc::new(AtomicI64::new(0));
    let verifier = issuer
        .verifier()
        .clock(shifted(&offset))
        .revocations(
            Revocations::poll(RECEIVER_ID, RECEIVER_SECRET)
                .max_entries(1)
                .token_lifetime(Duration::from_secs(60))
                .max_silence(Duration::from_secs(3600)),
        )
        .build()
        .await
        .unwrap();
    let f = Fixture { issuer, key, verifier };
    revoke(&f, SecurityEvent::session_revoked(subject::token(f.iss(), "at-a"), now_f())).await;
    // Ten minutes from now, when the first entry has expired.
    let later = now_f() + 600.0;
    let second = f.issuer.send(&SecurityEvent::session_revoked(subject::token(f.iss(), "at-b"), later));
    let issuer = &f.issuer;
    let verifier = &f.verifier;
    eventually("the feed to report the full deny set", async || {
        matches!(
            verifier.revocation_status().unwrap().state,
            FeedState::Degraded { reason: "the deny set is full", .. }
        )
    })
    .await;
    assert!(!issuer.acknowledged().contains(&second[0]), "not applied, so not acknowledged");
    assert_eq!(issuer.owed(), 1, "the transmitter still owes it");
    assert!(f.accepts(&f.token(json!({ "jti": "at-b" }))).await);
    assert_eq!(verifier.revocation_status().unwrap().deny_entries, 1);

    offset.store(600, Ordering::SeqCst);
    f.applied(&second).await;
    let token_b = f.token(json!({ "jti": "at-b", "iat": now() + 600, "exp": now() + 900 }));
    assert!(!f.accepts(&token_b).await);
    let status = verifier.revocation_status().unwrap();
    assert_eq!((status.deny_entries, status.deny_capacity), (1, 1), "at-a was pruned to make room");
    eventually("the feed to recover", async || verifier.revocation_status().unwrap().state == FeedState::Healthy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_pruned_once_every_token_they_match_has_expired() {
    let (issuer, key) = transmitter();
    let offset = Arc::new(AtomicI64::new(0));
    let verifier = issuer
        .verifier()
        .clock(shifted(&offset))
        .revocations(
            Revocations::poll(RECEIVER_ID, RECEIVER_SECRET)
                .token_lifetime(Duration::from_secs(300))
                .max_silence(Duration::from_secs(3600)),
        )
        .build()
        .await
        .unwrap();
    let f = Fixture { issuer, key, verifier };
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
    revoke(&f, SecurityEvent::session_revoked(subject::user(f.iss(), "u2"), now_f())).await;
    assert_eq!(f.verifier.revocation_status().unwrap().deny_entries, 2);
    // Token lifetime and leeway have not both passed yet.
    offset.store(300, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(f.verifier.revocation_status().unwrap().deny_entries, 2);
    offset.store(331, Ordering::SeqCst);
    let verifier = &f.verifier;
    eventually("pruning", async || verifier.revocation_status().unwrap().deny_entries == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_feed_fails_closed_then_recovers_and_catches_up() {
    let f = fixture(|r| r.max_silence(Duration::from_secs(1))).await;
    let token = f.token(json!({ "sub": "u1", "sid": "s1" }));
    let survivor = f.token(json!({ "sub": "u2", "sid": "s2" }));
    assert!(f.accepts(&token).await);
    f.issuer.set_signals_failing(true);
    let verifier = &f.verifier;
    eventually("failing closed", async || {
        matches!(verifier.verify(&survivor).await, Err(VerifyError::RevocationsUnavailable))
    })
    .await;
    let status = verifier.revocation_status().unwrap();
    assert!(status.is_refusing);
    assert!(matches!(status.state, FeedState::Degraded { reason: "polling the transmitter fails", .. }), "{status:?}");
    // Revoked during the outage: the transmitter keeps it until acknowledged.
    let jtis = f.issuer.send(&SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f()));
    f.issuer.set_signals_failing(false);
    f.applied(&jtis).await;
    eventually("recovery", async || verifier.verify(&survivor).await.is_ok()).await;
    assert!(!f.accepts(&token).await);
    let status = verifier.revocation_status().unwrap();
    assert_eq!(status.state, FeedState::Healthy);
    assert!(!status.is_refusing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_feed_keeps_verifying_when_failing_open() {
    let f = fixture(|r| r.max_silence(Duration::from_secs(1)).fail_mode(FailMode::Open)).await;
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
    f.issuer.set_signals_failing(true);
    let verifier = &f.verifier;
    eventually("the feed to be degraded", async || {
        matches!(verifier.revocation_status().unwrap().state, FeedState::Degraded { .. })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!verifier.revocation_status().unwrap().is_refusing);
    assert!(f.accepts(&f.token(json!({ "sub": "u2", "sid": "s2" }))).await);
    assert!(!f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await, "known revocations still hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transmitter_that_stops_delivering_is_caught_by_the_heartbeat() {
    let f = fixture(|r| r.max_silence(Duration::from_secs(1)).heartbeat_interval(Duration::from_millis(500))).await;
    let token = f.token(json!({}));
    let verifier = &f.verifier;
    eventually("a verification round trip", async || f.issuer.signal_requests().2 >= 1).await;
    assert!(f.accepts(&token).await);
    // Polls still succeed, but nothing comes.
    f.issuer.set_signals_silent(true);
    eventually("failing closed", async || {
        matches!(verifier.verify(&token).await, Err(VerifyError::RevocationsUnavailable))
    })
    .await;
    let status = verifier.revocation_status().unwrap();
    assert!(matches!(status.state, FeedState::Degraded { reason: "a verification event did not come back", .. }));
    f.issuer.set_signals_silent(false);
    eventually("recovery", async || verifier.verify(&token).await.is_ok()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_is_replaced_and_what_still_matters_comes_again() {
    let f = fixture(|r| r).await;
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
    let first = f.issuer.stream_ids()[0].clone();
    assert!(f.issuer.delete_stream(&first));
    let verifier = &f.verifier;
    eventually("a new stream", async || verifier.revocation_status().unwrap().stream_id.is_some_and(|id| id != first))
        .await;
    assert_eq!(f.issuer.stream_ids().len(), 1);
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u2", "s2"), now_f())).await;
    assert!(!f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1" }))).await);
    assert!(!f.accepts(&f.token(json!({ "sub": "u2", "sid": "s2" }))).await);
    assert_eq!(f.issuer.owed(), 0, "the new stream's seeded SETs were acknowledged too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_receiver_token_is_renewed() {
    let f = fixture(|r| r).await;
    let (token_requests, _, _) = f.issuer.signal_requests();
    f.issuer.revoke_receiver_tokens();
    revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
    assert!(f.issuer.signal_requests().0 > token_requests);
    assert_eq!(f.verifier.revocation_status().unwrap().state, FeedState::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deletes_the_stream_and_stops_the_feed() {
    let f = fixture(|r| r.max_silence(Duration::from_secs(1))).await;
    assert_eq!(f.issuer.stream_ids().len(), 1);
    f.verifier.shutdown_revocations().await.unwrap();
    assert!(f.issuer.stream_ids().is_empty());
    assert!(matches!(f.verifier.revocation_status().unwrap().state, FeedState::Stopped { .. }));
    f.verifier.shutdown_revocations().await.unwrap();
    let token = f.token(json!({}));
    let verifier = &f.verifier;
    eventually("failing closed", async || {
        matches!(verifier.verify(&token).await, Err(VerifyError::RevocationsUnavailable))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_reused_by_id_and_replaced_when_unknown() {
    let (issuer, _key) = transmitter();
    let first = subscribe(&issuer, |r| r).await;
    let stream_id = first.revocation_status().unwrap().stream_id.unwrap();
    drop(first);
    let again = subscribe(&issuer, |r| r.stream_id(&stream_id)).await;
    assert_eq!(again.revocation_status().unwrap().stream_id.as_ref(), Some(&stream_id));
    assert_eq!(issuer.stream_ids(), [stream_id.as_str()]);
    drop(again);
    let replaced = subscribe(&issuer, |r| r.stream_id("gone")).await;
    assert_ne!(replaced.revocation_status().unwrap().stream_id, Some("gone".into()));
    assert_eq!(issuer.stream_ids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_must_be_set_up_for_build_to_succeed() {
    let (issuer, _key) = transmitter();
    let wrong_secret = issuer.verifier().revocations(Revocations::poll(RECEIVER_ID, "wrong")).build().await;
    assert!(
        matches!(wrong_secret, Err(BuildError::Revocations(RevocationError::CredentialsRefused))),
        "{wrong_secret:?}"
    );
    issuer.set_max_streams(0);
    let too_many = issuer.verifier().revocations(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET)).build().await;
    assert!(matches!(too_many, Err(BuildError::Revocations(RevocationError::TooManyStreams))), "{too_many:?}");
    let zero = issuer.verifier().revocations(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET).max_entries(0)).build();
    assert!(matches!(zero.await, Err(BuildError::Configuration(_))));
    let plain = MockIssuer::start(&[&tessera_key()]);
    let no_transmitter = plain.verifier().revocations(Revocations::poll(RECEIVER_ID, RECEIVER_SECRET)).build().await;
    let is_404 = |e: &RevocationError| matches!(e, RevocationError::Request(e) if e.status_code() == Some(404));
    assert!(matches!(&no_transmitter, Err(BuildError::Revocations(e)) if is_404(e)), "{no_transmitter:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_without_a_feed_reports_none() {
    let (issuer, _key) = transmitter();
    let verifier = issuer.verifier().build().await.unwrap();
    assert!(verifier.revocation_status().is_none());
    assert!(fill_deny_set(&verifier, 10).is_none());
    verifier.shutdown_revocations().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_default_deny_set_refuses_nothing_it_does_not_name() {
    let f = fixture(|r| r).await;
    assert_eq!(fill_deny_set(&f.verifier, 100_000), Some(100_000));
    assert_eq!(fill_deny_set(&f.verifier, 1), Some(0), "the default bound is 100 000");
    assert!(f.accepts(&f.token(json!({ "sub": "u1", "sid": "s1", "fid": "f1" }))).await);
    let status = f.verifier.revocation_status().unwrap();
    assert_eq!((status.deny_entries, status.deny_capacity), (100_000, 100_000));
}

#[cfg(feature = "actix")]
mod extractor {
    use super::*;
    use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
    use actix_web::{test, web, App, HttpResponse};
    use tessera_verify::actix::{AccessToken, BearerError};

    async fn hello(token: AccessToken) -> Result<HttpResponse, BearerError> {
        Ok(HttpResponse::Ok().body(token.claims().sub.clone()))
    }

    #[actix_web::test]
    async fn revoked_is_401_invalid_token_and_failing_closed_is_503() {
        let f = fixture(|r| r.max_silence(Duration::from_secs(1))).await;
        let app = test::init_service(
            App::new().app_data(web::Data::new(f.verifier.clone())).route("/", web::get().to(hello)),
        )
        .await;
        let call =
            |token: String| test::TestRequest::get().uri("/").insert_header((AUTHORIZATION, format!("Bearer {token}")));
        let revoked = f.token(json!({ "sub": "u1", "sid": "s1" }));
        let good = f.token(json!({ "sub": "u2", "sid": "s2" }));
        revoke(&f, SecurityEvent::session_revoked(subject::session(f.iss(), "u1", "s1"), now_f())).await;
        let response = test::call_service(&app, call(revoked).to_request()).await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers().get(WWW_AUTHENTICATE).unwrap().to_str().unwrap();
        assert!(challenge.contains(r#"error="invalid_token", error_description="the access token has been revoked""#));
        assert_eq!(test::call_service(&app, call(good.clone()).to_request()).await.status(), 200);

        f.issuer.set_signals_failing(true);
        let verifier = &f.verifier;
        eventually("failing closed", async || verifier.revocation_status().unwrap().is_refusing).await;
        let response = test::call_service(&app, call(good).to_request()).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    }
}
