//! DPoP (RFC 9449) at the token endpoint (§5: bound access tokens for every grant, a
//! public client's refresh tokens bound to its key), with server nonces (§8) and single-use
//! proofs (§11.1); at `/userinfo` (§7) and introspection (§6.2). Each refusal below is
//! the one check it names: the proof is otherwise valid, nonce included.

use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::dpop::{unsigned_jws, DpopKey, Proof};
use crate::helpers::{assert_oauth_error, TestApp};
use aws_lc_rs::hmac;
use serde_json::{json, Value};
use tessera::clock::Clock;
use tessera::domain::client::AuthMethod;

const CLIENT_CREDENTIALS: [(&str, &str); 1] = [("grant_type", "client_credentials")];

async fn claims_of(app: &TestApp, body: &Value) -> Value {
    app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await
}

/// Asserts a refusal of the proof: 400 `invalid_dpop_proof` (§5).
async fn assert_invalid_proof(response: reqwest::Response) -> Value {
    assert_oauth_error(response, 400, "invalid_dpop_proof").await
}

async fn client_credentials_with_a_proof_get_a_token_bound_to_its_key(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    for key in [DpopKey::es256(), DpopKey::ed25519()] {
        let response = app.dpop_token_request(&client, &CLIENT_CREDENTIALS, &key).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "RFC 9449 §5");
        let claims = claims_of(app, &body).await;
        assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}), "RFC 9449 §6.1");
    }
    // RS256, with tessera-verify's test key (its thumbprint computed by tessera-verify).
    let rsa = tessera_verify::test_util::DpopKey::rs256();
    let nonce = app.dpop_nonce(&client, &DpopKey::es256()).await;
    let mut claims = tessera_verify::test_util::DpopKey::proof_claims("POST", &app.url("/token"));
    claims["nonce"] = json!(nonce);
    let proof = rsa.sign(&rsa.proof_header(), &claims);
    let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(claims_of(app, &body).await["cnf"], json!({"jkt": rsa.thumbprint()}));
}

async fn without_a_proof_a_bearer_token_is_issued_as_before(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let body: Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims_of(app, &body).await.get("cnf").is_none());
}

async fn a_client_registered_for_dpop_bound_tokens_needs_a_proof(app: &TestApp) {
    let client = app.register_client(ClientSpec { dpop_bound_access_tokens: true, ..ClientSpec::service() }).await;
    let refused = app.client_credentials(&client.id, client.secret(), &[]).await;
    let body = assert_invalid_proof(refused).await;
    assert!(body["error_description"].as_str().unwrap().contains("DPoP proof required"), "{body}");
    let response = app.dpop_token_request(&client, &CLIENT_CREDENTIALS, &DpopKey::es256()).await;
    assert_eq!(response.status(), 200);
}

/// §8: without a nonce, `use_dpop_nonce` and a `DPoP-Nonce`, which then works; an unknown
/// or expired nonce is refused the same way.
async fn the_server_nonce_is_required_and_then_works(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await; // asserts use_dpop_nonce + DPoP-Nonce
    let with = |nonce: &str| key.token_proof(app, Some(nonce));
    let made_up = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&with("made-up-nonce"))).await;
    assert_eq!(made_up.headers()["dpop-nonce"], nonce.as_str());
    assert_oauth_error(made_up, 400, "use_dpop_nonce").await;

    let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&with(&nonce))).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("dpop-nonce").is_none(), "the nonce is current: nothing new to say");

    // One period later the nonce is still accepted, and the answer brings the next one.
    let lifetime = chrono::Duration::from_std(app.settings.dpop.nonce_lifetime.0).unwrap();
    app.clock.advance(lifetime);
    let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&with(&nonce))).await;
    assert_eq!(response.status(), 200);
    let next = response.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_ne!(next, nonce);
    // Two periods later it has expired.
    app.clock.advance(lifetime);
    let expired = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&with(&nonce))).await;
    assert_oauth_error(expired, 400, "use_dpop_nonce").await;
    let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&with(&next))).await;
    assert_eq!(response.status(), 200);
}

