//! `GrantStore`: authorization codes, redeemed once by exactly the presentation they
//! were issued for (RFC 6749 §4.1.2, §4.1.3; RFC 7636 §4.6), replays told apart and
//! ordered against the family a redemption starts; revoked access tokens.

use crate::helpers::{
    assert_same, challenge, new_family, new_token, presentation_of, race, revoke, t, TestStorage, RACERS,
};
use tessera::domain::authorization::{CodePresentation, CodeRedemption};
use tessera::domain::client::ClientId;
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;

/// The outcome's name, for assertions over many.
fn outcome(redemption: &CodeRedemption) -> &'static str {
    match redemption {
        CodeRedemption::Redeemed(_) => "redeemed",
        CodeRedemption::Replayed { is_owners: true, .. } => "replayed by its owner",
        CodeRedemption::Replayed { is_owners: false, .. } => "replayed by another",
        CodeRedemption::WrongClient => "wrong client",
        CodeRedemption::WrongRedirectUri => "wrong redirect uri",
        CodeRedemption::WrongVerifier => "wrong verifier",
        CodeRedemption::SessionEnded => "session ended",
        CodeRedemption::Invalid => "invalid",
    }
}

async fn a_code_is_redeemed_once_and_a_replay_is_told_apart(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (code, grant) = db.a_code(&client, &session).await;
    let presented = presentation_of(&grant);

    let CodeRedemption::Redeemed(redeemed) = db.redeem_code(&code, &presented).await.unwrap() else {
        panic!("the first presentation redeems")
    };
    assert_same(&redeemed, &grant);

    let again = db.redeem_code(&code, &CodePresentation { now: t(11), ..presented.clone() }).await.unwrap();
    let CodeRedemption::Replayed { owner, is_owners } = again else { panic!("{again:?}") };
    assert_eq!((owner, is_owners), (client.id.clone(), true));
    let foreign = CodePresentation { client_id: ClientId::generate(), ..presented };
    assert_eq!(outcome(&db.redeem_code(&code, &foreign).await.unwrap()), "replayed by another");
}

async fn a_wrong_presentation_changes_nothing(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (code, grant) = db.a_code(&client, &session).await;
    let presented = presentation_of(&grant);

    let wrong = [
        (CodePresentation { client_id: ClientId::generate(), ..presented.clone() }, "wrong client"),
        (
            CodePresentation { redirect_uri: "https://evil.example/cb".into(), ..presented.clone() },
            "wrong redirect uri",
        ),
        (CodePresentation { code_challenge: challenge(&"x".repeat(43)), ..presented.clone() }, "wrong verifier"),
    ];
    for (presentation, expected) in wrong {
        assert_eq!(outcome(&db.redeem_code(&code, &presentation).await.unwrap()), expected);
    }
    assert!(
        db.revoke_replayed_code(&code, &revoke(Reason::CodeReplayed, t(10))).await.unwrap().is_none(),
        "still unused"
    );
    assert_eq!(outcome(&db.redeem_code(&code, &presented).await.unwrap()), "redeemed");
}

async fn an_expired_or_unknown_code_is_invalid(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (code, grant) = db.a_code(&client, &session).await; // expires at t(600)

    let late = CodePresentation { now: t(600), ..presentation_of(&grant) };
    assert_eq!(outcome(&db.redeem_code(&code, &late).await.unwrap()), "invalid");
    let unknown = SecretDigest::of("no such code");
    assert_eq!(outcome(&db.redeem_code(&unknown, &presentation_of(&grant)).await.unwrap()), "invalid");
    assert_eq!(outcome(&db.redeem_code(&code, &presentation_of(&grant)).await.unwrap()), "redeemed");
}

