//! The cached JWK Set: discovery, refetch on unknown kids (rate-limited), HTTP caching,
//! and what happens when the issuer fails.

use crate::support::{access_token_header, claims, tessera_key, MockIssuer, MockIssuerExt, TestKey};
use std::time::Duration;
use tessera_verify::{BuildError, DiscoveryError, Verifier, VerifyError};
use tokio::task::JoinSet;

#[tokio::test]
async fn building_reads_discovery_and_fetches_the_jwks_once() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().build().await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);
    for _ in 0..20 {
        verifier.verify(&key.sign(&claims(issuer.issuer()))).await.unwrap();
    }
    assert_eq!(issuer.jwks_requests(), 1, "fresh keys need no fetch");
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let issuer = MockIssuer::start(&[&tessera_key()]);
    issuer.set_discovery_issuer("https://evil.example");
    let result = issuer.verifier().build().await;
    let is_mismatch = |result: &Result<Verifier, BuildError>| {
        matches!(result, Err(BuildError::Discovery(DiscoveryError::IssuerMismatch { .. })))
    };
    assert!(is_mismatch(&result), "{result:?}");
    // OpenID Connect Discovery §4.3: identical, so a trailing slash is a mismatch too.
    let result = Verifier::builder(format!("{}/", issuer.issuer())).audience("a").build().await;
    assert!(is_mismatch(&result), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_issuer_fails_the_build() {
    let issuer = MockIssuer::start(&[]);
    issuer.set_failing(true);
    let result = issuer.verifier().build().await;
    assert!(matches!(&result, Err(BuildError::KeySetUnavailable(e)) if e.status_code() == Some(500)), "{result:?}");
    issuer.set_failing(false);
    issuer.set_garbled(true);
    let result = issuer.verifier().build().await;
    assert!(matches!(&result, Err(BuildError::KeySetUnavailable(e)) if e.status_code().is_none()), "{result:?}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let result = Verifier::builder(format!("http://{closed}")).audience("a").build().await;
    assert!(matches!(result, Err(BuildError::Discovery(DiscoveryError::Unavailable(_)))), "{result:?}");
}

#[tokio::test]
async fn the_builder_refuses_unsafe_settings() {
    let no_audience = Verifier::builder("http://127.0.0.1:9").build().await;
    assert!(matches!(no_audience, Err(BuildError::Configuration(_))));
    let huge_leeway = Verifier::builder("http://127.0.0.1:9").audience("a").leeway(Duration::from_secs(3600)).build();
    assert!(matches!(huge_leeway.await, Err(BuildError::Configuration(_))));
    let no_algorithms = Verifier::builder("http://127.0.0.1:9").audience("a").algorithms([]).build().await;
    assert!(matches!(no_algorithms, Err(BuildError::Configuration(_))));
    let bad_realm = Verifier::builder("http://127.0.0.1:9").audience("a").realm("a\"b").build().await;
    assert!(matches!(bad_realm, Err(BuildError::Configuration(_))));
    let no_interval = Verifier::builder("http://127.0.0.1:9").audience("a").min_refetch_interval(Duration::ZERO);
    assert!(matches!(no_interval.build().await, Err(BuildError::Configuration(_))));
    let not_a_url = Verifier::builder("id.example.com").audience("a").build().await;
    assert!(matches!(not_a_url, Err(BuildError::IssuerNotUrl { .. })));
    for issuer in ["ftp://id.example.com", "https://id.example.com?tenant=1", "https://id.example.com#x"] {
        let result = Verifier::builder(issuer).audience("a").build().await;
        assert!(matches!(result, Err(BuildError::InvalidIssuer { .. })), "{issuer}: {result:?}");
    }
}

#[tokio::test]
async fn unknown_kids_cause_one_refetch_then_none_within_the_interval() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_secs(60)).build().await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);

    let forged = |kid: &str| key.sign_with_header(&access_token_header(kid), &claims(issuer.issuer()));
    let result = verifier.verify(&forged("forged-0")).await;
    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
    assert_eq!(issuer.jwks_requests(), 2, "the first unknown kid refetches");

    for i in 1..50 {
        let result = verifier.verify(&forged(&format!("forged-{i}"))).await;
        assert!(matches!(result, Err(VerifyError::UnknownKey)));
    }
    // A concurrent flood as well.
    let mut flood = JoinSet::new();
    for i in 0..200 {
        let (verifier, token) = (verifier.clone(), forged(&format!("flood-{i}")));
        flood.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = flood.join_next().await {
        assert!(matches!(result.unwrap(), Err(VerifyError::UnknownKey)));
    }
    assert_eq!(issuer.jwks_requests(), 2, "no further fetch within the interval");

    // Genuine tokens are unaffected.
    verifier.verify(&key.sign(&claims(issuer.issuer()))).await.unwrap();
}

