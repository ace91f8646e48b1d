//! The authorization flow's negative matrix: nothing redirects to an unverified URI, and
//! every later mistake comes back as the right error.

use crate::helpers::browser::{form_tokens, redirect_params, AuthorizeRequest, Pkce, PASSWORD};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::{assert_oauth_error, TestApp};
use chrono::Utc;
use tessera::domain::authorization::AuthorizationGrant;
use tessera::domain::client::ClientId;
use tessera::domain::pkce::CodeChallenge;
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;

fn assert_error_page_without_redirect(response: &reqwest::Response, status: u16) {
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers().get("location").is_none(), "must never redirect to an unverified redirect_uri");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

async fn unknown_client_or_unregistered_redirect_uri_never_redirects(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let mut request = AuthorizeRequest::new(&client, "https://evil.example.com/callback");
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    request.redirect_uri = format!("{WEB_APP_REDIRECT_URI}/extra");
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    request.redirect_uri = WEB_APP_REDIRECT_URI.to_owned();
    request.client_id = "no-such-client".into();
    assert_error_page_without_redirect(&app.get_authorize(&request).await, 400);
    let disabled = app.register_client(ClientSpec { disabled: true, ..ClientSpec::web_app() }).await;
    assert_error_page_without_redirect(
        &app.get_authorize(&AuthorizeRequest::new(&disabled, WEB_APP_REDIRECT_URI)).await,
        400,
    );
    let missing = app.http.get(app.url("/authorize")).query(&[("client_id", client.id.as_str())]).send().await.unwrap();
    assert_error_page_without_redirect(&missing, 400);
    let garbage = app.http.get(format!("{}?client_id=%zz", app.url("/authorize"))).send().await.unwrap();
    assert_error_page_without_redirect(&garbage, 400);
}

async fn loopback_redirect_uris_match_any_port(app: &TestApp) {
    let client = app
        .register_client(ClientSpec { redirect_uris: vec!["http://127.0.0.1/callback"], ..ClientSpec::public_app() })
        .await;
    let page = app.get_authorize(&AuthorizeRequest::new(&client, "http://127.0.0.1:49152/callback")).await;
    assert_eq!(page.status(), 200, "RFC 8252 §7.3: any port on a loopback redirect URI");
}

async fn pkce_is_required_and_plain_is_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let without: Vec<_> = request.params().into_iter().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    let response = app.http.get(app.url("/authorize")).query(&without).send().await.unwrap();
    let params = redirect_params(&response);
    assert_eq!(params["error"], "invalid_request");
    assert_eq!(params["iss"], app.address);
    assert_eq!(params["state"], request.state.clone().unwrap());

    let plain: Vec<_> = request
        .params()
        .into_iter()
        .map(|(k, v)| if k == "code_challenge_method" { (k, "plain".to_owned()) } else { (k, v) })
        .collect();
    let response = app.http.get(app.url("/authorize")).query(&plain).send().await.unwrap();
    assert_eq!(redirect_params(&response)["error"], "invalid_request");
}

async fn other_request_errors_redirect_with_their_codes(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let cases = [
        ("response_type", "token", "unsupported_response_type"),
        ("scope", "openid admin", "invalid_scope"),
        ("prompt", "none login", "invalid_request"),
        ("max_age", "-1", "invalid_request"),
        ("request", "eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
    ];
    for (name, value, code) in cases {
        let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
        let params: Vec<_> = request
            .params()
            .into_iter()
            .filter(|(k, _)| k != name)
            .chain([(name.to_owned(), value.to_owned())])
            .collect();
        let response = app.http.get(app.url("/authorize")).query(&params).send().await.unwrap();
        let redirect = redirect_params(&response);
        assert_eq!(redirect["error"], code, "{name}={value}");
        assert_eq!(redirect["state"], request.state.clone().unwrap());
    }
    let service =
        app.register_client(ClientSpec { redirect_uris: vec![WEB_APP_REDIRECT_URI], ..ClientSpec::service() }).await;
    let response = app
        .get_authorize(&AuthorizeRequest { scope: None, ..AuthorizeRequest::new(&service, WEB_APP_REDIRECT_URI) })
        .await;
    assert_eq!(redirect_params(&response)["error"], "unauthorized_client");
}

async fn post_to_authorize_works_like_get(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let response = app.http.post(app.url("/authorize")).form(&request.params()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("name=\"password\""));
}

async fn a_wrong_verifier_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("mallory").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let response = app.exchange_code_with(&client, &params["code"], &request.redirect_uri, &Pkce::new().verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
    let short = app.exchange_code_with(&client, &params["code"], &request.redirect_uri, "too-short").await;
    assert_oauth_error(short, 400, "invalid_request").await;
}

async fn a_reused_code_fails_and_revokes_its_tokens(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("oscar").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let first = app.exchange_code(&client, &params["code"], &request).await;
    assert_eq!(first.status(), 200);
    let body: serde_json::Value = first.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access_token).await.status(), 200);

    let second = app.exchange_code(&client, &params["code"], &request).await;
    assert_oauth_error(second, 400, "invalid_grant").await;
    let after = app.userinfo(access_token).await;
    assert_eq!(after.status(), 401, "RFC 6749 §4.1.2: tokens from a replayed code are revoked");
    assert!(after.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

async fn a_code_from_another_client_or_redirect_uri_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let other = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("peggy").await;
    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.authorize_and_log_in(&request, &user).await;
    let stolen = app.exchange_code(&other, &params["code"], &request).await;
    assert_oauth_error(stolen, 400, "invalid_grant").await;

    let request = AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI);
    let params = app.get_authorize(&request).await;
    let params = redirect_params(&params); // the session from the first login
    let wrong_uri =
        app.exchange_code_with(&client, &params["code"], "https://app.example.com/other", &request.pkce.verifier).await;
    assert_oauth_error(wrong_uri, 400, "invalid_grant").await;
}

