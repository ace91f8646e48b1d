//! `DeviceStore`: device authorization requests (RFC 8628), bounded per client and in
//! total, decided once, polled by their client only (`slow_down` when too early), redeemed
//! by exactly one of many concurrent polls, and their refresh family started only while the
//! approving session lives.

use crate::helpers::{new_family, new_token, race, revoke, scope, t, TestStorage, RACERS};
use chrono::Duration;
use tessera::domain::client::Client;
use tessera::domain::device::{DeviceApproval, DevicePoll, DeviceRequest, DeviceStatus};
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;
use tessera::storage::client_requests::{BoundRefused, RequestLimits};

const LIMITS: RequestLimits = RequestLimits { max_per_client: 3, max_total: 5 };

fn digest() -> SecretDigest {
    SecretDigest::of(&uuid::Uuid::new_v4().to_string())
}

/// A pending request of `client` made at `t(0)`, expiring at `t(600)`, interval 5 s.
fn new_request(client: &Client) -> DeviceRequest {
    DeviceRequest {
        client_id: client.id.clone(),
        scope: scope("openid offline_access"),
        status: DeviceStatus::Pending,
        created_at: t(0),
        expires_at: t(600),
        interval: Duration::seconds(5),
        next_poll_at: t(0),
    }
}

impl TestStorage {
    /// A stored pending request of `client`: its device code's and user code's digests.
    async fn a_device_request(&self, client: &Client) -> (SecretDigest, SecretDigest) {
        let (device, user) = (digest(), digest());
        assert_eq!(
            self.insert_device_request(&device, &user, &new_request(client), LIMITS, None, t(0)).await.unwrap(),
            Ok(())
        );
        (device, user)
    }
}

async fn a_request_is_polled_decided_and_redeemed_once_by_its_client(db: &TestStorage) {
    let (client, other) = (db.a_client().await, db.a_client().await);
    let user = db.a_user("alice").await;
    let (_, session) = db.a_session(&user).await;
    let (device, user_code) = db.a_device_request(&client).await;
    let found = db.find_device_request(&user_code, t(1)).await.unwrap().expect("pending");
    assert_eq!(found.client_id, client.id);
    assert!(db.find_device_request(&digest(), t(1)).await.unwrap().is_none());
    assert!(db.find_device_request(&user_code, t(600)).await.unwrap().is_none(), "expired");

    assert_eq!(db.poll_device_code(&device, &client.id, t(0)).await.unwrap(), DevicePoll::Pending);
    assert_eq!(
        db.poll_device_code(&device, &client.id, t(3)).await.unwrap(),
        DevicePoll::SlowDown { interval: Duration::seconds(10) }
    );
    assert_eq!(db.poll_device_code(&device, &client.id, t(13)).await.unwrap(), DevicePoll::Pending);
    assert_eq!(db.poll_device_code(&device, &other.id, t(30)).await.unwrap(), DevicePoll::Invalid, "another client's");
    assert_eq!(db.poll_device_code(&digest(), &client.id, t(30)).await.unwrap(), DevicePoll::Invalid);

    let approval = DeviceApproval { user_id: user.id.clone(), sid: session.sid.clone(), auth_time: t(0) };
    assert_eq!(db.decide_device_request(&user_code, Some(&approval), t(40)).await.unwrap(), Some(client.id.clone()));
    assert_eq!(db.decide_device_request(&user_code, None, t(41)).await.unwrap(), None, "decided once");
    assert!(db.find_device_request(&user_code, t(41)).await.unwrap().is_none(), "no longer pending");
    assert_eq!(db.poll_device_code(&device, &other.id, t(50)).await.unwrap(), DevicePoll::Invalid);
    match db.poll_device_code(&device, &client.id, t(50)).await.unwrap() {
        DevicePoll::Redeemed { client_id, scope: granted, user_id, sid, auth_time } => {
            assert_eq!((client_id, user_id, sid, auth_time), (client.id.clone(), user.id, session.sid, t(0)));
            assert_eq!(granted, scope("openid offline_access"));
        }
        other => panic!("expected the redemption, got {other:?}"),
    }
    assert_eq!(db.poll_device_code(&device, &client.id, t(51)).await.unwrap(), DevicePoll::Invalid, "used once");
}