#[tokio::test]
async fn a_concurrent_flood_of_unknown_kids_costs_one_fetch() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_secs(60)).build().await.unwrap();
    let mut flood = JoinSet::new();
    for i in 0..200 {
        let token = key.sign_with_header(&access_token_header(&format!("flood-{i}")), &claims(issuer.issuer()));
        let verifier = verifier.clone();
        flood.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(result) = flood.join_next().await {
        assert!(matches!(result.unwrap(), Err(VerifyError::UnknownKey)));
    }
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kids_refetch_again_once_the_interval_has_passed() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_secs(1)).build().await.unwrap();
    let forged = key.sign_with_header(&access_token_header("forged"), &claims(issuer.issuer()));
    assert!(verifier.verify(&forged).await.is_err());
    assert!(verifier.verify(&forged).await.is_err());
    assert_eq!(issuer.jwks_requests(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(verifier.verify(&forged).await.is_err());
    assert!(verifier.verify(&forged).await.is_err());
    assert_eq!(issuer.jwks_requests(), 3);
}

#[tokio::test]
async fn a_newly_published_key_is_found_by_the_refetch() {
    let old = tessera_key();
    let issuer = MockIssuer::start(&[&old]);
    let verifier = issuer.verifier().build().await.unwrap();
    let new = TestKey::generate();
    issuer.publish(&[&old, &new]);

    let claims = claims(issuer.issuer());
    let verified = verifier.verify(&new.sign(&claims)).await.expect("the refetch finds the new key");
    assert_eq!(verified.jti, claims["jti"]);
    assert_eq!(issuer.jwks_requests(), 2);
    assert_eq!(issuer.conditional_requests(), 1, "the refetch revalidates with If-None-Match");
    verifier.verify(&old.sign(&claims)).await.expect("the old key is still published");
    verifier.verify(&new.sign(&claims)).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
    let mut kids = vec![old.kid().to_owned(), new.kid().to_owned()];
    kids.sort();
    assert_eq!(verifier.key_ids(), kids);
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_old_keys() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().build().await.unwrap();
    issuer.set_failing(true);
    let forged = key.sign_with_header(&access_token_header("unknown"), &claims(issuer.issuer()));
    let result = verifier.verify(&forged).await;
    // Perhaps a key published since: not the token's fault.
    assert!(matches!(&result, Err(VerifyError::KeysUnavailable(e)) if e.status_code() == Some(500)), "{result:?}");
    assert!(!result.unwrap_err().is_token_error());
    assert_eq!(issuer.jwks_requests(), 2, "the refetch was attempted");
    verifier.verify(&key.sign(&claims(issuer.issuer()))).await.expect("the old key still verifies");
    assert_eq!(verifier.key_ids(), vec![key.kid()]);
}

#[tokio::test]
async fn a_jwks_that_is_not_json_keeps_the_old_keys() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().build().await.unwrap();
    issuer.set_garbled(true);
    let forged = key.sign_with_header(&access_token_header("unknown"), &claims(issuer.issuer()));
    assert!(matches!(verifier.verify(&forged).await, Err(VerifyError::KeysUnavailable(_))));
    assert_eq!(issuer.jwks_requests(), 2);
    verifier.verify(&key.sign(&claims(issuer.issuer()))).await.expect("the old key still verifies");
}

