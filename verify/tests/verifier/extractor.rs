//! The actix-web extractor answers as RFC 6750 §3 says.

use crate::support::{access_token_header, claims, now, tessera_key, MockIssuer, MockIssuerExt, TestKey};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use actix_web::{test, web, App, HttpResponse};
use serde_json::json;
use tessera_verify::actix::{AccessToken, BearerError};
use tessera_verify::Verifier;

async fn list_invoices(token: AccessToken) -> Result<HttpResponse, BearerError> {
    token.require_scopes(&["invoices:read"])?;
    Ok(HttpResponse::Ok().body(format!("invoices of {}", token.claims().sub)))
}

async fn delete_invoice(token: AccessToken) -> Result<HttpResponse, BearerError> {
    token.require_scopes(&["invoices:read", "invoices:delete"])?;
    Ok(HttpResponse::NoContent().finish())
}

fn challenge(response: &ServiceResponse) -> String {
    response.headers().get(WWW_AUTHENTICATE).expect("a WWW-Authenticate header").to_str().unwrap().to_owned()
}

struct Fixture {
    issuer: MockIssuer,
    key: TestKey,
    verifier: Verifier,
}

async fn fixture() -> Fixture {
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let verifier = issuer.verifier().realm("invoices").build().await.unwrap();
    Fixture { issuer, key, verifier }
}

macro_rules! service {
    ($verifier:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($verifier))
                .route("/invoices", web::get().to(list_invoices))
                .route("/invoices/1", web::delete().to(delete_invoice)),
        )
        .await
    };
}

#[actix_web::test]
async fn a_valid_token_with_the_scope_reaches_the_handler() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    let token = f.key.sign(&claims(f.issuer.issuer()));
    let request = test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 200);
    let body = test::read_body(response).await;
    assert_eq!(body, "invoices of 3f2c9a4e-7b1d-4c8e-9a65-0d2f1e8b7c43");
}

#[actix_web::test]
async fn no_token_gets_401_with_a_bare_challenge() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    for request in [
        test::TestRequest::get().uri("/invoices"),
        test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, "Basic dXNlcjpwYXNz")),
    ] {
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        // §3.1: no error code when the request carried no bearer credentials.
        assert_eq!(challenge(&response), r#"Bearer realm="invoices""#);
    }
}

#[actix_web::test]
async fn an_invalid_token_gets_401_invalid_token() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    let mut expired = claims(f.issuer.issuer());
    expired["exp"] = json!(now() - 3600);
    for (token, description) in
        [("not-a-jwt".to_owned(), "the access token is malformed"), (f.key.sign(&expired), "the access token expired")]
    {
        let request =
            test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            challenge(&response),
            format!(r#"Bearer realm="invoices", error="invalid_token", error_description="{description}""#)
        );
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["error"], "invalid_token");
    }
}

#[actix_web::test]
async fn a_missing_scope_gets_403_insufficient_scope() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    let token = f.key.sign(&claims(f.issuer.issuer()));
    let request =
        test::TestRequest::delete().uri("/invoices/1").insert_header((AUTHORIZATION, format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 403);
    let challenge = challenge(&response);
    assert!(challenge.starts_with(r#"Bearer realm="invoices", error="insufficient_scope""#), "{challenge}");
    assert!(challenge.ends_with(r#"scope="invoices:read invoices:delete""#), "{challenge}");
}

#[actix_web::test]
async fn two_authorization_headers_get_400_invalid_request() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    let token = f.key.sign(&claims(f.issuer.issuer()));
    let request = test::TestRequest::get()
        .uri("/invoices")
        .append_header((AUTHORIZATION, format!("Bearer {token}")))
        .append_header((AUTHORIZATION, format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 400);
    assert!(challenge(&response).contains(r#"error="invalid_request""#));
}

#[actix_web::test]
async fn unavailable_keys_get_503_without_a_challenge() {
    let f = fixture().await;
    let app = service!(f.verifier.clone());
    f.issuer.set_failing(true);
    let token = f.key.sign_with_header(&access_token_header("rotated-in"), &claims(f.issuer.issuer()));
    let request = test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none(), "the client is not asked for another token");
    assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
    assert_eq!(f.issuer.jwks_requests(), 2, "the refetch was tried");
}

#[actix_web::test]
async fn opaque_tokens_get_200_401_or_503_as_introspection_says() {
    use tessera_verify::test_util::{
        introspection_response, opaque_token, INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET,
    };
    let key = tessera_key();
    let issuer = MockIssuer::start(&[&key]);
    let introspection = tessera_verify::Introspection::new(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET);
    let verifier = issuer.verifier().realm("invoices").introspection(introspection).build().await.unwrap();
    let app = service!(verifier);
    let get = |token: &str| {
        test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}"))).to_request()
    };
    let live = opaque_token();
    issuer.set_introspection(&live, introspection_response(issuer.issuer(), crate::support::AUDIENCE));
    assert_eq!(test::call_service(&app, get(&live)).await.status(), 200);

    let response = test::call_service(&app, get(&opaque_token())).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        challenge(&response),
        r#"Bearer realm="invoices", error="invalid_token", error_description="the access token is not active""#
    );

    // The endpoint is down: not the token's fault (the live one is cached, so a new one).
    issuer.set_introspection_status(503);
    let response = test::call_service(&app, get(&opaque_token())).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(test::call_service(&app, get(&live)).await.status(), 200, "cached");
}

#[actix_web::test]
async fn a_plain_verifier_in_app_data_works_too() {
    let f = fixture().await;
    let app =
        test::init_service(App::new().app_data(f.verifier.clone()).route("/invoices", web::get().to(list_invoices)))
            .await;
    let token = f.key.sign(&claims(f.issuer.issuer()));
    let request = test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, format!("Bearer {token}")));
    assert_eq!(test::call_service(&app, request.to_request()).await.status(), 200);
}

#[actix_web::test]
async fn without_a_verifier_the_extractor_fails_closed() {
    let app = test::init_service(App::new().route("/invoices", web::get().to(list_invoices))).await;
    let request = test::TestRequest::get().uri("/invoices").insert_header((AUTHORIZATION, "Bearer a.b.c"));
    assert_eq!(test::call_service(&app, request.to_request()).await.status(), 500);
}