async fn a_code_dies_with_its_session_or_a_credential_change(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let carol = db.a_user("carol").await;

    // Each of these ends the session and deletes the unused code in its cascade; the
    // redemption's own check (a live session, unchanged credentials) is what refuses a code
    // a cascade missed (the API's `attacks/stale_codes.rs` takes the cascade away).
    // Logout.
    let (id, session) = db.a_session(&alice).await;
    let (ended, grant) = db.a_code(&client, &session).await;
    db.end_session(&id, &revoke(Reason::Logout, t(1))).await.unwrap();
    assert_eq!(outcome(&db.redeem_code(&ended, &presentation_of(&grant)).await.unwrap()), "invalid");

    // The user disabled.
    let (_, session) = db.a_session(&bob).await;
    let (disabled, grant) = db.a_code(&client, &session).await;
    db.disable_user(&bob.id, &revoke(Reason::UserDisabled, t(5))).await.unwrap();
    assert_eq!(outcome(&db.redeem_code(&disabled, &presentation_of(&grant)).await.unwrap()), "invalid");

    // The password changed after the code was issued (at t(0)).
    let (_, session) = db.a_session(&carol).await;
    let (changed, grant) = db.a_code(&client, &session).await;
    db.set_password_hash(&carol.id, "$argon2id$new", &revoke(Reason::PasswordChanged, t(5))).await.unwrap();
    assert_eq!(outcome(&db.redeem_code(&changed, &presentation_of(&grant)).await.unwrap()), "invalid");
}

async fn of_many_concurrent_redemptions_of_a_code_one_wins(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (code, grant) = db.a_code(&client, &session).await;
    let presentations: Vec<CodePresentation> = (0..RACERS).map(|_| presentation_of(&grant)).collect();

    let redemptions = race(presentations.iter().map(|p| db.redeem_code(&code, p))).await;
    let mut outcomes: Vec<&str> = redemptions.iter().map(|r| outcome(r.as_ref().unwrap())).collect();
    outcomes.sort_unstable();
    let mut expected = vec!["replayed by its owner"; RACERS - 1];
    expected.insert(0, "redeemed");
    assert_eq!(outcomes, expected);

    // The winner's access token is the one a replay revokes.
    let winner = redemptions.iter().position(|r| matches!(r, Ok(CodeRedemption::Redeemed(_)))).unwrap();
    let tokens =
        db.revoke_replayed_code(&code, &revoke(Reason::CodeReplayed, t(20))).await.unwrap().expect("a used code");
    assert_eq!(tokens.access_token_jti.as_deref(), Some(presentations[winner].access_token_jti.as_str()));
}

async fn a_replay_finds_what_the_redemption_issued(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (code, grant) = db.a_code(&client, &session).await;
    let presented = presentation_of(&grant);
    db.redeem_code(&code, &presented).await.unwrap();

    let tokens =
        db.revoke_replayed_code(&code, &revoke(Reason::CodeReplayed, t(20))).await.unwrap().expect("a used code");
    assert_eq!(tokens.access_token_jti.as_deref(), Some(presented.access_token_jti.as_str()));
    assert_eq!(tokens.access_token_expires_at, Some(presented.access_token_expires_at));
    assert_eq!(tokens.family_id, None, "no family was created");
}

async fn a_family_is_created_for_a_redeemed_code_unless_it_was_replayed(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;

    let (code, grant) = db.a_code(&client, &session).await;
    db.redeem_code(&code, &presentation_of(&grant)).await.unwrap();
    let family = new_family(&client, &session);
    assert!(db.create_family_for_code(&code, &family, &new_token().1, t(3600)).await.unwrap());
    assert_same(&db.find_family(&family.id).await.unwrap().expect("created"), &family);
    let tokens = db.revoke_replayed_code(&code, &revoke(Reason::CodeReplayed, t(20))).await.unwrap().unwrap();
    assert_eq!(tokens.family_id.as_ref(), Some(&family.id));

    let (replayed, grant) = db.a_code(&client, &session).await;
    db.redeem_code(&replayed, &presentation_of(&grant)).await.unwrap();
    db.revoke_replayed_code(&replayed, &revoke(Reason::CodeReplayed, t(20))).await.unwrap();
    let family = new_family(&client, &session);
    assert!(!db.create_family_for_code(&replayed, &family, &new_token().1, t(3600)).await.unwrap());
    assert!(db.find_family(&family.id).await.unwrap().is_none());
}