async fn a_replayed_proof_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let proof = key.token_proof(app, Some(&nonce));
    let first = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await;
    assert_eq!(first.status(), 200);
    let replay = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await;
    assert_invalid_proof(replay).await;
}

/// §11.1 under concurrency: the jti record is one insert, so of 40 parallel requests with
/// one proof exactly one gets a token, on both backends.
async fn of_forty_parallel_requests_with_one_proof_exactly_one_succeeds(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let proof = key.token_proof(app, Some(&nonce));
    let requests = (0..40).map(|_| app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)));
    let responses = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
}

async fn a_proof_for_another_url_or_method_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let bent = [
        Proof { htu: app.url("/userinfo"), ..Proof::at(app, "POST", "/token") },
        Proof { htu: "https://tessera.example.com/token".into(), ..Proof::at(app, "POST", "/token") },
        Proof::at(app, "GET", "/token"),
    ];
    for proof in bent {
        let proof = key.sign_proof(&proof.nonce(&nonce));
        assert_invalid_proof(app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await).await;
    }
    // The same proof for the right URL and method is fine (the nonce is still good).
    let proof = key.sign_proof(&Proof::at(app, "POST", "/token").nonce(&nonce));
    assert_eq!(app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await.status(), 200);
}

async fn a_stale_or_future_proof_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let now = app.clock.now().timestamp();
    let max_age = app.settings.dpop.proof_max_age.0.as_secs() as i64;
    for iat in [now - max_age - 30, now + 120] {
        let proof = key.sign_proof(&Proof { iat, ..Proof::at(app, "POST", "/token").nonce(&nonce) });
        assert_invalid_proof(app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await).await;
    }
}

/// §4.3 checks 4–7: `typ`, an asymmetric algorithm (never `none` nor a MAC), a public key
/// only, and a signature that verifies with it.
async fn unsigned_mac_private_key_or_forged_proofs_are_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let good = || Proof::at(app, "POST", "/token").nonce(&nonce);
    let claims = |p: &Proof| json!({"jti": p.jti, "htm": p.htm, "htu": p.htu, "iat": p.iat, "nonce": nonce});

    let none = {
        let p = good();
        unsigned_jws(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}), &claims(&p), b"")
    };
    let hs256 = {
        let p = good();
        let header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
        let unsigned = unsigned_jws(&header, &claims(&p), b"");
        let input = unsigned.trim_end_matches('.');
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"secret"), input.as_bytes());
        unsigned_jws(&header, &claims(&p), tag.as_ref())
    };
    let private_jwk = key
        .sign_proof(&Proof { jwk_extra: Some(json!({"d": "c2VjcmV0LWQtdmFsdWUtb2YtMzItYnl0ZXMtbG9uZyE"})), ..good() });
    let wrong_typ = key.sign_proof(&Proof { typ: "JWT", ..good() });
    let forged = {
        // One character in the middle of the signature: every bit of it counts.
        let mut proof = key.sign_proof(&good()).into_bytes();
        let at = proof.len() - 20;
        proof[at] = if proof[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(proof).unwrap()
    };
    let other_key = {
        // Signed by one key, naming another in `jwk`.
        let signer = DpopKey::es256();
        let proof = signer.sign_proof(&good());
        let (_, rest) = proof.split_once('.').unwrap();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk()});
        format!(
            "{}.{rest}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header.to_string())
        )
    };
    for (what, proof) in [
        ("alg none", none),
        ("HS256", hs256),
        ("private key in jwk", private_jwk),
        ("typ JWT", wrong_typ),
        ("bad signature", forged),
        ("signed by another key", other_key),
    ] {
        let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&proof)).await;
        assert_eq!(response.status(), 400, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}: {body}");
    }
}

