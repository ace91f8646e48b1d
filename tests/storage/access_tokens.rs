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
    let standing = |jti: &'static str, family: Option<FamilyId>, client: ClientId, user: Option<UserId>| async move {
        db.access_token_standing(jti, family.as_ref(), &client, user.as_ref()).await.unwrap()
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

crate::backend_tests!(
    a_tokens_standing_follows_everything_behind_it,
    a_record_reads_back_as_written_until_it_expires,
    concurrent_issuance_stores_every_token,
    expired_records_are_purged_in_batches_and_live_ones_stay,
);
