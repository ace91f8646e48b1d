//! `RefreshStore`: token families and their rotation (RFC 6749 §6, RFC 9700 §4.14.2):
//! one winner among concurrent presentations, a retry inside the window answered with
//! the same successor, reuse revoking the family, and every refusal changing nothing.

use crate::helpers::{
    assert_same, new_family, new_token, outcome, race, revoke, scope, t, Refresh, TestStorage, RACERS,
};
use chrono::Duration;
use tessera::domain::client::ClientId;
use tessera::domain::refresh::{FamilyId, Rotation, TokenFamily};
use tessera::domain::secret::SecretDigest;
use tessera::domain::signals::Reason;

async fn used_at(db: &TestStorage, token: &SecretDigest) -> Option<chrono::DateTime<chrono::Utc>> {
    db.find_refresh_token(token).await.unwrap().expect("a stored token").0.used_at
}

async fn a_family_and_its_first_token_read_back(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;

    assert_same(&db.find_family(&family.id).await.unwrap().expect("by id"), &family);
    let (state, of) = db.find_refresh_token(&token).await.unwrap().expect("by token");
    assert_eq!((state.created_at, state.idle_expires_at, state.used_at), (t(0), t(3600), None));
    assert_same(&of, &family);
    assert!(db.find_family(&FamilyId::parse("no-such-family").unwrap()).await.unwrap().is_none());
    assert!(db.find_refresh_token(&SecretDigest::of("no such token")).await.unwrap().is_none());
}

async fn a_users_families_are_listed_oldest_first(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let (_, session) = db.a_session(&alice).await;
    let (_, bobs) = db.a_session(&bob).await;
    let newer = TokenFamily { created_at: t(60), last_used_at: t(60), ..new_family(&client, &session) };
    let older = new_family(&client, &session);
    for family in [&newer, &older, &new_family(&client, &bobs)] {
        db.create_family(family, &new_token().1, t(3600)).await.unwrap();
    }

    let listed = db.list_families_of_user(&alice.id, 100).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_same(&listed[0], &older);
    assert_same(&listed[1], &newer);
    let newest = db.list_families_of_user(&alice.id, 1).await.unwrap();
    assert_eq!(newest.len(), 1, "bounded: the newest only");
    assert_same(&newest[0], &newer);
}

async fn the_first_use_rotates_to_the_successor(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;
    let first = Refresh::of(&token, &client.id, t(10));

    let Rotation::Rotated(rotated) = db.rotate(&first).await else { panic!("the first use rotates") };
    assert_eq!(rotated.id, family.id);
    assert_eq!(used_at(db, &token).await, Some(t(10)));
    let (successor, _) = db.find_refresh_token(&first.successor_digest()).await.unwrap().expect("the successor");
    assert_eq!((successor.created_at, successor.idle_expires_at, successor.used_at), (t(10), t(3610), None));
    // A family's last use is its newest token's.
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().last_used_at, t(10));
    assert_eq!(db.list_families_of_user(&alice.id, 100).await.unwrap()[0].last_used_at, t(10));

    // The successor rotates in turn; its idle expiry is capped at the family's end.
    let second = Refresh { idle_ttl: Duration::days(30), ..Refresh::of(&first.successor_digest(), &client.id, t(20)) };
    assert_eq!(outcome(&db.rotate(&second).await), "rotated");
    let (next, _) = db.find_refresh_token(&second.successor_digest()).await.unwrap().unwrap();
    assert_eq!(next.idle_expires_at, family.absolute_expires_at);
}

async fn a_retry_inside_the_window_gets_the_same_successor(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;
    let first = Refresh::of(&token, &client.id, t(10)); // window: until t(20)
    db.rotate(&first).await;

    let retry = Refresh::of(&token, &client.id, t(19));
    let Rotation::Retried { family: retried, successor_sealed } = db.rotate(&retry).await else {
        panic!("a retry inside the window")
    };
    assert_eq!((retried.id, successor_sealed), (family.id.clone(), first.sealed.clone()));
    assert!(db.find_refresh_token(&retry.successor_digest()).await.unwrap().is_none(), "nothing new issued");
    assert!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at.is_none());
}

