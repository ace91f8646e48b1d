//! The synchronous core (`AccessTokenPolicy`, `IdTokenPolicy` with a `KeySet`) and the
//! verifier built from a JWK Set with an injected clock: no network, whatever the features.

use crate::support::{access_token_header, claims, jwk_set, now, tessera_key, TestKey, AUDIENCE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_verify::test_util::{claims_from_json, id_token_claims_from_json, id_token_payload};
use tessera_verify::{AccessTokenPolicy, Algorithm, BuildError, IdTokenPolicy, KeySet, Verifier, VerifyError};

const ISSUER: &str = "https://id.example.com";
const CLIENT: &str = "2b9d6f1e-0c4a-4f7e-8a3b-5d1c9e7f2a60";

fn keys(published: &[&TestKey]) -> KeySet {
    KeySet::from_jwks(jwk_set(published).to_string().as_bytes()).expect("a JWK Set")
}

fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds as u64)
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
}

#[test]
fn the_access_token_core_verifies_tessera_tokens_and_types_what_the_server_reads() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut claims = claims(ISSUER);
    claims["sid"] = json!("session-1");
    claims["fid"] = json!("family-1");
    claims["auth_time"] = json!(now() - 60);
    let token = key.sign(&claims);
    let verified = AccessTokenPolicy::any_audience(ISSUER).verify(&keys, &token, SystemTime::now()).unwrap();
    assert_eq!(verified.iss, ISSUER);
    assert_eq!(verified.sub, "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
    assert_eq!(verified.aud, [AUDIENCE]);
    assert_eq!(verified.client_id, "3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
    assert!(verified.scope.contains("invoices:read") && verified.scope.contains("invoices:write"));
    assert_eq!(verified.exp - verified.iat, 300);
    assert_eq!(verified.jti, "9b8f5d2c41e04a7f8c3e6b1a2d5f7e90");
    assert_eq!((verified.sid.as_deref(), verified.fid.as_deref()), (Some("session-1"), Some("family-1")));
    assert_eq!(verified.extra.keys().collect::<Vec<_>>(), ["auth_time"]);
}

#[test]
fn the_audience_is_checked_unless_any_is_accepted() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut claims = claims(ISSUER);
    claims["aud"] = json!(["https://billing.example.com", "https://other.example.com"]);
    let token = key.sign(&claims);
    let now = SystemTime::now();
    assert!(AccessTokenPolicy::any_audience(ISSUER).verify(&keys, &token, now).is_ok());
    let result = AccessTokenPolicy::new(ISSUER, [AUDIENCE]).verify(&keys, &token, now);
    assert!(matches!(result, Err(VerifyError::WrongAudience)), "{result:?}");
    let policy = AccessTokenPolicy::new(ISSUER, [AUDIENCE, "https://other.example.com"]);
    assert!(policy.verify(&keys, &token, now).is_ok());
    let none: [&str; 0] = [];
    let result = AccessTokenPolicy::new(ISSUER, none).verify(&keys, &token, now);
    assert!(matches!(result, Err(VerifyError::WrongAudience)), "an empty list accepts nothing: {result:?}");
}

#[test]
fn the_issuer_is_compared_exactly_even_when_any_audience_is_accepted() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    for other in [format!("{ISSUER}/"), "https://ID.example.com".into(), "https://evil.example".into()] {
        let token = key.sign(&claims(&other));
        let result = AccessTokenPolicy::any_audience(ISSUER).verify(&keys, &token, SystemTime::now());
        assert!(matches!(result, Err(VerifyError::WrongIssuer)), "{other}: {result:?}");
    }
}

#[test]
fn expiry_is_checked_against_the_time_the_caller_gives() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut claims = claims(ISSUER);
    claims["iat"] = json!(1_000_000);
    claims["exp"] = json!(1_000_300);
    let token = key.sign(&claims);
    let policy = AccessTokenPolicy::any_audience(ISSUER);
    assert!(policy.verify(&keys, &token, at(1_000_299)).is_ok());
    assert!(matches!(policy.verify(&keys, &token, at(1_000_300)), Err(VerifyError::Expired)), "no leeway by default");
    let lenient = policy.clone().leeway(Duration::from_secs(10));
    assert!(lenient.verify(&keys, &token, at(1_000_309)).is_ok());
    assert!(matches!(lenient.verify(&keys, &token, at(1_000_310)), Err(VerifyError::Expired)));
    // Issued after `now`: a broken clock or a forger.
    assert!(matches!(policy.verify(&keys, &token, at(999_999)), Err(VerifyError::NotYetValid)));
    assert!(lenient.verify(&keys, &token, at(999_995)).is_ok());
}

