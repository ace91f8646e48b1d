//! `AccessTokenStore`: an opaque access token's record reads back exactly as written,
//! only under its own digest and only until it expires, and housekeeping deletes it after.

use crate::helpers::{race, revoke, t, TestStorage, RACERS};
use tessera::domain::access_token::OpaqueAccessToken;
use tessera::domain::client::{Client, ClientId};
use tessera::domain::refresh::FamilyId;
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;
use tessera::domain::user::UserId;
use tessera::storage::TokenStanding;

fn record(client: &Client, jti: &str, expires_at: i64) -> OpaqueAccessToken {
    OpaqueAccessToken {
        jti: jti.into(),
        client_id: client.id.clone(),
        subject: "user-1".into(),
        scope: ScopeSet::parse("openid invoices:read").unwrap(),
        audiences: vec!["https://api.example.com".into(), "https://billing.example.com".into()],
        sid: Some("sid-1".into()),
        auth_time: Some(t(-30)),
        family_id: Some("family-1".into()),
        dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiGuA4I".into()),
        issued_at: t(0),
        expires_at: t(expires_at),
    }
}

async fn a_record_reads_back_as_written_until_it_expires(db: &TestStorage) {
    let client = db.a_client().await;
    let digest = SecretDigest::of("tat_one");
    let written = record(&client, "jti-1", 300);
    db.insert_opaque_access_token(&digest, &written).await.unwrap();
    assert_eq!(db.find_opaque_access_token(&digest, t(299)).await.unwrap(), Some(written));
    assert_eq!(db.find_opaque_access_token(&digest, t(300)).await.unwrap(), None, "expired at exp");
    assert_eq!(db.find_opaque_access_token(&SecretDigest::of("tat_two"), t(1)).await.unwrap(), None);

    // A client's token without the optional members.
    let bare = OpaqueAccessToken {
        sid: None,
        auth_time: None,
        family_id: None,
        dpop_jkt: None,
        scope: ScopeSet::parse("").unwrap(),
        audiences: vec!["https://issuer.example".into()],
        ..record(&client, "jti-2", 300)
    };
    let digest = SecretDigest::of("tat_bare");
    db.insert_opaque_access_token(&digest, &bare).await.unwrap();
    assert_eq!(db.find_opaque_access_token(&digest, t(1)).await.unwrap(), Some(bare));
}

async fn concurrent_issuance_stores_every_token(db: &TestStorage) {
    let client = db.a_client().await;
    let digests: Vec<SecretDigest> = (0..RACERS).map(|i| SecretDigest::of(&format!("tat_{i}"))).collect();
    let records: Vec<OpaqueAccessToken> = (0..RACERS).map(|i| record(&client, &format!("jti-{i}"), 300)).collect();
    let outcomes = race(digests.iter().zip(&records).map(|(d, r)| db.insert_opaque_access_token(d, r))).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for (digest, written) in digests.iter().zip(&records) {
        assert_eq!(db.find_opaque_access_token(digest, t(1)).await.unwrap().as_ref(), Some(written));
    }
}

async fn expired_records_are_purged_in_batches_and_live_ones_stay(db: &TestStorage) {
    let client = db.a_client().await;
    for i in 0..3 {
        db.insert_opaque_access_token(
            &SecretDigest::of(&format!("tat_old{i}")),
            &record(&client, &format!("o{i}"), 60),
        )
        .await
        .unwrap();
    }
    let live = SecretDigest::of("tat_live");
    db.insert_opaque_access_token(&live, &record(&client, "live", 600)).await.unwrap();
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 2);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 1);
    assert_eq!(db.purge_expired(t(100), 2).await.unwrap(), 0);
    assert!(db.find_opaque_access_token(&live, t(100)).await.unwrap().is_some(), "the live record stays");
}