async fn reuse_revokes_the_family(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;

    // After the window.
    let (family, token) = db.a_family(&client, &session).await;
    let first = Refresh::of(&token, &client.id, t(10));
    db.rotate(&first).await;
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(20))).await), "reused");
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at, Some(t(20)));
    let successor = Refresh::of(&first.successor_digest(), &client.id, t(21));
    assert_eq!(outcome(&db.rotate(&successor).await), "invalid", "the whole family is revoked");

    // Inside the window, once the successor was used: the client had it.
    let (family, token) = db.a_family(&client, &session).await;
    let first = Refresh::of(&token, &client.id, t(10));
    db.rotate(&first).await;
    db.rotate(&Refresh::of(&first.successor_digest(), &client.id, t(12))).await;
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(15))).await), "reused");
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at, Some(t(15)));
}

async fn a_refused_presentation_changes_nothing(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;

    let refused = [
        (Refresh::of(&token, &ClientId::generate(), t(10)), "invalid"),
        (Refresh { scope: Some(scope("openid admin")), ..Refresh::of(&token, &client.id, t(10)) }, "scope exceeded"),
        (Refresh::of(&token, &client.id, t(3600)), "invalid"), // idle-expired
        (Refresh::of(&SecretDigest::of("no such token"), &client.id, t(10)), "invalid"),
    ];
    for (refresh, expected) in &refused {
        assert_eq!(outcome(&db.rotate(refresh).await), *expected);
        assert!(db.find_refresh_token(&refresh.successor_digest()).await.unwrap().is_none());
    }
    assert_eq!(used_at(db, &token).await, None);
    assert!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at.is_none());

    let narrower = Refresh { scope: Some(scope("api")), ..Refresh::of(&token, &client.id, t(10)) };
    assert_eq!(outcome(&db.rotate(&narrower).await), "rotated");
}

async fn a_dead_family_or_a_disabled_user_refreshes_nothing(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;

    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;
    db.revoke_family(&family.id, &revoke(Reason::RevokedByOperator, t(5))).await.unwrap();
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(10))).await), "invalid");
    assert_eq!(used_at(db, &token).await, None);

    let (_, session) = db.a_session(&bob).await;
    let (_, token) = db.a_family(&client, &session).await;
    db.disable_user(&bob.id, &revoke(Reason::UserDisabled, t(5))).await.unwrap();
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(10))).await), "invalid");
    assert_eq!(used_at(db, &token).await, None);
}

/// A family whose creation raced a password change (a code redeemed while `set-password`
/// committed, so the change's cascade did not see it) still refreshes nothing: its login
/// predates the user's new credentials.
async fn a_family_from_before_a_credentials_change_refreshes_nothing(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    assert!(db.set_password_hash(&alice.id, "$argon2id$new", &revoke(Reason::PasswordChanged, t(5))).await.unwrap());
    let (raced, token) = db.a_family(&client, &session).await; // auth_time t(0), after the cascade
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(10))).await), "invalid");
    assert_eq!(used_at(db, &token).await, None);

    // A login after the change refreshes as usual.
    let after = TokenFamily { auth_time: t(6), ..new_family(&client, &session) };
    let (_, token) = new_token();
    db.create_family(&after, &token, t(3600)).await.unwrap();
    assert_eq!(outcome(&db.rotate(&Refresh::of(&token, &client.id, t(10))).await), "rotated");
    assert!(db.find_family(&raced.id).await.unwrap().unwrap().revoked_at.is_none(), "refused, not revoked");
}

async fn of_many_concurrent_presentations_one_rotates_and_the_rest_retry(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;
    let presentations: Vec<Refresh> = (0..RACERS).map(|_| Refresh::of(&token, &client.id, t(10))).collect();

    let rotations = race(presentations.iter().map(|p| db.rotate(p))).await;
    let winners: Vec<usize> = (0..RACERS).filter(|&i| matches!(rotations[i], Rotation::Rotated(_))).collect();
    assert_eq!(winners.len(), 1, "{:?}", rotations.iter().map(outcome).collect::<Vec<_>>());
    let winner = &presentations[winners[0]];
    for (i, rotation) in rotations.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
        let Rotation::Retried { successor_sealed, .. } = rotation else { panic!("{i}: {}", outcome(rotation)) };
        assert_eq!(successor_sealed, &winner.sealed, "every retry answers with the winner's successor");
    }
    for (i, p) in presentations.iter().enumerate() {
        assert_eq!(db.find_refresh_token(&p.successor_digest()).await.unwrap().is_some(), i == winners[0]);
    }
    assert!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at.is_none());
}

