//! DPoP-bound access tokens at the resource server (RFC 9449 §7): `Verifier::verify_dpop`
//! and the actix-web extractor, against the mock issuer.

use crate::support::{claims, now, tessera_key, MockIssuer, MockIssuerExt, TestKey};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{test, web, App, HttpResponse};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_verify::actix::{AccessToken, BearerError, Scheme};
use tessera_verify::dpop::{access_token_hash, DpopError, ProofPolicy};
use tessera_verify::test_util::DpopKey;
use tessera_verify::{DpopRequestError, Verifier, VerifyError};

/// Where the service says clients reach it: behind a proxy, not what the test server sees.
const PUBLIC_BASE: &str = "https://api.example.com/billing";
const HTU: &str = "https://api.example.com/billing/invoices";

struct Fixture {
    issuer: MockIssuer,
    key: TestKey,
    verifier: Verifier,
}

async fn fixture() -> Fixture {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().realm("invoices").dpop(PUBLIC_BASE).build().await.unwrap();
    Fixture { issuer, key, verifier }
}

impl Fixture {
    /// An access token bound to `dpop_key` (`cnf.jkt`, RFC 9449 §6.1).
    fn bound_token(&self, dpop_key: &DpopKey) -> String {
        let mut claims = claims(self.issuer.issuer());
        claims["cnf"] = json!({ "jkt": dpop_key.thumbprint() });
        self.key.sign(&claims)
    }

    fn bearer_token(&self) -> String {
        self.key.sign(&claims(self.issuer.issuer()))
    }
}

async fn verify(f: &Fixture, token: &str, proof: &str) -> Result<(), DpopRequestError> {
    f.verifier.verify_dpop(token, Some(proof), "GET", "/invoices").await.map(|_| ())
}