async fn an_expired_code_is_invalid_grant(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("quentin").await;
    let pkce = Pkce::new();
    let code = "expired-code-for-test";
    let past = Utc::now() - chrono::Duration::minutes(5);
    let grant = AuthorizationGrant {
        client_id: ClientId::parse(&client.id).unwrap(),
        user_id: user.id.clone(),
        sid: "sid".into(),
        redirect_uri: WEB_APP_REDIRECT_URI.into(),
        scope: ScopeSet::parse("openid").unwrap(),
        nonce: None,
        code_challenge: CodeChallenge::parse(Some(&pkce.challenge), Some("S256")).unwrap(),
        auth_time: past,
        created_at: past,
        expires_at: past + chrono::Duration::seconds(60),
    };
    app.storage.insert_code(&SecretDigest::of(code), &grant).await.unwrap();
    let response = app.exchange_code_with(&client, code, WEB_APP_REDIRECT_URI, &pkce.verifier).await;
    assert_oauth_error(response, 400, "invalid_grant").await;
}

async fn forms_without_the_right_csrf_token_are_refused(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    app.create_user("rupert").await;
    let html = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
    let tokens = form_tokens(&html);
    let missing = app
        .http
        .post(app.url("/login"))
        .form(&[("pending", tokens.pending.as_str()), ("username", "rupert"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let wrong = crate::helpers::browser::FormTokens { csrf_token: "forged".into(), ..tokens.clone() };
    let response = app.submit_login(&wrong, "rupert", PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("set-cookie").is_none(), "no session without a valid CSRF token");
    // The token alone is not enough: the browser's CSRF cookie must match it too.
    let fresh_browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [
        ("pending", tokens.pending.as_str()),
        ("csrf_token", &tokens.csrf_token),
        ("username", "rupert"),
        ("password", PASSWORD),
    ];
    let cross_site = fresh_browser.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(cross_site.status(), 403);
    // The genuine form still works.
    let ok = app.submit_login(&tokens, "rupert", PASSWORD).await;
    assert_eq!(ok.status(), 200);
}

async fn wrong_password_unknown_and_disabled_users_get_the_same_answer(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let user = app.create_user("sybil").await;
    let disabled = app.create_user("trent").await;
    app.storage.disable_user(&disabled.username, Utc::now()).await.unwrap();
    let mut bodies = vec![];
    for (username, password) in [("sybil", "wrong password"), ("nobody", PASSWORD), ("trent", PASSWORD)] {
        let html = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
        let response = app.submit_login(&form_tokens(&html), username, password).await;
        assert_eq!(response.status(), 401, "{username}");
        assert!(response.headers().get("set-cookie").is_none_or(|c| !c.to_str().unwrap().contains("session")));
        let html = response.text().await.unwrap();
        let message = html.split("id=\"login-error\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        bodies.push(message);
    }
    assert!(bodies.iter().all(|m| m == &bodies[0]), "one generic message: {bodies:?}");
    let _ = user;
}

async fn repeated_failures_lock_the_account(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    app.create_user("victor").await;
    for _ in 0..5 {
        let html = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
        assert_eq!(app.submit_login(&form_tokens(&html), "victor", "wrong password").await.status(), 401);
    }
    let html = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
    let locked = app.submit_login(&form_tokens(&html), "victor", PASSWORD).await;
    assert_eq!(locked.status(), 429, "even the right password is refused while locked");
    assert!(locked.text().await.unwrap().contains("Too many failed attempts"));
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tessera_session="))
        .expect("a session cookie")
}

async fn a_session_cookie_is_http_only_and_replaced_at_login(app: &TestApp) {
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    app.create_user("wendy").await;
    let html = app.get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
    let response = app.submit_login(&form_tokens(&html), "wendy", PASSWORD).await;
    let cookie = session_cookie(&response);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let first_id = cookie.split(';').next().unwrap().to_owned();
    let html = app
        .get_authorize(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).with("prompt", "login"))
        .await
        .text()
        .await
        .unwrap();
    let response = app.submit_login(&form_tokens(&html), "wendy", PASSWORD).await;
    let cookie = session_cookie(&response);
    assert_ne!(cookie.split(';').next().unwrap(), first_id, "a new session id at every login (no fixation)");
}

async fn userinfo_errors_follow_rfc_6750(app: &TestApp) {
    let missing = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"tessera\"");
    let garbage = app.userinfo("not-a-token").await;
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    // A client_credentials token has no openid scope.
    let service = app.register_client(ClientSpec::service()).await;
    let body: serde_json::Value =
        app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    let forbidden = app.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

crate::backend_tests!(
    unknown_client_or_unregistered_redirect_uri_never_redirects,
    loopback_redirect_uris_match_any_port,
    pkce_is_required_and_plain_is_refused,
    other_request_errors_redirect_with_their_codes,
    post_to_authorize_works_like_get,
    a_wrong_verifier_is_invalid_grant,
    a_reused_code_fails_and_revokes_its_tokens,
    a_code_from_another_client_or_redirect_uri_is_invalid_grant,
    an_expired_code_is_invalid_grant,
    forms_without_the_right_csrf_token_are_refused,
    wrong_password_unknown_and_disabled_users_get_the_same_answer,
    repeated_failures_lock_the_account,
    a_session_cookie_is_http_only_and_replaced_at_login,
    userinfo_errors_follow_rfc_6750,
);

/// Failures are also counted per client IP (4 × the account limit), so spraying one
/// password over many accounts gets locked too; forwarded headers count only when trusted.
mod per_ip_throttling {
    use super::*;
    use crate::helpers::TestDatabase;

    async fn spray(
        app: &TestApp,
        client: &crate::helpers::clients::TestClient,
        forwarded_for: &str,
        attempts: usize,
    ) -> u16 {
        let mut last = 0;
        for i in 0..attempts {
            let html =
                app.get_authorize(&AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
            let tokens = form_tokens(&html);
            let form = [
                ("pending", tokens.pending.as_str()),
                ("csrf_token", &tokens.csrf_token),
                ("username", &format!("nobody{i}")),
                ("password", "guess"),
            ];
            last = app
                .http
                .post(app.url("/login"))
                .header("x-forwarded-for", forwarded_for)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
        }
        last
    }

    /// One login attempt for `username` with the right password, claiming `forwarded_for`.
    async fn log_in_from(
        app: &TestApp,
        client: &crate::helpers::clients::TestClient,
        username: &str,
        forwarded_for: &str,
    ) -> u16 {
        let html = app.get_authorize(&AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)).await.text().await.unwrap();
        let tokens = form_tokens(&html);
        let form = [
            ("pending", tokens.pending.as_str()),
            ("csrf_token", &tokens.csrf_token),
            ("username", username),
            ("password", PASSWORD),
        ];
        app.http
            .post(app.url("/login"))
            .header("x-forwarded-for", forwarded_for)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn an_ip_spraying_many_accounts_is_locked(database: &TestDatabase) {
        let app = TestApp::spawn(database, |s| s.login.max_failures = 2).await.unwrap();
        let client = app.register_client(ClientSpec::web_app()).await;
        app.create_user("xavier").await;
        assert_eq!(spray(&app, &client, "203.0.113.7", 8).await, 401);
        // A forged X-Forwarded-For changes nothing when the header is not trusted.
        assert_eq!(
            log_in_from(&app, &client, "xavier", "198.51.100.1").await,
            429,
            "the IP is locked for every account"
        );
        app.stop().await;
    }

    async fn behind_a_trusted_proxy_the_forwarded_ip_counts(database: &TestDatabase) {
        let app = TestApp::spawn(database, |s| {
            s.login.max_failures = 2;
            s.http.trust_forwarded_headers = true;
        })
        .await
        .unwrap();
        let client = app.register_client(ClientSpec::web_app()).await;
        app.create_user("yvonne").await;
        assert_eq!(spray(&app, &client, "203.0.113.7", 8).await, 401);
        let other_client_ip = log_in_from(&app, &client, "yvonne", "198.51.100.1").await;
        assert_eq!(other_client_ip, 200, "another client behind the same proxy logs in (consent page)");
        app.stop().await;
    }

    crate::database_tests!(an_ip_spraying_many_accounts_is_locked, behind_a_trusted_proxy_the_forwarded_ip_counts);
}
