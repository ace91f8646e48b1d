//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9):
//! the client signs an assertion with a key whose public half it registered, as a JWK Set
//! or a `jwks_uri`. Each check below fails when its check in the server is removed.

use crate::attacks::in_parallel;
use crate::helpers::browser::{form_tokens, AuthorizeRequest, PASSWORD};
use crate::helpers::client_assertions::{assertion_claims, jwks, ClientKey, JwksServer, ASSERTION_TYPE};
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp, TestDatabase};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera::clock::Clock;
use tessera::domain::client::{AuthMethod, KeySource};

async fn access_token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200, "a token");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn client_credentials_with_rs256_es256_and_eddsa(app: &TestApp) {
    for key in [ClientKey::rsa(), ClientKey::es256(), ClientKey::ed25519()] {
        let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
        for aud in [app.address.clone(), app.url("/token")] {
            let response = app.client_credentials_with_assertion(&key.assertion(app, &client.id, &aud)).await;
            let token = access_token_of(response).await;
            let claims = app.verify_access_token(&token, "https://api.example.com").await;
            assert_eq!(claims["sub"], client.id.as_str(), "{}", key.alg());
            assert_eq!(claims["client_id"], client.id.as_str());
        }
        // Without `kid`, each key for the alg is tried.
        let mut header = key.header();
        header.as_object_mut().unwrap().remove("kid");
        let assertion = key.sign(&header, &assertion_claims(app, &client.id, &app.address));
        access_token_of(app.client_credentials_with_assertion(&assertion).await).await;
        // client_id in the body, naming the same client, is fine.
        let assertion = key.assertion(app, &client.id, &app.address);
        let form = [("grant_type", "client_credentials"), ("client_id", client.id.as_str())];
        assert_eq!(app.post_with_assertion("/token", &assertion, &form).await.status(), 200);
    }
}

async fn revoke_introspect_and_par_accept_assertions_for_their_own_url(app: &TestApp) {
    let key = ClientKey::es256();
    let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let token =
        access_token_of(app.client_credentials_with_assertion(&key.assertion(app, &client.id, &app.address)).await)
            .await;
    let introspected = app
        .post_with_assertion(
            "/introspect",
            &key.assertion(app, &client.id, &app.url("/introspect")),
            &[("token", &token)],
        )
        .await;
    assert_eq!(introspected.status(), 200);
    assert_eq!(introspected.json::<Value>().await.unwrap()["active"], true);
    let revoked = app
        .post_with_assertion("/revoke", &key.assertion(app, &client.id, &app.url("/revoke")), &[("token", &token)])
        .await;
    assert_eq!(revoked.status(), 200);
    let introspected = app
        .post_with_assertion(
            "/introspect",
            &key.assertion(app, &client.id, &app.url("/introspect")),
            &[("token", &token)],
        )
        .await;
    assert_eq!(introspected.json::<Value>().await.unwrap()["active"], false);
    // Another endpoint's URL is not an audience here.
    let wrong = key.assertion(app, &client.id, &app.url("/introspect"));
    let wrong = app.post_with_assertion("/revoke", &wrong, &[("token", &token)]).await;
    assert_oauth_error(wrong, 401, "invalid_client").await;

    // PAR (RFC 9126 §2): the PAR endpoint's URL is an audience.
    let web = app
        .register_client(ClientSpec {
            auth_method: AuthMethod::PrivateKeyJwt,
            keys: Some(KeySource::Jwks(jwks(&[&key]))),
            ..ClientSpec::web_app()
        })
        .await;
    let user = app.create_user("carol").await;
    let request = AuthorizeRequest::new(&web, WEB_APP_REDIRECT_URI);
    let form: Vec<(String, String)> = request.params();
    let form: Vec<(&str, &str)> = form.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let pushed = app.post_with_assertion("/par", &key.assertion(app, &web.id, &app.url("/par")), &form).await;
    assert_eq!(pushed.status(), 201);
    let request_uri = pushed.json::<Value>().await.unwrap()["request_uri"].as_str().unwrap().to_owned();
    let page = app.authorize_with_request_uri(&web.id, &request_uri, &[]).await;
    let consent = app.submit_login(&form_tokens(&page.text().await.unwrap()), user.username.as_str(), PASSWORD).await;
    let params = app.finish_consent(consent).await;
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", WEB_APP_REDIRECT_URI),
        ("code_verifier", request.pkce.verifier.as_str()),
    ];
    let response = app.post_with_assertion("/token", &key.assertion(app, &web.id, &app.url("/token")), &exchange).await;
    assert_eq!(response.status(), 200);
}