fn proof_error(result: Result<(), DpopRequestError>) -> DpopError {
    match result {
        Err(DpopRequestError::Proof(error)) => error,
        other => panic!("expected a proof error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_bound_token_with_a_good_proof_is_accepted_for_each_algorithm() {
    let f = fixture().await;
    for dpop_key in [DpopKey::es256(), DpopKey::ed25519(), DpopKey::rs256()] {
        let token = f.bound_token(&dpop_key);
        let proof = dpop_key.proof_for_token("GET", HTU, &token);
        let claims = f.verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await.unwrap();
        assert_eq!(claims.dpop_jkt(), Some(dpop_key.thumbprint().as_str()));
        // The query is no part of htu (§4.3 check 9).
        let proof = dpop_key.proof_for_token("GET", HTU, &token);
        assert!(f.verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices?page=2").await.is_ok());
    }
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused() {
    let f = fixture().await;
    let token = f.bound_token(&DpopKey::es256());
    assert!(matches!(f.verifier.verify(&token).await, Err(VerifyError::SenderConstrained)));
    // Any confirmation method, not only jkt.
    let mut claims = claims(f.issuer.issuer());
    claims["cnf"] = json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" });
    assert!(matches!(f.verifier.verify(&f.key.sign(&claims)).await, Err(VerifyError::SenderConstrained)));
    // Without cnf the same token is a bearer token.
    assert!(f.verifier.verify(&f.bearer_token()).await.is_ok());
}

#[tokio::test]
async fn a_token_that_is_not_bound_is_refused_with_the_dpop_scheme() {
    let f = fixture().await;
    let dpop_key = DpopKey::es256();
    let token = f.bearer_token();
    let proof = dpop_key.proof_for_token("GET", HTU, &token);
    let result = verify(&f, &token, &proof).await;
    assert!(matches!(result, Err(DpopRequestError::Token(VerifyError::NotSenderConstrained))), "{result:?}");
}

#[tokio::test]
async fn a_proof_by_another_key_is_refused() {
    let f = fixture().await;
    let (holder, thief) = (DpopKey::es256(), DpopKey::es256());
    let token = f.bound_token(&holder);
    let proof = thief.proof_for_token("GET", HTU, &token);
    assert_eq!(proof_error(verify(&f, &token, &proof).await), DpopError::WrongKey);
}

#[tokio::test]
async fn a_proof_for_another_token_is_refused() {
    let f = fixture().await;
    let dpop_key = DpopKey::ed25519();
    let token = f.bound_token(&dpop_key);
    let mut claims = claims(f.issuer.issuer());
    claims["cnf"] = json!({ "jkt": dpop_key.thumbprint() });
    claims["jti"] = json!("another-token");
    let other = f.key.sign(&claims);
    assert_ne!(token, other);
    let proof = dpop_key.proof_for_token("GET", HTU, &other);
    assert_eq!(proof_error(verify(&f, &token, &proof).await), DpopError::WrongTokenHash);
}

#[tokio::test]
async fn a_proof_for_another_method_or_uri_is_refused() {
    let f = fixture().await;
    let dpop_key = DpopKey::es256();
    let token = f.bound_token(&dpop_key);
    let proof = dpop_key.proof_for_token("POST", HTU, &token);
    assert_eq!(proof_error(verify(&f, &token, &proof).await), DpopError::WrongMethod);
    for htu in [
        "https://api.example.com/billing/invoices/1",
        "https://api.example.com/invoices",
        "http://api.example.com/billing/invoices",
        // What the service itself sees behind the proxy.
        "http://127.0.0.1:8080/invoices",
    ] {
        let proof = dpop_key.proof_for_token("GET", htu, &token);
        assert_eq!(proof_error(verify(&f, &token, &proof).await), DpopError::WrongUri, "{htu}");
    }
}

#[tokio::test]
async fn a_stale_or_missing_proof_is_refused() {
    let f = fixture().await;
    let dpop_key = DpopKey::es256();
    let token = f.bound_token(&dpop_key);
    let mut claims = DpopKey::proof_claims("GET", HTU);
    claims["ath"] = access_token_hash(&token).into();
    claims["iat"] = json!(now() - 120);
    let stale = dpop_key.sign(&dpop_key.proof_header(), &claims);
    assert_eq!(proof_error(verify(&f, &token, &stale).await), DpopError::Stale);
    let result = f.verifier.verify_dpop(&token, None, "GET", "/invoices").await;
    assert_eq!(proof_error(result.map(|_| ())), DpopError::Missing);
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let f = fixture().await;
    let dpop_key = DpopKey::es256();
    let token = f.bound_token(&dpop_key);
    let proof = dpop_key.proof_for_token("GET", HTU, &token);
    assert!(verify(&f, &token, &proof).await.is_ok());
    assert_eq!(proof_error(verify(&f, &token, &proof).await), DpopError::Replayed);
    // Clones share the cache.
    let clone = f.verifier.clone();
    let result = clone.verify_dpop(&token, Some(&proof), "GET", "/invoices").await.map(|_| ());
    assert_eq!(proof_error(result), DpopError::Replayed);
    // A fresh proof is fine.
    assert!(verify(&f, &token, &dpop_key.proof_for_token("GET", HTU, &token)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_identical_proofs_exactly_one_is_accepted() {
    let f = fixture().await;
    let dpop_key = DpopKey::ed25519();
    let token: Arc<str> = f.bound_token(&dpop_key).into();
    let proof: Arc<str> = dpop_key.proof_for_token("GET", HTU, &token).into();
    let tasks: Vec<_> = (0..48)
        .map(|_| {
            let (verifier, token, proof) = (f.verifier.clone(), Arc::clone(&token), Arc::clone(&proof));
            tokio::spawn(async move { verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(DpopRequestError::Proof(DpopError::Replayed)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn a_full_replay_cache_refuses_rather_than_forgets() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().dpop(PUBLIC_BASE).dpop_replay_capacity(1).build().await.unwrap();
    let f = Fixture { issuer, key, verifier };
    let dpop_key = DpopKey::es256();
    let token = f.bound_token(&dpop_key);
    assert!(verify(&f, &token, &dpop_key.proof_for_token("GET", HTU, &token)).await.is_ok());
    // Another client: the cache is full.
    let other_key = DpopKey::es256();
    let other_token = f.bound_token(&other_key);
    let result = verify(&f, &other_token, &other_key.proof_for_token("GET", HTU, &other_token)).await;
    assert!(matches!(result, Err(DpopRequestError::Token(VerifyError::ReplayCacheFull))), "{result:?}");
}

/// One holder of a bound token cannot fill the cache: past a tenth of it, its own proofs
/// are refused (401, as a replay), while another client's still get in.
#[tokio::test]
async fn one_key_cannot_fill_the_replay_cache() {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().dpop(PUBLIC_BASE).dpop_replay_capacity(20).build().await.unwrap();
    let f = Fixture { issuer, key, verifier };
    let greedy = DpopKey::es256();
    let token = f.bound_token(&greedy);
    for _ in 0..2 {
        assert!(verify(&f, &token, &greedy.proof_for_token("GET", HTU, &token)).await.is_ok());
    }
    let result = verify(&f, &token, &greedy.proof_for_token("GET", HTU, &token)).await;
    assert!(matches!(result, Err(DpopRequestError::Proof(DpopError::Replayed))), "{result:?}");
    let other = DpopKey::es256();
    let other_token = f.bound_token(&other);
    assert!(verify(&f, &other_token, &other.proof_for_token("GET", HTU, &other_token)).await.is_ok());
}

#[tokio::test]
async fn the_proof_policy_and_base_url_are_configurable_and_checked() {
    let f = fixture().await;
    let verifier = f
        .issuer
        .verifier()
        .dpop("https://api.example.com/")
        .dpop_proof_policy(ProofPolicy::new().algorithms([tessera_verify::Algorithm::ES256]))
        .build()
        .await
        .unwrap();
    let dpop_key = DpopKey::ed25519();
    let token = f.bound_token(&dpop_key);
    let proof = dpop_key.proof_for_token("GET", "https://api.example.com/invoices", &token);
    let result = verifier.verify_dpop(&token, Some(&proof), "GET", "/invoices").await.map(|_| ());
    assert_eq!(proof_error(result), DpopError::UnsupportedAlgorithm);
    for base in ["not a url", "ftp://api.example.com", "https://api.example.com/?a=b"] {
        assert!(f.issuer.verifier().dpop(base).build().await.is_err(), "{base}");
    }
    // Without `dpop`, the verifier does not take DPoP requests.
    let plain = f.issuer.verifier().build().await.unwrap();
    assert!(!plain.accepts_dpop());
    let result = plain.verify_dpop(&token, Some(&proof), "GET", "/invoices").await;
    assert!(matches!(result, Err(DpopRequestError::NotEnabled)));
}

mod extractor {
    use super::*;

    async fn list_invoices(token: AccessToken) -> Result<HttpResponse, BearerError> {
        token.require_scopes(&["invoices:read"])?;
        let scheme = if token.scheme() == Scheme::Dpop { "DPoP" } else { "Bearer" };
        Ok(HttpResponse::Ok().body(format!("{scheme} invoices of {}", token.claims().sub)))
    }

    async fn delete_invoice(token: AccessToken) -> Result<HttpResponse, BearerError> {
        token.require_scopes(&["invoices:delete"])?;
        Ok(HttpResponse::NoContent().finish())
    }

    macro_rules! service {
        ($verifier:expr) => {
            test::init_service(
                App::new()
                    .app_data(web::Data::new($verifier))
                    .route("/invoices", web::get().to(list_invoices))
                    .route("/invoices", web::delete().to(delete_invoice)),
            )
            .await
        };
    }

    fn challenges(response: &ServiceResponse) -> Vec<String> {
        response.headers().get_all(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    async fn body_error(response: ServiceResponse) -> String {
        let body: Value = test::read_body_json(response).await;
        body["error"].as_str().unwrap().to_owned()
    }

    const ALGS: &str = r#"algs="ES256 RS256 EdDSA""#;

    #[actix_web::test]
    async fn a_bound_token_with_its_proof_reaches_the_handler() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::es256();
        let token = f.bound_token(&dpop_key);
        let request = test::TestRequest::get()
            .uri("/invoices?page=1")
            .insert_header((AUTHORIZATION, format!("DPoP {token}")))
            .insert_header(("DPoP", dpop_key.proof_for_token("GET", HTU, &token)));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(test::read_body(response).await, "DPoP invoices of 3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
        // Bearer tokens still work beside DPoP.
        let request = test::TestRequest::get()
            .uri("/invoices")
            .insert_header((AUTHORIZATION, format!("Bearer {}", f.bearer_token())));
        assert_eq!(test::call_service(&app, request.to_request()).await.status(), 200);
    }

    #[actix_web::test]
    async fn a_bound_token_as_bearer_gets_a_dpop_invalid_token_challenge() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let token = f.bound_token(&DpopKey::es256());
        let request =
            test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        let [challenge] = &challenges(&response)[..] else { panic!("one challenge") };
        assert!(challenge.starts_with(r#"DPoP realm="invoices", error="invalid_token""#), "{challenge}");
        assert!(challenge.ends_with(ALGS), "{challenge}");
        assert_eq!(body_error(response).await, "invalid_token");
    }

    #[actix_web::test]
    async fn a_bad_proof_gets_invalid_dpop_proof() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::es256();
        let token = f.bound_token(&dpop_key);
        let good = dpop_key.proof_for_token("GET", HTU, &token);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("no proof", vec![]),
            ("another key", vec![DpopKey::es256().proof_for_token("GET", HTU, &token)]),
            ("another uri", vec![dpop_key.proof_for_token("GET", "https://api.example.com/invoices", &token)]),
            ("another method", vec![dpop_key.proof_for_token("DELETE", HTU, &token)]),
            ("two proofs", vec![good.clone(), good.clone()]),
            ("garbage", vec!["a.b.c".to_owned()]),
        ];
        for (case, proofs) in cases {
            let mut request =
                test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("DPoP {token}")));
            for proof in proofs {
                request = request.append_header(("DPoP", proof));
            }
            let response = test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status(), 401, "{case}");
            let [challenge] = &challenges(&response)[..] else { panic!("one challenge") };
            assert!(
                challenge.starts_with(r#"DPoP realm="invoices", error="invalid_dpop_proof""#),
                "{case}: {challenge}"
            );
            assert!(challenge.ends_with(ALGS), "{case}: {challenge}");
            assert_eq!(body_error(response).await, "invalid_dpop_proof", "{case}");
        }
        // The good proof was not spent by the failures above, and is spent once used.
        for expected in [200, 401] {
            let request = test::TestRequest::get()
                .uri("/invoices")
                .insert_header((AUTHORIZATION, format!("DPoP {token}")))
                .insert_header(("DPoP", good.clone()));
            assert_eq!(test::call_service(&app, request.to_request()).await.status(), expected);
        }
    }

    #[actix_web::test]
    async fn an_unbound_token_with_the_dpop_scheme_gets_invalid_token() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::es256();
        let token = f.bearer_token();
        let request = test::TestRequest::get()
            .uri("/invoices")
            .insert_header((AUTHORIZATION, format!("DPoP {token}")))
            .insert_header(("DPoP", dpop_key.proof_for_token("GET", HTU, &token)));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        assert!(challenges(&response)[0].starts_with(r#"DPoP realm="invoices", error="invalid_token""#));
    }

    #[actix_web::test]
    async fn no_credentials_get_a_bearer_and_a_dpop_challenge() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let response = test::call_service(&app, test::TestRequest::get().uri("/invoices").to_request()).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            challenges(&response),
            [r#"Bearer realm="invoices""#.to_owned(), format!(r#"DPoP realm="invoices", {ALGS}"#)]
        );
    }

    #[actix_web::test]
    async fn insufficient_scope_of_a_dpop_token_is_answered_with_the_dpop_scheme() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::es256();
        let token = f.bound_token(&dpop_key);
        let request = test::TestRequest::delete()
            .uri("/invoices")
            .insert_header((AUTHORIZATION, format!("DPoP {token}")))
            .insert_header(("DPoP", dpop_key.proof_for_token("DELETE", HTU, &token)));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 403);
        let challenge = &challenges(&response)[0];
        assert!(challenge.starts_with(r#"DPoP realm="invoices", error="insufficient_scope""#), "{challenge}");
    }

    #[actix_web::test]
    async fn without_dpop_the_dpop_scheme_is_no_credentials_and_bound_tokens_are_refused() {
        let key = tessera_key();
        let issuer = MockIssuer::start(&[&key]);
        let verifier = issuer.verifier().realm("invoices").build().await.unwrap();
        let f = Fixture { issuer, key, verifier };
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::es256();
        let token = f.bound_token(&dpop_key);
        let request = test::TestRequest::get()
            .uri("/invoices")
            .insert_header((AUTHORIZATION, format!("DPoP {token}")))
            .insert_header(("DPoP", dpop_key.proof_for_token("GET", HTU, &token)));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        assert_eq!(challenges(&response), [r#"Bearer realm="invoices""#]);
        let request =
            test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        let challenge = &challenges(&response)[0];
        assert!(challenge.starts_with(r#"Bearer realm="invoices", error="invalid_token""#), "{challenge}");
    }

    #[actix_web::test]
    async fn a_stale_proof_gets_invalid_dpop_proof() {
        let f = fixture().await;
        let app = service!(f.verifier.clone());
        let dpop_key = DpopKey::rs256();
        let token = f.bound_token(&dpop_key);
        let mut claims = DpopKey::proof_claims("GET", HTU);
        claims["ath"] = access_token_hash(&token).into();
        claims["iat"] = json!(now() - i64::try_from(Duration::from_secs(3600).as_secs()).unwrap());
        let request = test::TestRequest::get()
            .uri("/invoices")
            .insert_header((AUTHORIZATION, format!("DPoP {token}")))
            .insert_header(("DPoP", dpop_key.sign(&dpop_key.proof_header(), &claims)));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        assert!(challenges(&response)[0].contains(r#"error_description="the DPoP proof is too old""#));
    }
}
