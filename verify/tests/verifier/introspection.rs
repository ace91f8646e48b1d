//! Opaque access tokens through token introspection (RFC 7662) against the mock issuer's
//! endpoint: what is sent and never sent, how answers map to claims and are checked, the
//! cache, and an endpoint that fails, stalls or is flooded.

use crate::support::{claims, tessera_key, MockIssuer, MockIssuerExt, AUDIENCE};
use serde_json::{json, Value};
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tessera_verify::test_util::{
    introspection_response, opaque_token, DpopKey, INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET,
};
use tessera_verify::{BuildError, DpopRequestError, Introspection, Verifier, VerifierBuilder, VerifyError};
use tokio::task::JoinSet;

fn introspection() -> Introspection {
    Introspection::new(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET)
}

fn builder(issuer: &MockIssuer, settings: Introspection) -> VerifierBuilder {
    issuer.verifier().introspection(settings)
}

/// A live opaque token the mock vouches for, with `changes` applied to its answer.
fn live_token(issuer: &MockIssuer, changes: Value) -> String {
    let token = opaque_token();
    let mut answer = introspection_response(issuer.issuer(), AUDIENCE);
    for (name, value) in changes.as_object().expect("an object") {
        match value {
            Value::Null => _ = answer.as_object_mut().unwrap().remove(name),
            value => answer[name] = value.clone(),
        }
    }
    issuer.set_introspection(&token, answer);
    token
}

fn is_unavailable_with_status(result: &Result<tessera_verify::Claims, VerifyError>, status: u16) -> bool {
    matches!(result, Err(VerifyError::IntrospectionUnavailable(e)) if e.status_code() == Some(status))
}

#[tokio::test]
async fn an_opaque_token_is_introspected_and_mapped_to_claims() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    let changes = json!({ "fid": "family-1", "sid": "session-1", "auth_time": 1_700_000_000, "username": "alice" });
    let token = live_token(&issuer, changes);
    // The mock answers 400 unless it gets the form, the hint, Accept and the credentials.
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.introspection_requests(), 1);
    assert_eq!(claims.iss, issuer.issuer());
    assert_eq!(claims.aud, [AUDIENCE]);
    assert!(claims.scope.contains("invoices:read"));
    assert_eq!((claims.fid.as_deref(), claims.sid.as_deref()), (Some("family-1"), Some("session-1")));
    assert_eq!(claims.extra.keys().collect::<Vec<_>>(), ["auth_time"], "no active, token_type or username");
    assert!(claims.cnf.is_none());
}

#[tokio::test]
async fn cache_hits_make_no_call_and_the_cache_expires() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let settings = introspection().cache_ttl(Duration::from_millis(300));
    let verifier = builder(&issuer, settings).build().await.unwrap();
    let (first, second) = (live_token(&issuer, json!({})), live_token(&issuer, json!({})));
    for _ in 0..5 {
        verifier.verify(&first).await.unwrap();
        verifier.verify(&second).await.unwrap();
    }
    assert_eq!(issuer.introspection_requests(), 2, "one request per token");
    // A clone shares the cache.
    verifier.clone().verify(&first).await.unwrap();
    assert_eq!(issuer.introspection_requests(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;
    verifier.verify(&first).await.unwrap();
    assert_eq!(issuer.introspection_requests(), 3, "asked again once the answer is older than the TTL");
}

#[tokio::test]
async fn a_zero_ttl_asks_every_time() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection().cache_ttl(Duration::ZERO)).build().await.unwrap();
    let token = live_token(&issuer, json!({}));
    for _ in 0..3 {
        verifier.verify(&token).await.unwrap();
    }
    assert_eq!(issuer.introspection_requests(), 3);
}

