//! `AccessTokenStore`: an opaque access token's record reads back exactly as written,
//! only under its own digest and only until it expires, and housekeeping deletes it after.

use crate::helpers::{race, t, TestStorage, RACERS};
use tessera::domain::access_token::OpaqueAccessToken;
use tessera::domain::client::Client;
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;

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

crate::backend_tests!(
    a_record_reads_back_as_written_until_it_expires,
    concurrent_issuance_stores_every_token,
    expired_records_are_purged_in_batches_and_live_ones_stay,
);