async fn several_or_malformed_dpop_headers_are_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let nonce = app.dpop_nonce(&client, &key).await;
    let (one, two) = (key.token_proof(app, Some(&nonce)), key.token_proof(app, Some(&nonce)));
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.id, Some(client.secret()))
        .header("DPoP", &one)
        .header("DPoP", &two)
        .form(&CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_invalid_proof(response).await;
    for malformed in ["", "not a jws", "a.b", "a,b.c"] {
        let response = app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(malformed)).await;
        assert_invalid_proof(response).await;
    }
    let huge = "a".repeat(10_000);
    assert_invalid_proof(app.token_request_with_proof(&client, &CLIENT_CREDENTIALS, Some(&huge)).await).await;
}

/// A public first-party app that gets refresh tokens.
fn public_offline_app() -> ClientSpec {
    ClientSpec { auth_method: AuthMethod::None, ..ClientSpec::offline_app() }
}

/// Logs in at `client` and exchanges the code with a proof of `key` (or none).
pub(crate) async fn offline_login_with(app: &TestApp, client: &TestClient, key: Option<&DpopKey>) -> Value {
    let user = app.create_user(&format!("user-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])).await;
    let request = AuthorizeRequest {
        scope: Some("openid profile offline_access invoices:read".into()),
        ..AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)
    }
    .with("prompt", "consent");
    let params = app.authorize_and_log_in(&request, &user).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", WEB_APP_REDIRECT_URI),
        ("code_verifier", request.pkce.verifier.as_str()),
    ];
    let response = match key {
        Some(key) => app.dpop_token_request(client, &form, key).await,
        None => app.token_request_with_proof(client, &form, None).await,
    };
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh_with(app: &TestApp, client: &TestClient, token: &str, key: Option<&DpopKey>) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    match key {
        Some(key) => app.dpop_token_request(client, &form, key).await,
        None => app.token_request_with_proof(client, &form, None).await,
    }
}

/// §5 (end): a public client's refresh tokens are bound to the key of the code exchange;
/// without it, or with another, a refresh is `invalid_grant` and changes nothing (no
/// rotation, no reuse detection: the token still works with the key).
async fn a_public_clients_refresh_tokens_are_bound_to_its_key(app: &TestApp) {
    let client = app.register_client(public_offline_app()).await;
    let key = DpopKey::es256();
    let body = offline_login_with(app, &client, Some(&key)).await;
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(claims_of(app, &body).await["cnf"]["jkt"], key.thumbprint());
    let refresh_token = body["refresh_token"].as_str().unwrap();

    let without = refresh_with(app, &client, refresh_token, None).await;
    assert_oauth_error(without, 400, "invalid_grant").await;
    let other = refresh_with(app, &client, refresh_token, Some(&DpopKey::es256())).await;
    assert_oauth_error(other, 400, "invalid_grant").await;

    let refreshed = refresh_with(app, &client, refresh_token, Some(&key)).await;
    assert_eq!(refreshed.status(), 200, "neither refusal rotated the token nor revoked the family");
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_eq!(claims_of(app, &refreshed).await["cnf"]["jkt"], key.thumbprint());
    // The successor is bound too.
    let next = refreshed["refresh_token"].as_str().unwrap();
    assert_oauth_error(refresh_with(app, &client, next, None).await, 400, "invalid_grant").await;
    assert_eq!(refresh_with(app, &client, next, Some(&key)).await.status(), 200);
}