#[tokio::test]
async fn exp_caps_the_cache() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let ahead = Arc::new(AtomicU64::new(0));
    let clock = {
        let ahead = Arc::clone(&ahead);
        move || SystemTime::now() + Duration::from_secs(ahead.load(Ordering::SeqCst))
    };
    let settings = introspection().cache_ttl(Duration::from_secs(300));
    let verifier = builder(&issuer, settings).clock(clock).leeway(Duration::ZERO).build().await.unwrap();
    let exp = crate::support::now() + 60;
    let token = live_token(&issuer, json!({ "exp": exp }));
    verifier.verify(&token).await.unwrap();
    ahead.store(30, Ordering::SeqCst);
    verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.introspection_requests(), 1, "within exp and the TTL: cached");
    // Past exp the cached answer is dead, though the TTL is not over: the verifier asks
    // again, and the token has expired whatever the answer says.
    ahead.store(61, Ordering::SeqCst);
    let result = verifier.verify(&token).await;
    assert!(matches!(result, Err(VerifyError::Expired)), "{result:?}");
    assert_eq!(issuer.introspection_requests(), 2);
}

#[tokio::test]
async fn inactive_answers_are_refused_and_never_cached() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    // Unknown to the mock: {"active":false}, as Tessera answers for anything dead.
    let token = opaque_token();
    for calls in 1..=3 {
        assert!(matches!(verifier.verify(&token).await, Err(VerifyError::Inactive)));
        assert_eq!(issuer.introspection_requests(), calls);
    }
    // Once live, it is accepted at once: the inactive answer was not remembered.
    issuer.set_introspection(&token, introspection_response(issuer.issuer(), AUDIENCE));
    verifier.verify(&token).await.unwrap();
}

/// What an answer changes, and the refusal expected.
type Case = (&'static str, Value, fn(&VerifyError) -> bool);

#[tokio::test]
async fn answers_that_fail_a_check_are_refused_and_not_cached() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    let cases: [Case; 9] = [
        ("another issuer", json!({ "iss": "https://evil.example" }), |e| matches!(e, VerifyError::WrongIssuer)),
        ("no issuer", json!({ "iss": null }), |e| matches!(e, VerifyError::MissingClaim("iss"))),
        ("another audience", json!({ "aud": ["https://other.example"] }), |e| matches!(e, VerifyError::WrongAudience)),
        ("active as a string", json!({ "active": "true" }), |e| matches!(e, VerifyError::Inactive)),
        ("no active", json!({ "active": null }), |e| matches!(e, VerifyError::Inactive)),
        ("no exp", json!({ "exp": null }), |e| matches!(e, VerifyError::MissingClaim("exp"))),
        ("expired", json!({ "exp": crate::support::now() - 3600 }), |e| matches!(e, VerifyError::Expired)),
        ("a refresh token", json!({ "token_type": "refresh_token" }), |e| matches!(e, VerifyError::WrongType)),
        ("DPoP without a key", json!({ "token_type": "DPoP" }), |e| matches!(e, VerifyError::Malformed(_))),
    ];
    for (what, changes, is_expected) in cases {
        let token = live_token(&issuer, changes);
        let before = issuer.introspection_requests();
        for _ in 0..2 {
            let error = verifier.verify(&token).await.expect_err(what);
            assert!(is_expected(&error), "{what}: {error:?}");
            assert!(error.is_token_error(), "{what}: 401, not 503");
        }
        assert_eq!(issuer.introspection_requests(), before + 2, "{what}: not cached");
    }
    // One of several audiences is enough.
    let token = live_token(&issuer, json!({ "aud": ["https://other.example", AUDIENCE] }));
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn a_failing_endpoint_makes_the_token_unverifiable_not_invalid() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    let token = live_token(&issuer, json!({}));
    for status in [500, 502, 503, 429, 400] {
        issuer.set_introspection_status(status);
        let result = verifier.verify(&token).await;
        assert!(is_unavailable_with_status(&result, status), "{status}: {result:?}");
        assert!(!result.unwrap_err().is_token_error());
    }
    issuer.set_introspection_status(200);
    issuer.set_introspection_garbled(true);
    let result = verifier.verify(&token).await;
    assert!(
        matches!(&result, Err(VerifyError::IntrospectionUnavailable(e)) if e.status_code().is_none()),
        "{result:?}"
    );
    issuer.set_introspection_garbled(false);
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn refused_credentials_are_unavailable_not_the_tokens_fault() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let wrong = Introspection::new(INTROSPECTION_CLIENT_ID, "not the secret");
    let verifier = builder(&issuer, wrong).build().await.unwrap();
    let token = live_token(&issuer, json!({}));
    for _ in 0..2 {
        let result = verifier.verify(&token).await;
        assert!(is_unavailable_with_status(&result, 401), "{result:?}");
        let error = result.unwrap_err();
        assert_eq!(
            error.source().unwrap().to_string(),
            format!("POST {}/introspect answered HTTP 401", issuer.issuer())
        );
    }
}

