//! `RefreshStore::purge_expired`: housekeeping deletes what nobody can use any more, at
//! most `batch` rows per table per call, and nothing else.

use crate::helpers::{new_family, new_grant, new_pending, new_session, new_token, outcome, presentation_of, revoke, t};
use crate::helpers::{sid, Refresh, TestStorage};
use chrono::Duration;
use tessera::domain::authorization::AuthorizationGrant;
use tessera::domain::refresh::TokenFamily;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;

fn digest() -> SecretDigest {
    SecretDigest::of(&uuid::Uuid::new_v4().to_string())
}

async fn purging_goes_in_batches_per_table(db: &TestStorage) {
    let alice = db.a_user("alice").await;
    for _ in 0..5 {
        db.a_session(&alice).await; // ends at t(3600)
    }
    let live = digest();
    assert!(db.insert_session(&live, &new_session(&alice, t(100_000)), &alice.password_hash).await.unwrap());
    for jti in ["a", "b", "c"] {
        db.revoke_access_token(jti, t(600), &revoke(Reason::RevokedByClient, t(0))).await.unwrap();
    }

    let purged = [
        db.purge_expired(t(4000), 2).await.unwrap(),
        db.purge_expired(t(4000), 2).await.unwrap(),
        db.purge_expired(t(4000), 2).await.unwrap(),
        db.purge_expired(t(4000), 2).await.unwrap(),
    ];
    // Sessions and revoked tokens, two of each per call.
    assert_eq!(purged, [4, 3, 1, 0]);
    assert!(db.find_session(&live, t(4000), t(-1)).await.unwrap().is_some());
}

async fn purging_removes_only_what_nobody_can_use(db: &TestStorage) {
    // Purged at `now`; what was revoked or expired a day before `grace` goes too.
    let (now, grace) = (t(200_000), t(113_600));
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await; // ends at t(3600)

    let family = |absolute_expires_at| TokenFamily { absolute_expires_at, ..new_family(&client, &session) };
    let (expired, live, revoked_long_ago, revoked_lately) =
        (family(t(86_400)), family(t(300_000)), family(t(300_000)), family(t(300_000)));
    let live_token = new_token().1;
    db.create_family(&live, &live_token, t(3600)).await.unwrap();
    for family in [&expired, &revoked_long_ago, &revoked_lately] {
        db.create_family(family, &new_token().1, t(3600)).await.unwrap();
    }
    db.revoke_family(&revoked_long_ago.id, &revoke(Reason::RevokedByOperator, t(100))).await.unwrap();
    db.revoke_family(&revoked_lately.id, &revoke(Reason::RevokedByOperator, grace + Duration::seconds(1)))
        .await
        .unwrap();
    // Rotated with a ten-second window: its sealed successor is kept until t(20).
    db.rotate(&Refresh::of(&live_token, &client.id, t(10))).await;

    // Used codes (they are what a replay is recognised by), expiring before and after `grace`.
    let (old_code, new_code) = (digest(), digest());
    let lasting = AuthorizationGrant { expires_at: grace + Duration::seconds(1), ..new_grant(&client, &session) };
    for (code, grant) in [(&old_code, new_grant(&client, &session)), (&new_code, lasting)] {
        db.insert_code(code, &grant).await.unwrap();
        db.redeem_code(code, &presentation_of(&grant)).await.unwrap();
    }

    let (old_pending, new_pending_id) = (digest(), digest());
    db.insert_pending(&old_pending, &sid("sid-1"), &new_pending(&client, t(600))).await.unwrap();
    db.insert_pending(&new_pending_id, &sid("sid-2"), &new_pending(&client, t(300_000))).await.unwrap();
    db.revoke_access_token("expired", t(600), &revoke(Reason::RevokedByClient, t(0))).await.unwrap();
    db.revoke_access_token("lasting", t(300_000), &revoke(Reason::RevokedByClient, t(0))).await.unwrap();

    let window = Duration::minutes(10);
    for (subject, at) in [("idle", t(0)), ("locked", t(0)), ("recent", grace + Duration::seconds(1))] {
        assert!(db.reserve_attempt(subject, 5, at, at - window).await.unwrap());
        db.settle_failure(subject).await.unwrap();
    }
    db.lock("locked", t(300_000)).await.unwrap();

    // One of each: the sealed successor, the expired and the long-revoked family, the old
    // code, the old pending request, the session, the expired revocation, the idle throttle.
    assert_eq!(db.purge_expired(now, 100).await.unwrap(), 8);
    assert_eq!(db.purge_expired(now, 100).await.unwrap(), 0);

    assert!(db.find_family(&expired.id).await.unwrap().is_none());
    assert!(db.find_family(&revoked_long_ago.id).await.unwrap().is_none());
    assert!(db.find_family(&revoked_lately.id).await.unwrap().is_some());
    assert!(db.find_family(&live.id).await.unwrap().is_some());
    assert!(db.revoke_replayed_code(&old_code, &revoke(Reason::CodeReplayed, now)).await.unwrap().is_none());
    assert!(db.revoke_replayed_code(&new_code, &revoke(Reason::CodeReplayed, now)).await.unwrap().is_some());
    assert!(db.claim_pending(&old_pending, &sid("sid-1"), t(10)).await.unwrap().is_none());
    assert!(db.claim_pending(&new_pending_id, &sid("sid-2"), t(10)).await.unwrap().is_some());
    assert!(db.jti_stands("expired", &client).await, "its revocation expired with it");
    assert!(!db.jti_stands("lasting", &client).await);
    assert_eq!(db.settle_failure("idle").await.unwrap(), 0, "no row left to count on");
    assert_eq!(db.settle_failure("locked").await.unwrap(), 2);
    assert_eq!(db.settle_failure("recent").await.unwrap(), 2);
    // The sealed successor was wiped: a presentation dated inside the old window is no
    // longer answered with it, and is reuse.
    assert_eq!(outcome(&db.rotate(&Refresh::of(&live_token, &client.id, t(15))).await), "reused");
}

crate::backend_tests!(purging_goes_in_batches_per_table, purging_removes_only_what_nobody_can_use);
