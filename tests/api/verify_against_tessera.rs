//! Black box: tokens the real Tessera issues verify with `tessera-verify`, through discovery
//! as a resource server does, and through the synchronous core with the JWK Set Tessera
//! serves, as Tessera does for its own tokens (`/userinfo`, introspection, `id_token_hint`).

use crate::helpers::clients::ClientSpec;
use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};
use tessera::clock::Clock;
use tessera::domain::access_token::AccessTokenFormat;
use tessera_verify::test_util::TestKey;
use tessera_verify::{AccessTokenPolicy, IdTokenPolicy, Introspection, KeySet, Verifier, VerifyError};

const AUDIENCE: &str = "https://api.example.com";

async fn a_client_credentials_token_verifies_through_discovery(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let response = app.client_credentials(&client.id, client.secret(), &[("scope", "invoices:read")]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().expect("an access token");

    // tessera-verify's mock issuer serves the test key exactly as Tessera does.
    let jwks: Value = app.http.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
    let test_key = TestKey::from_pkcs8_pem(include_str!("../../keys/test-signing-key.pem"));
    assert_eq!(jwks["keys"], json!([test_key.public_jwk()]));
    assert_eq!(test_key.kid(), app.kid);

    let verifier = Verifier::builder(&app.address).audience(AUDIENCE).build().await.expect("discovery and JWKS");
    let claims = verifier.verify(token).await.expect("Tessera's token verifies");
    assert_eq!(claims.iss, app.address);
    assert_eq!(claims.sub, client.id);
    assert_eq!(claims.client_id, client.id);
    assert_eq!(claims.aud, [AUDIENCE]);
    assert!(claims.scope.contains("invoices:read"));
    assert!(!claims.scope.contains("invoices:write"), "only the requested scope");
    assert!(claims.exp > claims.iat);
    assert_eq!((claims.sid, claims.fid), (None, None), "no session and no family for client_credentials");
    assert_eq!(verifier.key_ids(), [app.kid.as_str()]);

    // The same token is refused by a service with another audience.
    let other = Verifier::builder(&app.address).audience("https://billing.example.com").build().await.unwrap();
    assert!(matches!(other.verify(token).await, Err(VerifyError::WrongAudience)));
}

async fn an_opaque_token_verifies_through_introspection(app: &TestApp) {
    let service = app
        .register_client(ClientSpec { access_token_format: AccessTokenFormat::Opaque, ..ClientSpec::service() })
        .await;
    let response = app.client_credentials(&service.id, service.secret(), &[("scope", "invoices:read")]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().expect("an access token");
    assert!(token.starts_with("tat_"), "{token}");

    // The resource server's own client serves the token's audience, so Tessera reveals it.
    let api = app
        .register_client(ClientSpec {
            audiences: vec!["https://self.example.com"],
            served_audiences: vec![AUDIENCE],
            ..ClientSpec::service()
        })
        .await;
    let introspection = Introspection::new(api.id.as_str(), api.secret()).cache_ttl(Duration::ZERO);
    let verifier = Verifier::builder(&app.address).audience(AUDIENCE).introspection(introspection).build().await;
    let verifier = verifier.expect("discovery publishes introspection_endpoint");
    let claims = verifier.verify(token).await.expect("Tessera's opaque token verifies");
    assert_eq!((claims.iss.as_str(), claims.sub.as_str()), (app.address.as_str(), service.id.as_str()));
    assert_eq!(claims.client_id, service.id);
    assert_eq!(claims.aud, [AUDIENCE]);
    assert!(claims.scope.contains("invoices:read"));
    assert!(claims.cnf.is_none() && claims.extra.is_empty(), "{claims:?}");

    // A client that may not see the token learns nothing: inactive.
    let stranger = app.register_client(ClientSpec::service()).await;
    let introspection = Introspection::new(stranger.id.as_str(), stranger.secret());
    let blind = Verifier::builder(&app.address).audience(AUDIENCE).introspection(introspection).build().await.unwrap();
    assert!(matches!(blind.verify(token).await, Err(VerifyError::Inactive)));
    // Wrong credentials are the verifier's problem, not the token's.
    let introspection = Introspection::new(api.id.as_str(), "not the secret");
    let wrong = Verifier::builder(&app.address).audience(AUDIENCE).introspection(introspection).build().await.unwrap();
    let result = wrong.verify(token).await;
    assert!(
        matches!(&result, Err(VerifyError::IntrospectionUnavailable(e)) if e.status_code() == Some(401)),
        "{result:?}"
    );

    // Revoked at Tessera: refused on the next introspection (no cache here).
    assert_eq!(app.revoke(&service, token).await.status(), 200);
    assert!(matches!(verifier.verify(token).await, Err(VerifyError::Inactive)));
}

async fn a_users_tokens_verify_with_the_synchronous_core(app: &TestApp) {
    let user = app.create_user("alice").await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let body = app.offline_login(&client, &user).await;
    let access_token = body["access_token"].as_str().expect("an access token");
    let id_token = body["id_token"].as_str().expect("an ID token");
    let jwks = app.http.get(app.url("/jwks.json")).send().await.unwrap().bytes().await.unwrap();
    let keys = KeySet::from_jwks(&jwks).expect("Tessera's JWK Set");
    let now = SystemTime::from(app.clock.now());

    // /userinfo and introspection: any audience, Tessera's clock.
    let access = AccessTokenPolicy::any_audience(&app.address);
    let claims = access.verify(&keys, access_token, now).expect("the access token verifies");
    assert_eq!((claims.sub.as_str(), claims.client_id.as_str()), (user.id.as_str(), client.id.as_str()));
    assert!(claims.scope.contains("openid") && claims.scope.contains("invoices:read"));
    let sid = claims.sid.clone().expect("a session id");
    assert!(claims.fid.is_some(), "the refresh-token family");
    assert!(claims.jti.len() >= 16);

    // Logout: an expired id_token_hint is still a hint (RP-Initiated Logout 1.0 §2).
    let hints = IdTokenPolicy::any_audience(&app.address).allow_expired();
    let hint = hints.verify(&keys, id_token, now).expect("the ID token verifies");
    assert_eq!(hint.sub, user.id.as_str());
    assert_eq!(hint.aud, [client.id.as_str()]);
    assert_eq!(hint.sid.as_deref(), Some(sid.as_str()));

    let a_day_later = now + Duration::from_secs(24 * 60 * 60);
    assert!(hints.verify(&keys, id_token, a_day_later).is_ok());
    let strict = IdTokenPolicy::new(&app.address, [client.id.as_str()]);
    assert!(strict.verify(&keys, id_token, now).is_ok());
    assert!(matches!(strict.verify(&keys, id_token, a_day_later), Err(VerifyError::Expired)));
    assert!(matches!(access.verify(&keys, access_token, a_day_later), Err(VerifyError::Expired)));

    // Neither kind of token passes for the other.
    assert!(matches!(access.verify(&keys, id_token, now), Err(VerifyError::WrongType)));
    assert!(matches!(hints.verify(&keys, access_token, now), Err(VerifyError::WrongType)));
}

crate::backend_tests!(
    a_client_credentials_token_verifies_through_discovery,
    an_opaque_token_verifies_through_introspection,
    a_users_tokens_verify_with_the_synchronous_core
);