async fn a_replay_racing_the_familys_creation_finds_it_or_prevents_it(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    for _ in 0..RACERS {
        let (code, grant) = db.a_code(&client, &session).await;
        db.redeem_code(&code, &presentation_of(&grant)).await.unwrap();
        let family = new_family(&client, &session);
        let token = new_token().1;

        let (replay, created) = futures_util::future::join(
            db.revoke_replayed_code(&code, &revoke(Reason::CodeReplayed, t(20))),
            db.create_family_for_code(&code, &family, &token, t(3600)),
        )
        .await;
        let (found, created) = (replay.unwrap().unwrap().family_id, created.unwrap());
        let exists = db.find_family(&family.id).await.unwrap().is_some();
        assert_eq!(exists, created);
        assert!(!created || found.as_ref() == Some(&family.id), "a family the replay did not see");
    }
}

async fn the_unused_codes_of_a_user_or_session_are_deleted(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let (_, first) = db.a_session(&alice).await;
    let (second_id, second) = db.a_session(&alice).await;
    let (_, bobs) = db.a_session(&bob).await;
    let (used, grant) = db.a_code(&client, &first).await;
    db.redeem_code(&used, &presentation_of(&grant)).await.unwrap();
    let (in_first, grant_in_first) = db.a_code(&client, &first).await;
    let (in_second, _) = db.a_code(&client, &second).await;
    let (also_in_second, _) = db.a_code(&client, &second).await;
    let (of_bob, grant_of_bob) = db.a_code(&client, &bobs).await;

    // A logout ends the session's unused codes...
    db.end_session(&second_id, &revoke(Reason::Logout, t(5))).await.unwrap().expect("the session");
    for gone in [&in_second, &also_in_second] {
        assert_eq!(outcome(&db.redeem_code(gone, &presentation_of(&grant)).await.unwrap()), "invalid");
    }
    // ...and ending a user's access all of theirs.
    db.end_user_access(&alice.id, &revoke(Reason::RevokedByOperator, t(6))).await.unwrap();
    assert_eq!(outcome(&db.redeem_code(&in_first, &presentation_of(&grant_in_first)).await.unwrap()), "invalid");
    assert!(
        db.revoke_replayed_code(&used, &revoke(Reason::CodeReplayed, t(20))).await.unwrap().is_some(),
        "the used code stays"
    );
    assert_eq!(outcome(&db.redeem_code(&of_bob, &presentation_of(&grant_of_bob)).await.unwrap()), "redeemed");
}

async fn a_revoked_access_token_stays_revoked(db: &TestStorage) {
    let client = db.a_client().await;
    assert!(db.jti_stands("jti-1", &client).await);
    assert!(db.revoke_access_token("jti-1", t(300), &revoke(Reason::RevokedByClient, t(0))).await.unwrap());
    // Revoking twice is no error, and changes nothing.
    assert!(!db.revoke_access_token("jti-1", t(300), &revoke(Reason::RevokedByClient, t(0))).await.unwrap());
    assert!(!db.jti_stands("jti-1", &client).await);
    assert!(db.jti_stands("jti-2", &client).await);
}

crate::backend_tests!(
    a_code_is_redeemed_once_and_a_replay_is_told_apart,
    a_wrong_presentation_changes_nothing,
    an_expired_or_unknown_code_is_invalid,
    a_code_dies_with_its_session_or_a_credential_change,
    of_many_concurrent_redemptions_of_a_code_one_wins,
    a_replay_finds_what_the_redemption_issued,
    a_family_is_created_for_a_redeemed_code_unless_it_was_replayed,
    a_replay_racing_the_familys_creation_finds_it_or_prevents_it,
    the_unused_codes_of_a_user_or_session_are_deleted,
    a_revoked_access_token_stays_revoked,
);