async fn assertions_that_fail_a_check_are_refused_and_store_nothing(app: &TestApp) {
    let key = ClientKey::rsa();
    let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let refused = |assertion: String| async move {
        assert_oauth_error(app.client_credentials_with_assertion(&assertion).await, 401, "invalid_client").await
    };
    let claims = || assertion_claims(app, &client.id, &app.address);
    let with = |name: &str, value: Value| {
        let mut claims = claims();
        claims[name] = value;
        key.sign(&key.header(), &claims)
    };
    let without = |name: &str| {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove(name);
        key.sign(&key.header(), &claims)
    };
    let now = app.clock.now().timestamp();
    refused(with("exp", json!(now - 1))).await;
    refused(without("exp")).await;
    refused(with("exp", json!(now + 3600))).await;
    refused(with("iat", json!(now + 600))).await;
    refused(with("nbf", json!(now + 600))).await;
    refused(with("aud", json!("https://other.example.com/token"))).await;
    refused(without("aud")).await;
    refused(with("iss", json!("someone-else"))).await;
    refused(without("jti")).await;
    let mut other_client = claims();
    other_client["iss"] = json!("someone-else");
    other_client["sub"] = json!("someone-else");
    refused(key.sign(&key.header(), &other_client)).await;

    // Signed by a key the client did not register, under its kid or another.
    let stranger = ClientKey::rsa();
    refused(stranger.sign(&key.header(), &claims())).await;
    refused(stranger.assertion(app, &client.id, &app.address)).await;
    // An EC key's signature presented as the client's.
    let ec = ClientKey::es256();
    refused(ec.assertion(app, &client.id, &app.address)).await;
    // alg none and HS256 (with the public key as the HMAC secret): never accepted.
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    refused(format!("{}.{}.", encode(&json!({"alg": "none"})), encode(&claims()))).await;
    let hs_input = format!("{}.{}", encode(&json!({"alg": "HS256", "kid": key.kid()})), encode(&claims()));
    let secret = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwks(&[&key]).as_bytes());
    let mac = aws_lc_rs::hmac::sign(&secret, hs_input.as_bytes());
    refused(format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))).await;
    refused("not.a.jwt".into()).await;
    assert_eq!(app.count_rows("client_assertion_jtis").await, 0, "nothing unverified or refused is recorded");

    // A tampered payload under a valid signature.
    let valid = key.assertion(app, &client.id, &app.address);
    let parts: Vec<&str> = valid.split('.').collect();
    let mut tampered = claims();
    tampered["exp"] = json!(now + 120);
    refused(format!("{}.{}.{}", parts[0], encode(&tampered), parts[2])).await;
    access_token_of(app.client_credentials_with_assertion(&valid).await).await;
}

async fn an_assertion_is_used_once(app: &TestApp) {
    let key = ClientKey::ed25519();
    let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let assertion = key.assertion(app, &client.id, &app.address);
    access_token_of(app.client_credentials_with_assertion(&assertion).await).await;
    let replay = app.client_credentials_with_assertion(&assertion).await;
    let body = assert_oauth_error(replay, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("jti"), "{body}");
    // Another client may pick the same jti.
    let other = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let mut claims = assertion_claims(app, &other.id, &app.address);
    let jti: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(assertion.split('.').nth(1).unwrap()).unwrap()).unwrap();
    claims["jti"] = jti["jti"].clone();
    access_token_of(app.client_credentials_with_assertion(&key.sign(&key.header(), &claims)).await).await;
    // Recorded until the assertion expires, then purged.
    assert_eq!(app.count_rows("client_assertion_jtis").await, 2);
    app.clock.advance(chrono::Duration::seconds(61));
    tessera::housekeeping::purge(&*app.storage, &*app.clock, 500, app.settings.ssf.inactivity_timeout.chrono())
        .await
        .unwrap();
    assert_eq!(app.count_rows("client_assertion_jtis").await, 0);
}