async fn denied_expired_and_ended_requests_say_so(db: &TestStorage) {
    let client = db.a_client().await;
    let user = db.a_user("bob").await;
    let (session_id, session) = db.a_session(&user).await;
    let (denied, denied_code) = db.a_device_request(&client).await;
    assert_eq!(db.decide_device_request(&denied_code, None, t(1)).await.unwrap(), Some(client.id.clone()));
    assert_eq!(db.poll_device_code(&denied, &client.id, t(2)).await.unwrap(), DevicePoll::Denied);
    let (expired, _) = db.a_device_request(&client).await;
    assert_eq!(db.poll_device_code(&expired, &client.id, t(600)).await.unwrap(), DevicePoll::Expired);
    let (ended, ended_code) = db.a_device_request(&client).await;
    let approval = DeviceApproval { user_id: user.id.clone(), sid: session.sid.clone(), auth_time: t(0) };
    assert!(db.decide_device_request(&ended_code, Some(&approval), t(1)).await.unwrap().is_some());
    db.end_session(&session_id, &revoke(Reason::Logout, t(2))).await.unwrap();
    assert_eq!(db.poll_device_code(&ended, &client.id, t(3)).await.unwrap(), DevicePoll::Denied, "its session ended");
    assert_eq!(db.purge_client_requests(t(601), 100).await.unwrap(), 3, "housekeeping purges them once expired");
}

async fn requests_are_bounded_per_client_and_in_total(db: &TestStorage) {
    let (a, b) = (db.a_client().await, db.a_client().await);
    for _ in 0..3 {
        db.a_device_request(&a).await;
    }
    let refused = db.insert_device_request(&digest(), &digest(), &new_request(&a), LIMITS, None, t(0)).await.unwrap();
    assert_eq!(refused, Err(BoundRefused::ClientLimit));
    db.a_device_request(&b).await;
    db.a_device_request(&b).await;
    let refused = db.insert_device_request(&digest(), &digest(), &new_request(&b), LIMITS, None, t(0)).await.unwrap();
    assert_eq!(refused, Err(BoundRefused::TotalLimit));
    // A taken user code is a conflict: the endpoint draws another.
    let taken = digest();
    let later = DeviceRequest { expires_at: t(1200), ..new_request(&a) };
    assert_eq!(db.insert_device_request(&digest(), &taken, &later, LIMITS, None, t(600)).await.unwrap(), Ok(()));
    let clash = db.insert_device_request(&digest(), &taken, &later, LIMITS, None, t(600)).await;
    assert!(matches!(clash, Err(tessera::storage::StorageError::Conflict(_))), "{clash:?}");
    // Concurrent requests of one client never pass its bound.
    let c = db.a_client().await;
    let limits = RequestLimits { max_per_client: 3, max_total: 1000 };
    let keys: Vec<_> = (0..RACERS).map(|_| (digest(), digest(), new_request(&c))).collect();
    let inserted = race(keys.iter().map(|(d, u, r)| db.insert_device_request(d, u, r, limits, None, t(0)))).await;
    assert_eq!(inserted.into_iter().map(|i| i.unwrap()).filter(Result::is_ok).count(), 3);
}

async fn of_many_concurrent_polls_of_an_approved_request_one_redeems_it(db: &TestStorage) {
    let client = db.a_client().await;
    let user = db.a_user("carol").await;
    let (_, session) = db.a_session(&user).await;
    let (device, user_code) = db.a_device_request(&client).await;
    let approval = DeviceApproval { user_id: user.id.clone(), sid: session.sid.clone(), auth_time: t(0) };
    db.decide_device_request(&user_code, Some(&approval), t(1)).await.unwrap();
    let polls = race((0..RACERS).map(|_| db.poll_device_code(&device, &client.id, t(2)))).await;
    let redeemed = polls.iter().filter(|p| matches!(p, Ok(DevicePoll::Redeemed { .. }))).count();
    assert_eq!(redeemed, 1, "{polls:?}");
    assert!(polls.iter().all(|p| matches!(p, Ok(DevicePoll::Redeemed { .. } | DevicePoll::Invalid))), "{polls:?}");
    // And of concurrent polls of a pending one, at most one counts as on time.
    let (pending, _) = db.a_device_request(&client).await;
    let polls = race((0..RACERS).map(|_| db.poll_device_code(&pending, &client.id, t(2)))).await;
    assert_eq!(polls.iter().filter(|p| matches!(p, Ok(DevicePoll::Pending))).count(), 1, "{polls:?}");
}

async fn a_family_starts_only_while_the_approving_session_lives(db: &TestStorage) {
    let client = db.a_client().await;
    let user = db.a_user("dave").await;
    let (session_id, session) = db.a_session(&user).await;
    let family = new_family(&client, &session);
    assert!(db.create_family_for_session(&family, &new_token().1, t(3600)).await.unwrap());
    assert!(db.find_family(&family.id).await.unwrap().is_some());
    db.end_session(&session_id, &revoke(Reason::Logout, t(1))).await.unwrap();
    let later = new_family(&client, &session);
    assert!(!db.create_family_for_session(&later, &new_token().1, t(3600)).await.unwrap(), "the session ended");
    assert!(db.find_family(&later.id).await.unwrap().is_none());
}

crate::backend_tests!(
    a_request_is_polled_decided_and_redeemed_once_by_its_client,
    denied_expired_and_ended_requests_say_so,
    requests_are_bounded_per_client_and_in_total,
    of_many_concurrent_polls_of_an_approved_request_one_redeems_it,
    a_family_starts_only_while_the_approving_session_lives,
);