/// A confidential client's refresh tokens are not bound (its authentication binds them);
/// each access token is bound to the key of the proof it was requested with, if any.
async fn a_confidential_clients_refresh_tokens_are_not_bound(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let (first, second) = (DpopKey::es256(), DpopKey::es256());
    let body = offline_login_with(app, &client, Some(&first)).await;
    assert_eq!(claims_of(app, &body).await["cnf"]["jkt"], first.thumbprint());

    let bearer = refresh_with(app, &client, body["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(bearer.status(), 200);
    let bearer: Value = bearer.json().await.unwrap();
    assert_eq!(bearer["token_type"], "Bearer");
    assert!(claims_of(app, &bearer).await.get("cnf").is_none());

    let rebound = refresh_with(app, &client, bearer["refresh_token"].as_str().unwrap(), Some(&second)).await;
    assert_eq!(rebound.status(), 200);
    let rebound: Value = rebound.json().await.unwrap();
    assert_eq!(claims_of(app, &rebound).await["cnf"]["jkt"], second.thumbprint());
}

/// A public client that exchanged its code without DPoP keeps unbound refresh tokens.
async fn a_code_exchanged_without_a_proof_starts_an_unbound_family(app: &TestApp) {
    let client = app.register_client(public_offline_app()).await;
    let body = offline_login_with(app, &client, None).await;
    assert_eq!(body["token_type"], "Bearer");
    let refreshed = refresh_with(app, &client, body["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(refreshed.status(), 200);
}

async fn dpop_client(app: &TestApp) -> (TestClient, DpopKey, String) {
    let client = app.register_client(public_offline_app()).await;
    let key = DpopKey::es256();
    let body = offline_login_with(app, &client, Some(&key)).await;
    (client, key, body["access_token"].as_str().unwrap().to_owned())
}

/// §7: a DPoP-bound token at `/userinfo`, with a proof of its key for this request.
async fn userinfo_accepts_a_bound_token_with_its_proof(app: &TestApp) {
    let (_, key, token) = dpop_client(app).await;
    let response = app.userinfo_with("DPoP", &token, Some(&key.userinfo_proof(app, &token))).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["sub"].is_string());
    // POST too, with htm POST.
    let proof = key.sign_proof(&Proof::at(app, "POST", "/userinfo").ath(&token));
    let response = app
        .http
        .post(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

/// §7.1: refusals answer 401 with a `DPoP` challenge naming the error and the algorithms.
fn assert_dpop_challenge(response: &reqwest::Response, error: &str, what: &str) {
    assert_eq!(response.status(), 401, "{what}");
    let challenge = challenge(response);
    assert!(challenge.starts_with("DPoP "), "{what}: {challenge}");
    assert!(challenge.contains(&format!(r#"error="{error}""#)), "{what}: {challenge}");
    assert!(challenge.contains(r#"algs="ES256 RS256 EdDSA""#), "{what}: {challenge}");
}

async fn a_bound_token_used_as_a_bearer_token_is_refused(app: &TestApp) {
    let (_, _, token) = dpop_client(app).await;
    let response = app.userinfo(&token).await;
    assert_dpop_challenge(&response, "invalid_token", "Bearer use of a DPoP-bound token");
}

async fn an_unbound_token_with_the_dpop_scheme_is_refused(app: &TestApp) {
    let client = app.register_client(public_offline_app()).await;
    let body = offline_login_with(app, &client, None).await;
    let token = body["access_token"].as_str().unwrap();
    let key = DpopKey::es256();
    let response = app.userinfo_with("DPoP", token, Some(&key.userinfo_proof(app, token))).await;
    assert_dpop_challenge(&response, "invalid_token", "an unbound token as DPoP");
    assert_eq!(app.userinfo(token).await.status(), 200, "as Bearer, as ever");
}

async fn userinfo_refuses_a_wrong_proof(app: &TestApp) {
    let (_, key, token) = dpop_client(app).await;
    let good = || Proof::at(app, "GET", "/userinfo").ath(&token);
    let replayed = key.userinfo_proof(app, &token);
    assert_eq!(app.userinfo_with("DPoP", &token, Some(&replayed)).await.status(), 200);
    let stale = app.clock.now().timestamp() - app.settings.dpop.proof_max_age.0.as_secs() as i64 - 30;
    let cases = [
        ("no proof", None),
        ("a replayed proof", Some(replayed)),
        ("another key", Some(DpopKey::es256().userinfo_proof(app, &token))),
        ("wrong ath", Some(key.sign_proof(&good().ath("another token")))),
        ("no ath", Some(key.sign_proof(&Proof { ath: None, ..good() }))),
        ("wrong htm", Some(key.sign_proof(&Proof { htm: "POST".into(), ..good() }))),
        ("wrong htu", Some(key.sign_proof(&Proof { htu: app.url("/token"), ..good() }))),
        ("stale iat", Some(key.sign_proof(&Proof { iat: stale, ..good() }))),
    ];
    for (what, proof) in cases {
        let response = app.userinfo_with("DPoP", &token, proof.as_deref()).await;
        assert_dpop_challenge(&response, "invalid_dpop_proof", what);
    }
}

/// §11.1 at `/userinfo`: the same single insert, so of 20 parallel requests with one proof
/// exactly one is answered.
async fn of_parallel_userinfo_requests_with_one_proof_exactly_one_succeeds(app: &TestApp) {
    let (_, key, token) = dpop_client(app).await;
    let proof = key.userinfo_proof(app, &token);
    let requests = (0..20).map(|_| app.userinfo_with("DPoP", &token, Some(&proof)));
    let statuses: Vec<u16> =
        futures_util::future::join_all(requests).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
}

/// The Shared Signals endpoints take Bearer tokens only: a DPoP-bound receiver token sent
/// as one is refused (§7.1), not accepted from whoever holds it.
async fn a_bound_token_is_refused_at_the_shared_signals_endpoints(app: &TestApp) {
    let receiver = app.register_client(ClientSpec::receiver()).await;
    let body: Value =
        app.dpop_token_request(&receiver, &CLIENT_CREDENTIALS, &DpopKey::es256()).await.json().await.unwrap();
    let bound = body["access_token"].as_str().unwrap();
    let response = app.ssf(reqwest::Method::GET, "/ssf/streams", Some(bound), None).await;
    assert_eq!(response.status(), 401);
    let bearer = app.token_of(&receiver).await;
    assert_eq!(app.ssf(reqwest::Method::GET, "/ssf/streams", Some(&bearer), None).await.status(), 200);
}

/// §6.2: introspection says a bound token is `DPoP` and gives its `cnf`.
async fn introspection_reports_the_binding(app: &TestApp) {
    let client = app.register_client(ClientSpec::service()).await;
    let key = DpopKey::es256();
    let body: Value = app.dpop_token_request(&client, &CLIENT_CREDENTIALS, &key).await.json().await.unwrap();
    let introspected = app.introspect(&client, body["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"], json!({"jkt": key.thumbprint()}));

    let bearer: Value = app.client_credentials(&client.id, client.secret(), &[]).await.json().await.unwrap();
    let introspected = app.introspect(&client, bearer["access_token"].as_str().unwrap()).await;
    assert_eq!(introspected["token_type"], "Bearer");
    assert!(introspected.get("cnf").is_none());
}

async fn discovery_lists_the_proof_algorithms(app: &TestApp) {
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["dpop_signing_alg_values_supported"], json!(["ES256", "RS256", "EdDSA"]));
}

crate::backend_tests!(
    client_credentials_with_a_proof_get_a_token_bound_to_its_key,
    without_a_proof_a_bearer_token_is_issued_as_before,
    a_client_registered_for_dpop_bound_tokens_needs_a_proof,
    the_server_nonce_is_required_and_then_works,
    a_replayed_proof_is_refused,
    of_forty_parallel_requests_with_one_proof_exactly_one_succeeds,
    a_proof_for_another_url_or_method_is_refused,
    a_stale_or_future_proof_is_refused,
    unsigned_mac_private_key_or_forged_proofs_are_refused,
    several_or_malformed_dpop_headers_are_refused,
    a_public_clients_refresh_tokens_are_bound_to_its_key,
    a_confidential_clients_refresh_tokens_are_not_bound,
    a_code_exchanged_without_a_proof_starts_an_unbound_family,
    userinfo_accepts_a_bound_token_with_its_proof,
    a_bound_token_used_as_a_bearer_token_is_refused,
    an_unbound_token_with_the_dpop_scheme_is_refused,
    userinfo_refuses_a_wrong_proof,
    of_parallel_userinfo_requests_with_one_proof_exactly_one_succeeds,
    a_bound_token_is_refused_at_the_shared_signals_endpoints,
    introspection_reports_the_binding,
    discovery_lists_the_proof_algorithms,
);