async fn forty_parallel_uses_of_one_assertion_get_one_token(app: &TestApp) {
    let key = ClientKey::es256();
    let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let assertion = key.assertion(app, &client.id, &app.address);
    let statuses = in_parallel(40, |_| {
        let (app, assertion) = (app, &assertion);
        async move { app.client_credentials_with_assertion(assertion).await.status().as_u16() }
    })
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 39, "{statuses:?}");
}

async fn mixed_or_malformed_authentication_is_invalid_request(app: &TestApp) {
    let key = ClientKey::rsa();
    let client = app.register_key_client(KeySource::Jwks(jwks(&[&key]))).await;
    let assertion = key.assertion(app, &client.id, &app.address);
    let token = app.url("/token");
    let grant = ("grant_type", "client_credentials");
    let basic = app
        .http
        .post(&token)
        .basic_auth(&client.id, Some("x"))
        .form(&[grant, ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(basic, 400, "invalid_request").await;
    let secret =
        [grant, ("client_secret", "x"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)];
    assert_oauth_error(app.http.post(&token).form(&secret).send().await.unwrap(), 400, "invalid_request").await;
    let wrong_type = [grant, ("client_assertion_type", "urn:example:saml"), ("client_assertion", &assertion)];
    assert_oauth_error(app.http.post(&token).form(&wrong_type).send().await.unwrap(), 400, "invalid_request").await;
    let no_type = [grant, ("client_assertion", &assertion)];
    assert_oauth_error(app.http.post(&token).form(&no_type).send().await.unwrap(), 400, "invalid_request").await;
    let huge = format!("{assertion}{}", "A".repeat(9 * 1024));
    assert_oauth_error(app.client_credentials_with_assertion(&huge).await, 400, "invalid_request").await;
    let other_id = [grant, ("client_id", "someone-else")];
    assert_oauth_error(app.post_with_assertion("/token", &assertion, &other_id).await, 401, "invalid_client").await;
    // The client registered for private_key_jwt cannot present a bare id, and a secret
    // client cannot present an assertion.
    let bare = [grant, ("client_id", client.id.as_str())];
    assert_oauth_error(app.http.post(&token).form(&bare).send().await.unwrap(), 401, "invalid_client").await;
    let secret_client = app.register_client(ClientSpec::service()).await;
    let foreign = key.assertion(app, &secret_client.id, &app.address);
    assert_oauth_error(app.client_credentials_with_assertion(&foreign).await, 401, "invalid_client").await;
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("private_key_jwt")));
    assert_eq!(metadata["token_endpoint_auth_signing_alg_values_supported"], json!(["RS256", "ES256", "EdDSA"]));
}

async fn a_jwks_uri_is_fetched_once_and_refetched_for_a_new_kid_at_most_every_30_seconds(app: &TestApp) {
    let first = ClientKey::es256();
    let server = JwksServer::start(jwks(&[&first]));
    let client = app.register_key_client(KeySource::Uri(server.url.clone())).await;
    for _ in 0..5 {
        access_token_of(app.client_credentials_with_assertion(&first.assertion(app, &client.id, &app.address)).await)
            .await;
    }
    assert_eq!(server.fetches(), 1, "cached");

    // The client rotates its key; the first assertion with the new kid refetches.
    let second = ClientKey::es256();
    server.publish(jwks(&[&first, &second]));
    access_token_of(app.client_credentials_with_assertion(&second.assertion(app, &client.id, &app.address)).await)
        .await;
    assert_eq!(server.fetches(), 2, "an unknown kid refetches");

    // A stranger's assertions with unknown kids do not make Tessera fetch again.
    for _ in 0..10 {
        let stranger = ClientKey::es256();
        let refused = app.client_credentials_with_assertion(&stranger.assertion(app, &client.id, &app.address)).await;
        assert_oauth_error(refused, 401, "invalid_client").await;
    }
    assert_eq!(server.fetches(), 2, "at most one refetch per 30 seconds");
    app.clock.advance(chrono::Duration::seconds(31));
    let stranger = ClientKey::es256();
    let refused = app.client_credentials_with_assertion(&stranger.assertion(app, &client.id, &app.address)).await;
    assert_oauth_error(refused, 401, "invalid_client").await;
    assert_eq!(server.fetches(), 3);

    // The keys server down: refused, no error 500.
    server.stop().await;
    app.clock.advance(chrono::Duration::seconds(31));
    let third = ClientKey::es256();
    let refused = app.client_credentials_with_assertion(&third.assertion(app, &client.id, &app.address)).await;
    assert_oauth_error(refused, 401, "invalid_client").await;
}