#[test]
fn the_core_is_as_strict_about_the_jws_as_the_verifier() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let policy = AccessTokenPolicy::any_audience(ISSUER);
    let verify = |token: &str| policy.verify(&keys, token, SystemTime::now());
    let claims = claims(ISSUER);
    let payload = b64(&claims);

    let mut no_kid = access_token_header(key.kid());
    no_kid.as_object_mut().unwrap().remove("kid");
    assert!(matches!(verify(&key.sign_with_header(&no_kid, &claims)), Err(VerifyError::Malformed(_))));

    for alg in ["none", "HS256", "HS512", "ES256"] {
        let header = b64(&json!({ "alg": alg, "typ": "at+jwt", "kid": key.kid() }));
        let result = verify(&format!("{header}.{payload}.c2lnbmF0dXJl"));
        assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "{alg}: {result:?}");
    }
    let mut rs384 = access_token_header(key.kid());
    rs384["alg"] = json!("RS384");
    let result = verify(&key.sign_with_header(&rs384, &claims));
    assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)), "RS256 only unless allowed: {result:?}");

    // A member given twice, e.g. to smuggle a second `alg` past a lax parser.
    let duplicate = format!(r#"{{"alg":"RS256","typ":"at+jwt","typ":"JWT","kid":"{}"}}"#, key.kid());
    let result = verify(&format!("{}.{payload}.c2ln", URL_SAFE_NO_PAD.encode(duplicate)));
    assert!(matches!(result, Err(VerifyError::Malformed(_))), "{result:?}");

    let huge = b64(&json!({ "alg": "RS256", "typ": "at+jwt", "kid": key.kid(), "x": "a".repeat(2000) }));
    let result = verify(&format!("{huge}.{payload}.c2ln"));
    assert!(matches!(result, Err(VerifyError::Malformed("the JOSE header is too large"))), "{result:?}");
    let mut padded = claims.clone();
    padded["padding"] = json!("a".repeat(20_000));
    assert!(matches!(verify(&key.sign(&padded)), Err(VerifyError::Malformed("the token is too large"))));

    let other = TestKey::generate();
    assert!(matches!(verify(&other.sign(&claims)), Err(VerifyError::UnknownKey)));
    let impostor = other.sign_with_header(&access_token_header(key.kid()), &claims);
    assert!(matches!(verify(&impostor), Err(VerifyError::BadSignature)));
    assert!(matches!(verify(&key.sign_id_token(&claims)), Err(VerifyError::WrongType)));
}

#[test]
fn other_algorithms_can_be_allowed() {
    let key = tessera_key();
    let mut jwk = key.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let document = json!({ "keys": [jwk] }).to_string();
    let keys = KeySet::from_jwks_for(document.as_bytes(), &[Algorithm::RS256, Algorithm::PS256]).unwrap();
    let mut header = access_token_header(key.kid());
    header["alg"] = json!("PS256");
    let token = key.sign_with_header(&header, &claims(ISSUER));
    let policy = AccessTokenPolicy::any_audience(ISSUER);
    assert!(matches!(policy.verify(&keys, &token, SystemTime::now()), Err(VerifyError::UnsupportedAlgorithm)));
    let policy = policy.algorithms([Algorithm::RS256, Algorithm::PS256]);
    assert!(policy.verify(&keys, &token, SystemTime::now()).is_ok());
}

#[test]
fn an_id_token_hint_is_read_even_when_expired() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut payload = id_token_payload(ISSUER, CLIENT);
    payload["iat"] = json!(1_000_000);
    payload["exp"] = json!(1_000_300);
    let hint = key.sign_id_token(&payload);
    let a_day_later = at(1_086_400);

    let policy = IdTokenPolicy::any_audience(ISSUER);
    assert!(matches!(policy.verify(&keys, &hint, a_day_later), Err(VerifyError::Expired)), "expiry checked by default");
    let claims = policy.clone().allow_expired().verify(&keys, &hint, a_day_later).unwrap();
    assert_eq!(claims.sub, "8d0c2b7e-5f4a-4e1b-9c3d-2a6f8e1b0c79");
    assert_eq!(claims.aud, [CLIENT]);
    assert_eq!(claims.sid.as_deref(), Some("6a1f0e9d8c7b4a5e"));
    assert_eq!(claims.azp.as_deref(), Some(CLIENT));
    assert_eq!(claims.extra["at_hash"], "x4Q8HQk1dbf8ZTc2BUFm0g");
    assert!(policy.verify(&keys, &hint, at(1_000_299)).is_ok());
    // Expired is allowed; issued in the future is not.
    let result = policy.allow_expired().verify(&keys, &hint, at(999_999));
    assert!(matches!(result, Err(VerifyError::NotYetValid)), "{result:?}");
}