async fn without_a_window_concurrent_presentations_are_reuse(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, token) = db.a_family(&client, &session).await;
    let presentations: Vec<Refresh> = (0..RACERS)
        .map(|_| Refresh { retry_window: Duration::zero(), ..Refresh::of(&token, &client.id, t(10)) })
        .collect();

    let rotations = race(presentations.iter().map(|p| db.rotate(p))).await;
    let outcomes: Vec<&str> = rotations.iter().map(outcome).collect();
    let count = |name: &str| outcomes.iter().filter(|o| **o == name).count();
    // The first to find the token used revokes the family; those that find it revoked
    // already are refused as presenting a dead family's token.
    assert_eq!(count("rotated"), 1, "{outcomes:?}");
    assert!(count("reused") >= 1, "{outcomes:?}");
    assert_eq!(count("rotated") + count("reused") + count("invalid"), RACERS, "{outcomes:?}");
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at, Some(t(10)));
}

async fn a_family_is_revoked_once(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (family, _) = db.a_family(&client, &session).await;

    assert!(db.revoke_family(&family.id, &revoke(Reason::RevokedByOperator, t(50))).await.unwrap());
    assert!(!db.revoke_family(&family.id, &revoke(Reason::RevokedByOperator, t(60))).await.unwrap());
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at, Some(t(50)));
    assert!(!db
        .revoke_family(&FamilyId::parse("no-such-family").unwrap(), &revoke(Reason::RevokedByOperator, t(60)))
        .await
        .unwrap());
}

async fn the_live_families_of_a_user_or_session_are_revoked(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let bob = db.a_user("bob").await;
    let (first_id, first) = db.a_session(&alice).await;
    let (_, second) = db.a_session(&alice).await;
    let (_, bobs) = db.a_session(&bob).await;
    let (in_first, _) = db.a_family(&client, &first).await;
    let (also_in_first, _) = db.a_family(&client, &first).await;
    let (in_second, _) = db.a_family(&client, &second).await;
    let (already, _) = db.a_family(&client, &first).await;
    let (of_bob, _) = db.a_family(&client, &bobs).await;
    db.revoke_family(&already.id, &revoke(Reason::RevokedByOperator, t(5))).await.unwrap();

    db.end_session(&first_id, &revoke(Reason::Logout, t(10))).await.unwrap().expect("the session");
    let revoked_at = |family: TokenFamily| async move { db.find_family(&family.id).await.unwrap().unwrap().revoked_at };
    assert_eq!(revoked_at(in_first.clone()).await, Some(t(10)));
    assert_eq!(revoked_at(also_in_first).await, Some(t(10)));
    assert_eq!(revoked_at(in_second.clone()).await, None);

    assert_eq!(db.end_user_access(&alice.id, &revoke(Reason::RevokedByOperator, t(20))).await.unwrap(), 1);
    assert_eq!(revoked_at(in_second).await, Some(t(20)));
    assert_eq!(revoked_at(in_first).await, Some(t(10)), "a revocation is not moved");
    assert_eq!(revoked_at(already).await, Some(t(5)));
    assert_eq!(revoked_at(of_bob).await, None);
}

/// RFC 9449 §5: a family bound to a DPoP key rotates only for a presentation with that
/// key; any other changes nothing, and a used token without the key is not reuse.
async fn a_bound_family_rotates_only_with_its_key(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let family = TokenFamily { dpop_jkt: Some("key-one".into()), ..new_family(&client, &session) };
    let (_, token) = new_token();
    db.create_family(&family, &token, t(3600)).await.unwrap();
    assert_eq!(db.find_family(&family.id).await.unwrap().unwrap().dpop_jkt.as_deref(), Some("key-one"));

    let with = |jkt: Option<&str>, token: &SecretDigest, at| Refresh {
        dpop_jkt: jkt.map(str::to_owned),
        retry_window: Duration::zero(),
        ..Refresh::of(token, &client.id, at)
    };
    for refused in [with(None, &token, t(10)), with(Some("key-two"), &token, t(10))] {
        assert_eq!(outcome(&db.rotate(&refused).await), "wrong DPoP key");
        assert!(db.find_refresh_token(&refused.successor_digest()).await.unwrap().is_none());
    }
    assert_eq!(used_at(db, &token).await, None, "not rotated");

    let first = with(Some("key-one"), &token, t(10));
    assert_eq!(outcome(&db.rotate(&first).await), "rotated");
    // The used token again, without the key: refused, and not reuse (the family lives).
    assert_eq!(outcome(&db.rotate(&with(Some("key-two"), &token, t(20))).await), "wrong DPoP key");
    assert_eq!(outcome(&db.rotate(&with(None, &token, t(20))).await), "wrong DPoP key");
    assert!(db.find_family(&family.id).await.unwrap().unwrap().revoked_at.is_none());
    // With the key, it is reuse as ever.
    assert_eq!(outcome(&db.rotate(&with(Some("key-one"), &token, t(20))).await), "reused");
}