async fn a_jwks_uri_response_is_cached_for_its_max_age_and_bounded_in_size(app: &TestApp) {
    let key = ClientKey::rsa();
    let server = JwksServer::start(jwks(&[&key]));
    server.cache_control("public, max-age=600");
    let client = app.register_key_client(KeySource::Uri(server.url.clone())).await;
    let token = || {
        let assertion = key.assertion(app, &client.id, &app.address);
        async move { app.client_credentials_with_assertion(&assertion).await }
    };
    assert_eq!(token().await.status(), 200);
    app.clock.advance(chrono::Duration::seconds(400));
    assert_eq!(token().await.status(), 200);
    assert_eq!(server.fetches(), 1, "max-age=600 outlasts the 5-minute default");
    app.clock.advance(chrono::Duration::seconds(201));
    assert_eq!(token().await.status(), 200);
    assert_eq!(server.fetches(), 2, "stale after its max-age");

    // A set larger than 16 KB is not taken: the previous one stands.
    server.publish(format!("{{\"keys\": [], \"padding\": \"{}\"}}", "x".repeat(20 * 1024)));
    app.clock.advance(chrono::Duration::seconds(601));
    assert_eq!(token().await.status(), 200, "the previous set stands");
    assert_eq!(server.fetches(), 3);
    let other = ClientKey::rsa();
    let oversized = app.register_key_client(KeySource::Uri(server.url.clone())).await;
    let refused = app.client_credentials_with_assertion(&other.assertion(app, &oversized.id, &app.address)).await;
    assert_oauth_error(refused, 401, "invalid_client").await;
    server.stop().await;
}

async fn a_disabled_private_key_jwt_client_is_refused(app: &TestApp) {
    let key = ClientKey::ed25519();
    let client = app
        .register_client(ClientSpec {
            auth_method: AuthMethod::PrivateKeyJwt,
            keys: Some(KeySource::Jwks(jwks(&[&key]))),
            disabled: true,
            ..ClientSpec::service()
        })
        .await;
    let refused = app.client_credentials_with_assertion(&key.assertion(app, &client.id, &app.address)).await;
    let body = assert_oauth_error(refused, 401, "invalid_client").await;
    assert!(body["error_description"].as_str().unwrap().contains("disabled"), "{body}");
    assert_eq!(app.count_rows("client_assertion_jtis").await, 0);
}

crate::backend_tests!(
    a_jwks_uri_response_is_cached_for_its_max_age_and_bounded_in_size,
    a_disabled_private_key_jwt_client_is_refused,
    client_credentials_with_rs256_es256_and_eddsa,
    revoke_introspect_and_par_accept_assertions_for_their_own_url,
    assertions_that_fail_a_check_are_refused_and_store_nothing,
    an_assertion_is_used_once,
    forty_parallel_uses_of_one_assertion_get_one_token,
    mixed_or_malformed_authentication_is_invalid_request,
    a_jwks_uri_is_fetched_once_and_refetched_for_a_new_kid_at_most_every_30_seconds,
);

/// The SSRF guard: with loopback not allowed (the default), a `jwks_uri` on 127.0.0.1 is
/// never fetched, even one that made it into storage.
async fn a_jwks_uri_the_outbound_policy_refuses_is_not_fetched(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.private_key_jwt.allow_loopback_jwks_uri = false).await.unwrap();
    let key = ClientKey::rsa();
    let server = JwksServer::start(jwks(&[&key]));
    for url in [server.url.clone(), server.url.replace("127.0.0.1", "localhost")] {
        let client: TestClient = app.register_key_client(KeySource::Uri(url)).await;
        let refused = app.client_credentials_with_assertion(&key.assertion(&app, &client.id, &app.address)).await;
        assert_oauth_error(refused, 401, "invalid_client").await;
    }
    assert_eq!(server.fetches(), 0);
    server.stop().await;
    app.stop().await;
}

mod with_settings {
    use super::*;
    crate::database_tests!(a_jwks_uri_the_outbound_policy_refuses_is_not_fetched);
}