#[test]
fn an_id_token_audience_may_be_an_array_and_is_checked_when_given() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut payload = id_token_payload(ISSUER, CLIENT);
    payload["aud"] = json!([CLIENT, "another-client"]);
    let token = key.sign_id_token(&payload);
    let now = SystemTime::now();
    assert_eq!(IdTokenPolicy::any_audience(ISSUER).verify(&keys, &token, now).unwrap().aud, [CLIENT, "another-client"]);
    assert!(IdTokenPolicy::new(ISSUER, ["another-client"]).verify(&keys, &token, now).is_ok());
    let result = IdTokenPolicy::new(ISSUER, ["a-third-client"]).verify(&keys, &token, now);
    assert!(matches!(result, Err(VerifyError::WrongAudience)), "{result:?}");
    let result = IdTokenPolicy::any_audience("https://other.example.com").verify(&keys, &token, now);
    assert!(matches!(result, Err(VerifyError::WrongIssuer)), "{result:?}");
}

#[test]
fn access_tokens_and_id_tokens_never_pass_for_each_other() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let now = SystemTime::now();
    let id_token = key.sign_id_token(&id_token_payload(ISSUER, CLIENT));
    let access_token = key.sign(&claims(ISSUER));
    let result = IdTokenPolicy::any_audience(ISSUER).allow_expired().verify(&keys, &access_token, now);
    assert!(matches!(result, Err(VerifyError::WrongType)), "{result:?}");
    let result = AccessTokenPolicy::any_audience(ISSUER).verify(&keys, &id_token, now);
    assert!(matches!(result, Err(VerifyError::WrongType)), "{result:?}");
    let mut untyped = json!({ "alg": "RS256", "kid": key.kid() });
    let result = IdTokenPolicy::any_audience(ISSUER).verify(
        &keys,
        &key.sign_with_header(&untyped, &id_token_payload(ISSUER, CLIENT)),
        now,
    );
    assert!(matches!(result, Err(VerifyError::WrongType)), "typ is required: {result:?}");
    untyped["typ"] = json!("application/jwt");
    let token = key.sign_with_header(&untyped, &id_token_payload(ISSUER, CLIENT));
    // The time after signing: the payload's `iat` is when it was made, and with no leeway
    // an earlier `now` on a slow machine would call it issued in the future.
    let result = IdTokenPolicy::any_audience(ISSUER).verify(&keys, &token, SystemTime::now());
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn id_tokens_get_the_same_jws_checks() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let policy = IdTokenPolicy::any_audience(ISSUER).allow_expired();
    let payload = id_token_payload(ISSUER, CLIENT);
    let verify = |token: &str| policy.verify(&keys, token, SystemTime::now());
    let encoded = b64(&payload);
    for alg in ["none", "HS256"] {
        let header = b64(&json!({ "alg": alg, "typ": "JWT", "kid": key.kid() }));
        assert!(matches!(verify(&format!("{header}.{encoded}.c2ln")), Err(VerifyError::UnsupportedAlgorithm)), "{alg}");
    }
    let mut no_kid = json!({ "alg": "RS256", "typ": "JWT" });
    assert!(matches!(verify(&key.sign_with_header(&no_kid, &payload)), Err(VerifyError::Malformed(_))));
    no_kid["kid"] = json!("unknown");
    assert!(matches!(verify(&key.sign_with_header(&no_kid, &payload)), Err(VerifyError::UnknownKey)));
    let duplicate = format!(r#"{{"alg":"RS256","alg":"RS256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let result = verify(&format!("{}.{encoded}.c2ln", URL_SAFE_NO_PAD.encode(duplicate)));
    assert!(matches!(result, Err(VerifyError::Malformed(_))), "{result:?}");
    let token = key.sign_id_token(&payload);
    let (signing_input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
    assert!(matches!(verify(&forged), Err(VerifyError::BadSignature)));
    let mut missing = payload.clone();
    missing.as_object_mut().unwrap().remove("sub");
    assert!(matches!(verify(&key.sign_id_token(&missing)), Err(VerifyError::MissingClaim("sub"))));
}

/// A clock the test moves.
#[derive(Clone, Default)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn set(&self, seconds: i64) {
        self.0.store(seconds as u64, Ordering::SeqCst);
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::test]
async fn a_verifier_built_from_a_jwk_set_uses_its_clock_and_no_network() {
    let key = tessera_key();
    let clock = TestClock::default();
    let reader = clock.clone();
    let verifier = Verifier::builder(ISSUER)
        .audience(AUDIENCE)
        .clock(move || reader.now())
        .build_from_jwks(jwk_set(&[&key]).to_string().as_bytes())
        .unwrap();
    assert_eq!(verifier.key_ids(), [key.kid()]);
    let mut claims = claims(ISSUER);
    claims["iat"] = json!(2_000_000_000);
    claims["exp"] = json!(2_000_000_300);
    let token = key.sign(&claims);

    clock.set(2_000_000_100);
    assert_eq!(verifier.verify(&token).await.unwrap().exp, 2_000_000_300);
    // The default leeway of 30 s applies.
    clock.set(2_000_000_329);
    assert!(verifier.verify(&token).await.is_ok());
    clock.set(2_000_000_330);
    assert!(matches!(verifier.verify(&token).await, Err(VerifyError::Expired)));
    clock.set(1_999_999_000);
    assert!(matches!(verifier.verify(&token).await, Err(VerifyError::NotYetValid)));

    // Nothing to refetch: an unknown kid is simply unknown.
    clock.set(2_000_000_100);
    let other = key.sign_with_header(&access_token_header("not-published"), &claims);
    assert!(matches!(verifier.verify(&other).await, Err(VerifyError::UnknownKey)));
    let mut elsewhere = claims.clone();
    elsewhere["aud"] = json!("https://billing.example.com");
    assert!(matches!(verifier.verify(&key.sign(&elsewhere)).await, Err(VerifyError::WrongAudience)));
}

