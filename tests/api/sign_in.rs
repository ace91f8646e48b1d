//! Signing in at the login form, which OAuth leaves to the server (RFC 6749 §3.1): its
//! forms need their CSRF token, a failure says nothing about why, repeated failures lock
//! the account and the client IP, and each login gets a new `HttpOnly` session cookie.

use crate::helpers::browser::{form_tokens, AuthorizeRequest, PASSWORD};
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

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
    app.storage
        .disable_user(&disabled.id, &app.revocation(tessera::domain::signals::Reason::UserDisabled))
        .await
        .unwrap();
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

crate::backend_tests!(
    forms_without_the_right_csrf_token_are_refused,
    wrong_password_unknown_and_disabled_users_get_the_same_answer,
    repeated_failures_lock_the_account,
    a_session_cookie_is_http_only_and_replaced_at_login,
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