/// A rotation whose successor cannot be stored (here: its digest is taken, as a full disk
/// would refuse it) fails as a whole: the presented token stays unused, and the next
/// write, the same rotation with another successor, goes through. On SQLite this is the
/// one-round-trip transaction stopping between its statements.
async fn a_rotation_that_fails_halfway_changes_nothing(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let (_, token) = db.a_family(&client, &session).await;
    let doomed = Refresh::of(&token, &client.id, t(10));
    let taken = SecretDigest::of(&doomed.successor);
    db.create_family(&new_family(&client, &session), &taken, t(3600)).await.unwrap();

    assert!(db.rotate_refresh_token(&doomed.request()).await.is_err(), "the successor's insert fails");
    assert_eq!(used_at(db, &token).await, None, "the claim was rolled back with it");
    let Rotation::Rotated(_) = db.rotate(&Refresh::of(&token, &client.id, t(11))).await else {
        panic!("the writer is free, and the token still rotates")
    };
    assert_eq!(used_at(db, &token).await, Some(t(11)));
}

/// On SQLite concurrent rotations go to the writer together, as one transaction: one of
/// them failing must fail alone, and the rest rotate.
async fn among_concurrent_rotations_one_failing_halfway_fails_alone(db: &TestStorage) {
    let client = db.a_client().await;
    let alice = db.a_user("alice").await;
    let (_, session) = db.a_session(&alice).await;
    let mut tokens = Vec::new();
    for _ in 0..16 {
        tokens.push(db.a_family(&client, &session).await.1);
    }
    let refreshes: Vec<Refresh> = tokens.iter().map(|token| Refresh::of(token, &client.id, t(10))).collect();
    // The last one's successor is taken: queued behind the others, it shares their group.
    let doomed = refreshes.last().unwrap();
    db.create_family(&new_family(&client, &session), &doomed.successor_digest(), t(3600)).await.unwrap();

    let requests: Vec<_> = refreshes.iter().map(Refresh::request).collect();
    let outcomes = race(requests.iter().map(|request| db.rotate_refresh_token(request))).await;
    let (failed, rotated): (Vec<_>, Vec<_>) = outcomes.iter().partition(|outcome| outcome.is_err());
    assert_eq!(failed.len(), 1, "only the doomed rotation fails");
    assert!(outcomes.last().unwrap().is_err(), "and it is the doomed one");
    assert!(rotated.iter().all(|outcome| matches!(outcome, Ok(Rotation::Rotated(_)))), "the rest rotate");
    assert_eq!(used_at(db, &tokens[15]).await, None, "the doomed claim was rolled back");
    for token in &tokens[..15] {
        assert_eq!(used_at(db, token).await, Some(t(10)));
    }
}

crate::backend_tests!(
    among_concurrent_rotations_one_failing_halfway_fails_alone,
    a_rotation_that_fails_halfway_changes_nothing,
    a_bound_family_rotates_only_with_its_key,
    a_family_and_its_first_token_read_back,
    a_users_families_are_listed_oldest_first,
    the_first_use_rotates_to_the_successor,
    a_retry_inside_the_window_gets_the_same_successor,
    reuse_revokes_the_family,
    a_refused_presentation_changes_nothing,
    a_dead_family_or_a_disabled_user_refreshes_nothing,
    a_family_from_before_a_credentials_change_refreshes_nothing,
    of_many_concurrent_presentations_one_rotates_and_the_rest_retry,
    without_a_window_concurrent_presentations_are_reuse,
    a_family_is_revoked_once,
    the_live_families_of_a_user_or_session_are_revoked,
);