#[test]
fn building_from_a_jwk_set_checks_the_document_and_the_settings() {
    let key = tessera_key();
    let jwks = jwk_set(&[&key]).to_string();
    let builder = || Verifier::builder(ISSUER).audience(AUDIENCE);
    assert!(matches!(builder().build_from_jwks(b"<html>"), Err(BuildError::InvalidJwks(_))));
    let result = builder().build_from_jwks(br#"{"keys":[{"kty":"EC","kid":"ec"}]}"#);
    assert!(matches!(result, Err(BuildError::Configuration(_))), "no usable key: {result:?}");
    let result = builder().algorithms([Algorithm::PS256]).build_from_jwks(jwks.as_bytes());
    assert!(matches!(result, Err(BuildError::Configuration(_))), "the key is published for RS256: {result:?}");
    let result = Verifier::builder(ISSUER).build_from_jwks(jwks.as_bytes());
    assert!(matches!(result, Err(BuildError::Configuration(_))), "an audience is required: {result:?}");
    let result = Verifier::builder("id.example.com").audience(AUDIENCE).build_from_jwks(jwks.as_bytes());
    assert!(matches!(result, Err(BuildError::IssuerNotUrl { .. })), "{result:?}");
    let result = builder().leeway(Duration::from_secs(301)).build_from_jwks(jwks.as_bytes());
    assert!(matches!(result, Err(BuildError::Configuration(_))), "{result:?}");
}

#[test]
fn claims_can_be_made_for_unit_tests_with_test_util() {
    let claims = claims_from_json(&claims(ISSUER)).unwrap();
    assert_eq!(claims.aud, [AUDIENCE]);
    let mut incomplete = crate::support::claims(ISSUER);
    incomplete.as_object_mut().unwrap().remove("jti");
    assert!(matches!(claims_from_json(&incomplete), Err(VerifyError::MissingClaim("jti"))));
    let id_token = id_token_claims_from_json(&id_token_payload(ISSUER, CLIENT)).unwrap();
    assert_eq!(id_token.aud, [CLIENT]);
}

/// The synchronous core checks a bearer token: a DPoP-bound token (`cnf`) is refused by
/// `verify`, whoever holds it, and returned only by `verify_token`, for a caller that
/// checks the binding itself.
#[test]
fn the_access_token_core_refuses_a_bound_token_as_a_bearer_token() {
    let key = tessera_key();
    let keys = keys(&[&key]);
    let mut claims = claims(ISSUER);
    claims["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    let token = key.sign(&claims);
    let policy = AccessTokenPolicy::any_audience(ISSUER);
    assert!(matches!(policy.verify(&keys, &token, SystemTime::now()), Err(VerifyError::SenderConstrained)));
    let bound = policy.verify_token(&keys, &token, SystemTime::now()).unwrap();
    assert_eq!(bound.dpop_jkt(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
}