/// `access_token_standing`: one statement says whether anything behind a token ended.
async fn a_tokens_standing_follows_everything_behind_it(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, _) = db.a_family(&client, &session).await;
    let standing = |jti: &'static str, family: Option<FamilyId>, client: ClientId, user: Option<UserId>| {
        let sid = session.sid.as_str().to_owned();
        async move {
            let standing = TokenStanding {
                jti,
                family: family.as_ref(),
                client: &client,
                user: user.as_ref(),
                sid: user.as_ref().map(|_| sid.as_str()),
            };
            db.access_token_standing(&standing).await.unwrap()
        }
    };
    let (fid, cid, uid) = (family.id.clone(), client.id.clone(), alice.id.clone());
    assert!(standing("j1", Some(fid.clone()), cid.clone(), Some(uid.clone())).await, "a user's token");
    assert!(standing("j1", None, cid.clone(), None).await, "a client's own token");
    assert!(!standing("j1", Some(FamilyId::generate()), cid.clone(), Some(uid.clone())).await, "no such family");
    assert!(!standing("j1", None, ClientId::generate(), None).await, "no such client");
    assert!(!standing("j1", None, cid.clone(), Some(UserId::generate())).await, "no such user");

    db.revoke_access_token("j2", t(600), &revoke(Reason::RevokedByClient, t(1))).await.unwrap();
    assert!(!standing("j2", None, cid.clone(), None).await, "its jti revoked");
    assert!(standing("j1", None, cid.clone(), None).await, "another jti");

    db.revoke_family(&fid, &revoke(Reason::RevokedByClient, t(1))).await.unwrap();
    assert!(!standing("j1", Some(fid.clone()), cid.clone(), Some(uid.clone())).await, "its family revoked");
    assert!(standing("j1", None, cid.clone(), Some(uid.clone())).await, "a token of no family");

    db.disable_user(&uid, &revoke(Reason::UserDisabled, t(2))).await.unwrap();
    assert!(!standing("j1", None, cid.clone(), Some(uid.clone())).await, "its user disabled");
    assert!(standing("j1", None, cid.clone(), None).await, "the client's own token has no user");

    db.disable_client(&cid, &revoke(Reason::ClientDisabled, t(3))).await.unwrap();
    assert!(!standing("j1", None, cid, None).await, "its client disabled");
}

/// Standing checks made at once, of the four shapes tokens have (a client's own; a user's
/// with a family; with a session; with neither) and of every reason to end, each get
/// their own answer (on PostgreSQL they share statements: a mix-up of places or of a
/// shape's test would cross the answers).
async fn concurrent_standing_checks_each_get_their_own_answer(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, _) = db.a_family(&client, &session).await;
    let (revoked_family, _) = db.a_family(&client, &session).await;
    db.revoke_family(&revoked_family.id, &revoke(Reason::RevokedByClient, t(1))).await.unwrap();
    db.revoke_access_token("revoked", t(600), &revoke(Reason::RevokedByClient, t(1))).await.unwrap();
    let (stranger, nobody) = (ClientId::generate(), UserId::generate());
    let disabled_client = db.a_client().await;
    db.disable_client(&disabled_client.id, &revoke(Reason::ClientDisabled, t(1))).await.unwrap();
    let bob = db.a_user("bob").await;
    db.disable_user(&bob.id, &revoke(Reason::UserDisabled, t(1))).await.unwrap();
    let sid = session.sid.as_str();
    let token = |jti, family, client, user, sid| TokenStanding { jti, family, client, user, sid };
    let cases = [
        (token("j", Some(&family.id), &client.id, Some(&alice.id), None), true),
        (token("j", None, &client.id, None, None), true),
        (token("j", None, &client.id, Some(&alice.id), Some(sid)), true),
        (token("revoked", None, &client.id, None, None), false),
        (token("j", Some(&revoked_family.id), &client.id, Some(&alice.id), None), false),
        (token("j", None, &stranger, None, None), false),
        (token("j", None, &client.id, Some(&nobody), None), false),
        (token("j", None, &client.id, Some(&alice.id), Some("no-such-session")), false),
        (token("j", None, &disabled_client.id, None, None), false),
        (token("j", None, &client.id, Some(&bob.id), None), false),
    ];
    for _ in 0..3 {
        let answers = race((0..RACERS).map(|i| {
            let (token, _) = &cases[i % cases.len()];
            async move { db.access_token_standing(token).await.unwrap() }
        }))
        .await;
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer, cases[i % cases.len()].1, "case {}", i % cases.len());
        }
    }
}

/// A user's token without a family stands while its SSO session exists, and ends with it.
async fn a_tokens_standing_follows_its_session(db: &TestStorage) {
    let client = db.a_client().await;
    let bob = db.a_user("bob").await;
    let (id, session) = db.a_session(&bob).await;
    let standing = |sid: String| {
        let (client, user) = (&client.id, &bob.id);
        async move {
            let token = TokenStanding { jti: "j", family: None, client, user: Some(user), sid: Some(&sid) };
            db.access_token_standing(&token).await.unwrap()
        }
    };
    assert!(standing(session.sid.as_str().to_owned()).await);
    assert!(!standing("no-such-session".into()).await);
    db.end_session(&id, &revoke(Reason::Logout, t(5))).await.unwrap();
    assert!(!standing(session.sid.as_str().to_owned()).await, "logged out");
}

crate::backend_tests!(
    a_tokens_standing_follows_everything_behind_it,
    concurrent_standing_checks_each_get_their_own_answer,
    a_tokens_standing_follows_its_session,
    a_record_reads_back_as_written_until_it_expires,
    concurrent_issuance_stores_every_token,
    expired_records_are_purged_in_batches_and_live_ones_stay,
);
