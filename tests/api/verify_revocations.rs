//! Black box: tessera-verify with its `revocations` feature, an OpenID Shared Signals
//! receiver (SSF 1.0, poll delivery per RFC 8936), against the real Tessera — a resource
//! server that verifies tokens locally refuses exactly what Tessera revoked, within a
//! second, and refuses everything once it has lost the feed (fail closed).

use crate::helpers::cli::tessera;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::refresh_token;
use crate::helpers::{TestApp, TestDatabase};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime};
use tessera::clock::Clock;
use tessera_verify::{FailMode, Revocations, Verifier, VerifyError};

const AUDIENCE: &str = "https://api.example.com";
/// What a revocation may take to reach a verifier here; the target is a second (see
/// bench/README.md), the margin is for a loaded CI machine.
const REACH: Duration = Duration::from_secs(10);

/// A verifier with its own receiver client, on Tessera's (manual) clock.
async fn verifier(app: &TestApp, revocations: impl FnOnce(Revocations) -> Revocations) -> Verifier {
    let receiver = app.register_client(ClientSpec::receiver()).await;
    let clock = app.clock.clone();
    Verifier::builder(&app.address)
        .audience(AUDIENCE)
        .clock(move || SystemTime::from(clock.now()))
        .revocations(revocations(Revocations::poll(&receiver.id, receiver.secret())))
        .build()
        .await
        .expect("metadata, a receiver token and a stream")
}

fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("an access token")
}

/// Waits until `verifier` refuses `token` as revoked; how long that took.
async fn refused(verifier: &Verifier, token: &str) -> Duration {
    let started = Instant::now();
    let refusal = first_refusal(verifier, token).await;
    assert!(
        matches!(refusal, Some(VerifyError::Revoked)),
        "not refused as revoked after {:?}: {refusal:?}",
        started.elapsed()
    );
    started.elapsed()
}

async fn accepted(verifier: &Verifier, token: &str, what: &str) {
    if let Err(error) = verifier.verify(token).await {
        panic!("{what} must still verify: {error:?}");
    }
}

async fn a_revoked_family_is_refused_and_its_session_and_other_clients_are_not(app: &TestApp) {
    let verifier = verifier(app, |r| r).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let alice = app.create_user("alice").await;
    let first = app.offline_login(&client, &alice).await;
    let second = app.offline_login(&client, &alice).await; // the same session, another family
    let service = app.register_client(ClientSpec::service()).await;
    let machine: Value = app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    for tokens in [&first, &second, &machine] {
        accepted(&verifier, access_token(tokens), "a token before any revocation").await;
    }

    let revoked_at = Instant::now();
    assert_eq!(app.revoke(&client, &refresh_token(&first)).await.status(), 200);
    let took = refused(&verifier, access_token(&first)).await;
    eprintln!("RFC 7009 answer to refusal: {:?} after the answer, {:?} after the request", took, revoked_at.elapsed());
    accepted(&verifier, access_token(&second), "the session's other family").await;
    accepted(&verifier, access_token(&machine), "another client's token").await;
    let status = verifier.revocation_status().expect("a feed");
    assert!(!status.is_refusing);
    assert!(status.deny_entries >= 1);
}

async fn disabling_a_user_refuses_all_their_tokens_and_none_issued_after_enabling(app: &TestApp) {
    let verifier = verifier(app, |r| r).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let alice = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &alice).await;
    let service = app.register_client(ClientSpec::service()).await;
    let machine: Value = app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();

    assert!(tessera(app, &["user", "disable", "alice"], None).status.success());
    refused(&verifier, access_token(&tokens)).await;
    accepted(&verifier, access_token(&machine), "another subject's token").await;

    // Enabling undoes nothing, and what is issued afterwards is not caught by the cut-off
    // (access tokens carry whole-second `iat`: a token of the same second is refused).
    assert!(tessera(app, &["user", "enable", "alice"], None).status.success());
    app.clock.advance(chrono::Duration::seconds(2));
    let later = app.offline_login(&client, &alice).await;
    accepted(&verifier, access_token(&later), "a token issued after enabling").await;
    assert!(matches!(verifier.verify(access_token(&tokens)).await, Err(VerifyError::Revoked)));
}

async fn a_revoked_access_token_is_refused_by_itself(app: &TestApp) {
    let verifier = verifier(app, |r| r).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let alice = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &alice).await;
    let refreshed = crate::helpers::refresh::refreshed(app, &client, &refresh_token(&tokens)).await;

    assert_eq!(app.revoke(&client, access_token(&tokens)).await.status(), 200);
    refused(&verifier, access_token(&tokens)).await;
    accepted(&verifier, access_token(&refreshed), "the family's next access token").await;
}

async fn a_verifier_started_after_a_revocation_refuses_at_once(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let alice = app.create_user("alice").await;
    let tokens = app.offline_login(&client, &alice).await;
    assert!(tessera(app, &["session", "revoke", "--user", "alice"], None).status.success());

    // Tessera seeds a new stream with the revocations whose tokens may still be live, and
    // `build` polls once: the first verification already knows.
    let verifier = verifier(app, |r| r).await;
    assert!(matches!(verifier.verify(access_token(&tokens)).await, Err(VerifyError::Revoked)));
}

/// Verifies `token` until `verifier` refuses it, for at most [`REACH`]; the refusal.
async fn first_refusal(verifier: &Verifier, token: &str) -> Option<VerifyError> {
    let started = Instant::now();
    while started.elapsed() < REACH {
        if let Err(error) = verifier.verify(token).await {
            return Some(error);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn without_its_feed_a_verifier_fails_closed_unless_told_to_fail_open(database: &TestDatabase) {
    let app = TestApp::spawn(database, |_| {}).await.unwrap();
    let quick = |r: Revocations| r.max_silence(Duration::from_secs(1)).long_poll_timeout(Duration::from_secs(2));
    let closed = verifier(&app, quick).await;
    let open = verifier(&app, |r| quick(r).fail_mode(FailMode::Open)).await;
    let service = app.register_client(ClientSpec::service()).await;
    let machine: Value = app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    accepted(&closed, access_token(&machine), "a token while the feed is up").await;

    app.stop().await; // the issuer is gone; the JWK Set stays cached
    let refusal = first_refusal(&closed, access_token(&machine)).await;
    assert!(matches!(refusal, Some(VerifyError::RevocationsUnavailable)), "{refusal:?}");
    assert!(closed.revocation_status().expect("a feed").is_refusing);
    accepted(&open, access_token(&machine), "fail open: the token").await;
}

crate::backend_tests!(
    a_revoked_family_is_refused_and_its_session_and_other_clients_are_not,
    disabling_a_user_refuses_all_their_tokens_and_none_issued_after_enabling,
    a_revoked_access_token_is_refused_by_itself,
    a_verifier_started_after_a_revocation_refuses_at_once,
);

mod on_their_own_servers {
    use super::*;
    crate::database_tests!(without_its_feed_a_verifier_fails_closed_unless_told_to_fail_open);
}