#[tokio::test]
async fn a_stalled_endpoint_times_out() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).http_timeout(Duration::from_millis(300)).build().await.unwrap();
    let token = live_token(&issuer, json!({}));
    issuer.set_introspection_delay(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let result = verifier.verify(&token).await;
    assert!(
        matches!(&result, Err(VerifyError::IntrospectionUnavailable(e)) if e.status_code().is_none()),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "the HTTP timeout applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_max_in_flight_requests_are_open_at_once() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection().max_in_flight(4)).build().await.unwrap();
    issuer.set_introspection_delay(Duration::from_millis(150));
    let tokens: Vec<String> = (0..40).map(|_| live_token(&issuer, json!({}))).collect();
    let mut verifications = JoinSet::new();
    for token in tokens {
        let verifier = verifier.clone();
        verifications.spawn(async move { verifier.verify(&token).await });
    }
    // Each request holds its slot 150 ms and a waiting one gives up after 250 ms: the
    // first rounds are answered, the rest refused as busy; none is queued for longer.
    let (mut accepted, mut busy) = (0, 0);
    while let Some(result) = verifications.join_next().await {
        match result.unwrap() {
            Ok(_) => accepted += 1,
            Err(VerifyError::IntrospectionUnavailable(e)) if e.to_string().contains("in flight") => busy += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(accepted + busy, 40);
    assert!(accepted >= 4 && busy >= 1, "{accepted} accepted, {busy} refused as busy");
    assert_eq!(issuer.introspection_requests(), accepted, "a refused verification sends nothing");
    assert_eq!(issuer.max_concurrent_introspections(), 4, "as many as allowed, and no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_free_slot_is_short() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let settings = introspection().max_in_flight(1);
    let verifier = builder(&issuer, settings).http_timeout(Duration::from_millis(3000)).build().await.unwrap();
    // The one slot is held for 1.5 s: the two others give up after 250 ms, long before the
    // HTTP timeout, so a flood that holds every slot costs real tokens a quick 503.
    issuer.set_introspection_delay(Duration::from_millis(1500));
    let mut verifications = JoinSet::new();
    let (first, token) = (verifier.clone(), live_token(&issuer, json!({})));
    verifications.spawn(async move { (first.verify(&token).await, std::time::Instant::now()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let (verifier, token) = (verifier.clone(), live_token(&issuer, json!({})));
        verifications.spawn(async move { (verifier.verify(&token).await, std::time::Instant::now()) });
    }
    let (mut accepted, mut busy) = (0, 0);
    while let Some(result) = verifications.join_next().await {
        match result.unwrap() {
            (Ok(_), _) => accepted += 1,
            (Err(VerifyError::IntrospectionUnavailable(e)), at) if e.to_string().contains("in flight") => {
                assert!(at.duration_since(started) < Duration::from_millis(1000), "refused quickly");
                busy += 1;
            }
            (Err(other), _) => panic!("{other:?}"),
        }
    }
    assert_eq!((accepted, busy), (1, 2));
    assert_eq!(issuer.max_concurrent_introspections(), 1);
}

#[tokio::test]
async fn a_jwt_still_goes_the_jws_path() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    let verified = verifier.verify(&key.sign(&claims(issuer.issuer()))).await.unwrap();
    assert_eq!(verified.aud, [AUDIENCE]);
    let mut forged = key.sign(&claims(issuer.issuer()));
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(matches!(verifier.verify(&forged).await, Err(VerifyError::BadSignature)));
    assert_eq!(issuer.introspection_requests(), 0);
}

#[tokio::test]
async fn nothing_but_the_opaque_shape_is_ever_sent() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    let real = opaque_token();
    let garbage = [
        String::new(),
        "tat_".into(),
        "garbage".into(),
        real[..46].to_owned(),
        format!("{real}A"),
        real.replacen("tat_", "rt_", 1),
        real.replacen("tat_", "TAT_", 1),
        format!("tat_{}", "A".repeat(42) + "B"),
        format!("tat_{}", "/".repeat(43)),
        format!("tat_{}", "A".repeat(10_000)),
    ];
    for token in garbage {
        let result = verifier.verify(&token).await;
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "{token}: {result:?}");
    }
    assert_eq!(issuer.introspection_requests(), 0);
}

#[tokio::test]
async fn without_introspection_an_opaque_token_is_malformed() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = issuer.verifier().build().await.unwrap();
    let token = live_token(&issuer, json!({}));
    assert!(matches!(verifier.verify(&token).await, Err(VerifyError::Malformed(_))));
    assert_eq!(issuer.introspection_requests(), 0);
}

#[tokio::test]
async fn dpop_bound_opaque_tokens_need_their_proof() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let public_base = "https://api.example.com";
    let verifier = builder(&issuer, introspection()).dpop(public_base).build().await.unwrap();
    let dpop_key = DpopKey::es256();
    let token = live_token(&issuer, json!({ "token_type": "DPoP", "cnf": { "jkt": dpop_key.thumbprint() } }));
    let htu = format!("{public_base}/invoices");
    // A bound token is no bearer token (RFC 9449 §7.1).
    assert!(matches!(verifier.verify(&token).await, Err(VerifyError::SenderConstrained)));
    let proof = dpop_key.proof_for_token("GET", &htu, &token);
    let claims = verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await.unwrap();
    assert_eq!(claims.dpop_jkt(), Some(dpop_key.thumbprint().as_str()));
    // `ath` is the hash of the opaque token itself.
    let other = opaque_token();
    let proof = dpop_key.proof_for_token("GET", &htu, &other);
    let result = verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await;
    assert!(matches!(result, Err(DpopRequestError::Proof(_))), "{result:?}");
    // Another key's proof.
    let proof = DpopKey::es256().proof_for_token("GET", &htu, &token);
    let result = verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await;
    assert!(matches!(result, Err(DpopRequestError::Proof(_))), "{result:?}");
    // A bearer opaque token presented with DPoP.
    let bearer = live_token(&issuer, json!({}));
    let proof = dpop_key.proof_for_token("GET", &htu, &bearer);
    let result = verifier.verify_dpop(&bearer, Some(&proof), "GET", "/invoices").await;
    assert!(matches!(result, Err(DpopRequestError::Token(VerifyError::NotSenderConstrained))), "{result:?}");
}

#[tokio::test]
async fn the_endpoint_comes_from_discovery_or_settings_and_must_be_http() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    let verifier = builder(&issuer, introspection()).build().await.unwrap();
    assert!(format!("{verifier:?}").contains(&format!("{}/introspect", issuer.issuer())));

    issuer.set_introspection_published(false);
    let result = builder(&issuer, introspection()).build().await;
    assert!(matches!(result, Err(BuildError::IntrospectionEndpoint(_))), "{result:?}");
    let configured = introspection().endpoint(format!("{}/introspect", issuer.issuer()));
    let verifier = builder(&issuer, configured).build().await.unwrap();
    verifier.verify(&live_token(&issuer, json!({}))).await.unwrap();

    for endpoint in ["ftp://127.0.0.1/introspect", "/introspect", "not a url"] {
        let result = builder(&issuer, introspection().endpoint(endpoint)).build().await;
        assert!(matches!(result, Err(BuildError::IntrospectionEndpoint(_))), "{endpoint}: {result:?}");
    }
    let result = builder(&issuer, introspection().max_in_flight(0)).build().await;
    assert!(matches!(result, Err(BuildError::Configuration(_))), "{result:?}");
    let result = builder(&issuer, Introspection::new("", "secret")).build().await;
    assert!(matches!(result, Err(BuildError::Configuration(_))), "{result:?}");
    // Without the network there is nobody to ask.
    let jwks = crate::support::jwk_set(&[&tessera_key()]).to_string();
    let result = Verifier::builder(issuer.issuer()).audience(AUDIENCE).introspection(introspection());
    assert!(matches!(result.build_from_jwks(jwks.as_bytes()), Err(BuildError::Configuration(_))));
}