#[tokio::test]
async fn unknown_kids_are_unavailable_until_a_fetch_succeeds_again() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_millis(200)).build().await.unwrap();
    issuer.set_failing(true);
    let forged = |kid: &str| key.sign_with_header(&access_token_header(kid), &claims(issuer.issuer()));
    assert!(matches!(verifier.verify(&forged("a")).await, Err(VerifyError::KeysUnavailable(_))));
    // Within the back-off there is no fetch, and still no way to tell a new key from a forged one.
    assert!(matches!(verifier.verify(&forged("b")).await, Err(VerifyError::KeysUnavailable(_))));
    assert_eq!(issuer.jwks_requests(), 2);

    issuer.set_failing(false);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(matches!(verifier.verify(&forged("c")).await, Err(VerifyError::UnknownKey)));
    assert_eq!(issuer.jwks_requests(), 3);
    assert!(matches!(verifier.verify(&forged("d")).await, Err(VerifyError::UnknownKey)));
}

#[tokio::test]
async fn a_stale_jwks_is_revalidated_with_its_etag_in_the_background() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    issuer.set_max_age(1);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_millis(100)).build().await.unwrap();
    let token = key.sign(&claims(issuer.issuer()));
    verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1, "fresh for max-age=1");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Stale: this request is served from the cache and starts a revalidation.
    verifier.verify(&token).await.unwrap();
    issuer.wait_for("the revalidation", |i| i.not_modified() == 1).await;
    assert_eq!(issuer.conditional_requests(), 1);
    assert_eq!(issuer.jwks_requests(), 2);
    // The 304 made the set fresh again.
    verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
}

#[tokio::test]
async fn a_key_removed_by_the_issuer_stops_verifying_after_the_refresh() {
    let old = tessera_key();
    let new = TestKey::generate();
    let issuer = MockIssuer::start(&[&old, &new]);
    issuer.set_max_age(1);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_millis(100)).build().await.unwrap();
    let old_token = old.sign(&claims(issuer.issuer()));
    verifier.verify(&old_token).await.unwrap();

    issuer.publish(&[&new]); // an emergency rotation
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let _ = verifier.verify(&new.sign(&claims(issuer.issuer()))).await; // notices the stale set
    issuer.wait_for("the refresh", |i| i.jwks_requests() == 2).await;
    issuer.wait_for("the new set", |_| verifier.key_ids() == vec![new.kid()]).await;
    assert!(matches!(verifier.verify(&old_token).await, Err(VerifyError::UnknownKey)));
}

#[tokio::test]
async fn a_failing_background_refresh_keeps_the_keys_and_backs_off() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    issuer.set_max_age(1);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_secs(60)).build().await.unwrap();
    // max-age=1 is raised to the 60 s refetch interval: no refresh is due yet.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    verifier.verify(&key.sign(&claims(issuer.issuer()))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(issuer.jwks_requests(), 1);

    let issuer = MockIssuer::start(&[&key]);
    issuer.set_max_age(1);
    let verifier = issuer.verifier().min_refetch_interval(Duration::from_millis(500)).build().await.unwrap();
    issuer.set_failing(true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = key.sign(&claims(issuer.issuer()));
    verifier.verify(&token).await.unwrap();
    issuer.wait_for("the failed refresh", |i| i.jwks_requests() == 2).await;
    for _ in 0..20 {
        verifier.verify(&token).await.expect("the known key keeps verifying while the issuer fails");
    }
    assert_eq!(issuer.jwks_requests(), 2, "no retry before the back-off has passed");
}
