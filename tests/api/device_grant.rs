//! Device authorization grant (RFC 8628): the device asks `/device_authorization` for a
//! device code and a user code, polls `/token`, and the person signs in at `/device`,
//! types the code and allows or denies. Also openid-client 6 as the device.

use crate::attacks::in_parallel;
use crate::helpers::browser::{form_tokens, location, PASSWORD};
use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::node::{node_dir, node_ready};
use crate::helpers::{assert_oauth_error, TestApp, TestDatabase};
use chrono::Duration;
use serde_json::Value;
use std::process::{Command, Stdio};
use tessera::config::Lifetime;
use tessera::domain::client::{AuthMethod, GrantType};
use tessera::domain::user::User;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const API: &str = "https://api.example.com";

impl ClientSpec {
    /// A confidential device app (a TV app with a backend-provisioned secret, a CLI).
    pub fn device_app() -> Self {
        Self {
            grant_types: vec![GrantType::DeviceCode, GrantType::RefreshToken],
            scope: "openid profile email offline_access invoices:read",
            ..Self::service()
        }
    }
}

impl TestApp {
    /// POST /device_authorization (Basic auth when `client` has a secret).
    pub async fn device_authorization(&self, client: &TestClient, scope: Option<&str>) -> reqwest::Response {
        let mut form = Vec::new();
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.client_post(client, "/device_authorization", &mut form).await
    }

    /// A device authorization that must succeed; returns its response body.
    pub async fn device_code(&self, client: &TestClient, scope: Option<&str>) -> Value {
        let response = self.device_authorization(client, scope).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.unwrap()
    }

    /// One poll of the token endpoint with `device_code`.
    pub async fn poll_device(&self, client: &TestClient, device_code: &str) -> reqwest::Response {
        let mut form = vec![("grant_type", DEVICE_GRANT), ("device_code", device_code)];
        self.client_post(client, "/token", &mut form).await
    }

    /// Opens `/device` (with `user_code` as `verification_uri_complete` would), signing
    /// `user` in first if this browser has no session; returns the code-entry page.
    pub async fn open_device_page(&self, user: &User, user_code: Option<&str>) -> String {
        let url = match user_code {
            Some(code) => format!("{}?user_code={code}", self.url("/device")),
            None => self.url("/device"),
        };
        let page = self.http.get(url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        if !html.contains("name=\"password\"") {
            return html;
        }
        let signed_in = self.submit_login(&form_tokens(&html), user.username.as_str(), PASSWORD).await;
        assert_eq!(signed_in.status(), 303, "back to the device page");
        let back = location(&signed_in);
        assert!(back.starts_with(&self.url("/device")), "{back}");
        let page = self.http.get(back).send().await.unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }

    /// Submits `user_code` on the code-entry page `entry`.
    pub async fn enter_user_code(&self, entry: &str, user_code: &str) -> reqwest::Response {
        let tokens = form_tokens(entry);
        let form = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("user_code", user_code)];
        self.http.post(self.url("/device")).form(&form).send().await.unwrap()
    }

    /// Answers the confirmation page `confirm` with `decision` (`allow` or `deny`).
    pub async fn decide_device(&self, confirm: &str, decision: &str) -> reqwest::Response {
        let tokens = form_tokens(confirm);
        let form = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", decision)];
        self.http.post(self.url("/device/decision")).form(&form).send().await.unwrap()
    }

    /// The whole verification as a person does it: open the link, sign in, submit the
    /// prefilled code, answer.
    pub async fn answer_device(&self, user: &User, user_code: &str, decision: &str) {
        let entry = self.open_device_page(user, Some(user_code)).await;
        assert!(entry.contains(&format!("value=\"{user_code}\"")), "the code is prefilled, not acted on");
        let confirm = self.enter_user_code(&entry, user_code).await;
        assert_eq!(confirm.status(), 200);
        let confirm = confirm.text().await.unwrap();
        assert!(confirm.contains(user_code) && confirm.contains("Test client"), "{confirm}");
        let done = self.decide_device(&confirm, decision).await;
        assert_eq!(done.status(), 200);
    }
}

fn text(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap_or_else(|| panic!("{name} in {body}")).to_owned()
}

async fn a_device_gets_tokens_once_the_person_allows_it(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("tv-owner").await;
    let body = app.device_code(&client, Some("openid profile offline_access")).await;
    // §3.2, §6.1: eight letters of the unambiguous alphabet, shown XXXX-XXXX.
    let user_code = text(&body, "user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert!(user_code.chars().enumerate().all(|(i, c)| if i == 4 {
        c == '-'
    } else {
        "BCDFGHJKLMNPQRSTVWXZ".contains(c)
    }));
    assert_eq!(body["verification_uri"], app.url("/device"));
    assert_eq!(body["verification_uri_complete"], format!("{}?user_code={user_code}", app.url("/device")));
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    let device_code = text(&body, "device_code");

    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "authorization_pending").await;
    app.answer_device(&user, &user_code, "allow").await;
    app.clock.advance(Duration::seconds(5));
    let response = app.poll_device(&client, &device_code).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "offline_access openid profile");
    let access = app.verify_access_token(tokens["access_token"].as_str().unwrap(), API).await;
    assert_eq!(access["sub"], user.id.as_str());
    assert_eq!(access["client_id"], client.id);
    let id = app.verify_id_token(tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id["sub"], user.id.as_str());
    assert!(id.get("nonce").is_none(), "no nonce in a device request");
    assert_eq!(id["sid"], access["sid"], "one session behind both, as in the code flow");
    let refresh_token = text(&tokens, "refresh_token");
    let refreshed = app.refresh(&client, &refresh_token, None).await;
    assert_eq!(refreshed.status(), 200, "the refresh token works");
    let refreshed: Value = refreshed.json().await.unwrap();

    // Single use (§3.5): the device code is gone.
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "invalid_grant").await;
    assert_eq!(app.count_rows("device_codes").await, 0);

    // The family is the session's, as a code's is: logging out of it ends the family.
    let logged_out = app.log_out_confirmed(&[]).await;
    assert!(logged_out.status().is_success() || logged_out.status().is_redirection(), "{}", logged_out.status());
    let after = app.refresh(&client, &text(&refreshed, "refresh_token"), None).await;
    assert_oauth_error(after, 400, "invalid_grant").await;
}

async fn a_denied_request_is_answered_access_denied(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("denier").await;
    let body = app.device_code(&client, None).await;
    app.answer_device(&user, &text(&body, "user_code"), "deny").await;
    let device_code = text(&body, "device_code");
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "access_denied").await;
    app.clock.advance(Duration::seconds(5));
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "access_denied").await;
}

async fn an_expired_device_code_is_answered_expired_token_and_purged(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("late").await;
    let body = app.device_code(&client, None).await;
    app.clock.advance(Duration::seconds(601));
    assert_oauth_error(app.poll_device(&client, &text(&body, "device_code")).await, 400, "expired_token").await;
    // The person comes too late: the code is no longer found (and counts as a wrong one).
    let entry = app.open_device_page(&user, None).await;
    assert_eq!(app.enter_user_code(&entry, &text(&body, "user_code")).await.status(), 400);
    tessera::housekeeping::purge(&*app.storage, &*app.clock, 100, Duration::hours(1)).await.unwrap();
    assert_eq!(app.count_rows("device_codes").await, 0, "housekeeping purges expired device codes");
}

async fn polling_faster_than_the_interval_is_slowed_down(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let device_code = text(&app.device_code(&client, None).await, "device_code");
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "authorization_pending").await;
    app.clock.advance(Duration::seconds(4));
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "slow_down").await;
    // §3.5: the interval is now 10 seconds, from the poll that was slowed down.
    app.clock.advance(Duration::seconds(9));
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "slow_down").await;
    app.clock.advance(Duration::seconds(15));
    assert_oauth_error(app.poll_device(&client, &device_code).await, 400, "authorization_pending").await;
}

async fn another_clients_device_code_is_invalid_grant(app: &TestApp) {
    let owner = app.register_client(ClientSpec::device_app()).await;
    let other = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("owner").await;
    let body = app.device_code(&owner, None).await;
    app.answer_device(&user, &text(&body, "user_code"), "allow").await;
    let device_code = text(&body, "device_code");
    assert_oauth_error(app.poll_device(&other, &device_code).await, 400, "invalid_grant").await;
    assert_eq!(app.poll_device(&owner, &device_code).await.status(), 200, "the owner still redeems it");
}

async fn a_public_client_uses_the_device_grant_with_its_id(app: &TestApp) {
    let client = app.register_client(ClientSpec { auth_method: AuthMethod::None, ..ClientSpec::device_app() }).await;
    let user = app.create_user("cli-user").await;
    let body = app.device_code(&client, Some("openid")).await;
    app.answer_device(&user, &text(&body, "user_code"), "allow").await;
    let response = app.poll_device(&client, &text(&body, "device_code")).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none(), "no offline_access asked: no refresh token");
    app.verify_id_token(tokens["id_token"].as_str().unwrap(), &client.id).await;
}

async fn a_client_without_the_grant_is_unauthorized_client(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    assert_oauth_error(app.device_authorization(&client, None).await, 400, "unauthorized_client").await;
    assert_oauth_error(app.poll_device(&client, "tdc_whatever").await, 400, "unauthorized_client").await;
    assert_eq!(app.count_rows("device_codes").await, 0);
}

async fn forty_parallel_polls_of_an_approved_code_get_one_token_response(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("racer").await;
    let body = app.device_code(&client, Some("openid offline_access")).await;
    app.answer_device(&user, &text(&body, "user_code"), "allow").await;
    let device_code = text(&body, "device_code");
    let statuses = in_parallel(40, |_| async { app.poll_device(&client, &device_code).await.status().as_u16() }).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
    assert_eq!(app.count_rows("token_families").await, 1, "one family");
}

async fn the_sixth_wrong_user_code_locks_the_session_even_for_the_right_code(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("guesser").await;
    let body = app.device_code(&client, None).await;
    let user_code = text(&body, "user_code");
    let entry = app.open_device_page(&user, None).await;
    for wrong in ["BBBB-BBBB", "CCCC-CCCC", "not a code", "DDDD-DDDD", "FFFF-FFFF"] {
        let response = app.enter_user_code(&entry, wrong).await;
        assert_eq!(response.status(), 400, "{wrong}");
        assert!(response.text().await.unwrap().contains("not valid"));
    }
    let locked = app.enter_user_code(&entry, &user_code).await;
    assert_eq!(locked.status(), 429, "locked, even for the right code");
    assert!(!locked.text().await.unwrap().contains("/device/decision"), "no approval form");
    assert_oauth_error(app.poll_device(&client, &text(&body, "device_code")).await, 400, "authorization_pending").await;
    // Another person's session (behind the same IP, which allows more) is not locked.
    let (other, _) = app.other_browser();
    let someone = app.create_user("someone").await;
    let entry = other.open_device_page(&someone, None).await;
    assert_eq!(other.enter_user_code(&entry, &user_code).await.status(), 200);
}

/// RFC 8628 §5.1: the budget of wrong codes is the account's, whatever its sessions; the
/// IP's larger budget is not spent by it, so a bystander behind the address is checked.
async fn signing_in_again_buys_no_new_user_code_guesses(app: &TestApp) {
    let user = app.create_user("patient").await;
    let mut checked = 0;
    for _ in 0..4 {
        let (browser, _) = app.other_browser();
        let entry = browser.open_device_page(&user, None).await;
        for _ in 0..5 {
            match browser.enter_user_code(&entry, "BBBB-BBBB").await.status().as_u16() {
                400 => checked += 1,
                429 => {}
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!(checked, 5, "five wrong codes per account across its four sign-ins");
    let (browser, _) = app.other_browser();
    let bystander = app.create_user("bystander").await;
    let entry = browser.open_device_page(&bystander, None).await;
    assert_eq!(browser.enter_user_code(&entry, "BBBB-BBBB").await.status(), 400, "checked, not locked");
}

async fn the_decision_form_is_bound_to_its_session_and_code(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("victim").await;
    let first = app.device_code(&client, None).await;
    let second = app.device_code(&client, None).await;
    let entry = app.open_device_page(&user, None).await;
    let confirm = app.enter_user_code(&entry, &text(&first, "user_code")).await.text().await.unwrap();
    // The first code's token does not approve the second code.
    let tokens = form_tokens(&confirm);
    let other_code = text(&second, "user_code").replace('-', "");
    let form = [("pending", other_code.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", "allow")];
    let forged = app.http.post(app.url("/device/decision")).form(&form).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    // Nor does another session's browser, holding the same token in its own cookie.
    let (other, jar) = app.other_browser();
    let someone = app.create_user("attacker").await;
    other.open_device_page(&someone, None).await;
    jar.add_cookie_str(&format!("tessera_csrf={}", tokens.csrf_token), &app.address.parse().unwrap());
    let form = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", "allow")];
    assert_eq!(other.http.post(app.url("/device/decision")).form(&form).send().await.unwrap().status(), 403);
    assert_oauth_error(app.poll_device(&client, &text(&first, "device_code")).await, 400, "authorization_pending")
        .await;
    assert_oauth_error(app.poll_device(&client, &text(&second, "device_code")).await, 400, "authorization_pending")
        .await;
}

async fn an_approval_whose_session_ended_is_access_denied(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("leaver").await;
    let body = app.device_code(&client, None).await;
    app.answer_device(&user, &text(&body, "user_code"), "allow").await;
    app.storage
        .end_user_access(&user.id, &app.revocation(tessera::domain::signals::Reason::RevokedByOperator))
        .await
        .unwrap();
    assert_oauth_error(app.poll_device(&client, &text(&body, "device_code")).await, 400, "access_denied").await;
}

async fn malformed_device_requests_get_rfc6749_json_errors(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    assert_oauth_error(app.device_authorization(&client, Some("admin")).await, 400, "invalid_scope").await;
    assert_oauth_error(app.device_authorization(&client, Some("\"")).await, 400, "invalid_scope").await;
    let mut form = vec![("grant_type", DEVICE_GRANT)];
    assert_oauth_error(app.client_post(&client, "/token", &mut form).await, 400, "invalid_request").await;
    assert_oauth_error(app.poll_device(&client, "tdc_unknown").await, 400, "invalid_grant").await;
    let stranger = TestClient { id: "no-such-client".into(), secret: Some("tcs_x".into()) };
    assert_oauth_error(app.device_authorization(&stranger, None).await, 401, "invalid_client").await;
    let get = app.http.get(app.url("/device_authorization")).send().await.unwrap();
    assert_oauth_error(get, 405, "invalid_request").await;
    let oversized = "a".repeat(20_000);
    let response = app
        .http
        .post(app.url("/device_authorization"))
        .basic_auth(&client.id, Some(client.secret()))
        .form(&[("scope", oversized.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 413, "invalid_request").await;
    assert_eq!(app.count_rows("device_codes").await, 0);
    // The page: a garbled prefilled code is not echoed, and nothing is looked up.
    let page = app.http.get(app.url("/device?user_code=%3Cscript%3E")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains("<script>"));
}

async fn the_cli_registers_a_device_client_with_the_short_grant_name(app: &TestApp) {
    let args =
        ["client", "create", "--name", "tv", "--public", "--grant", "device_code", "--scope", "openid", "--json"];
    let output = tessera(app, &args, None);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let client = TestClient { id: created["client_id"].as_str().unwrap().to_owned(), secret: None };
    let body = app.device_code(&client, None).await;
    assert_oauth_error(app.poll_device(&client, &text(&body, "device_code")).await, 400, "authorization_pending").await;
}

/// Forms post, and the sign-in comes back, below the issuer's path (root or `/auth`).
async fn the_device_pages_link_below_the_issuer(app: &TestApp) {
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("pathed").await;
    let base = url::Url::parse(&app.address).unwrap().path().trim_end_matches('/').to_owned();
    let body = app.device_code(&client, None).await;
    let user_code = text(&body, "user_code");
    assert_eq!(body["verification_uri"], app.url("/device"));
    let login = app.http.get(app.url("/device")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains(&format!("action=\"{base}/login\"")), "{login}");
    let entry = app.open_device_page(&user, Some(&user_code)).await;
    assert!(entry.contains(&format!("action=\"{base}/device\"")), "{entry}");
    assert!(entry.contains(&format!("href=\"{base}/static/tessera.css\"")), "{entry}");
    let confirm = app.enter_user_code(&entry, &user_code).await.text().await.unwrap();
    assert!(confirm.contains(&format!("action=\"{base}/device/decision\"")), "{confirm}");
    assert_eq!(app.decide_device(&confirm, "allow").await.status(), 200);
    assert_eq!(app.poll_device(&client, &text(&body, "device_code")).await.status(), 200);
}

async fn discovery_advertises_the_device_authorization_endpoint(app: &TestApp) {
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["device_authorization_endpoint"], app.url("/device_authorization"));
    assert!(metadata["grant_types_supported"].as_array().unwrap().iter().any(|g| g == DEVICE_GRANT));
}

crate::backend_tests!(
    a_device_gets_tokens_once_the_person_allows_it,
    a_denied_request_is_answered_access_denied,
    an_expired_device_code_is_answered_expired_token_and_purged,
    polling_faster_than_the_interval_is_slowed_down,
    another_clients_device_code_is_invalid_grant,
    a_public_client_uses_the_device_grant_with_its_id,
    a_client_without_the_grant_is_unauthorized_client,
    forty_parallel_polls_of_an_approved_code_get_one_token_response,
    the_sixth_wrong_user_code_locks_the_session_even_for_the_right_code,
    signing_in_again_buys_no_new_user_code_guesses,
    the_decision_form_is_bound_to_its_session_and_code,
    an_approval_whose_session_ended_is_access_denied,
    malformed_device_requests_get_rfc6749_json_errors,
    the_cli_registers_a_device_client_with_the_short_grant_name,
    the_device_pages_link_below_the_issuer,
    discovery_advertises_the_device_authorization_endpoint,
);

/// The same flows with the issuer at `http://127.0.0.1:PORT/auth` (behind a proxy's path).
mod under_a_path {
    use super::*;
    crate::path_issuer_tests!(
        a_device_gets_tokens_once_the_person_allows_it,
        the_device_pages_link_below_the_issuer,
        discovery_advertises_the_device_authorization_endpoint,
    );
}

async fn a_client_at_its_bound_is_refused_and_nothing_is_stored(database: &TestDatabase) {
    let app = TestApp::spawn(database, |settings| {
        settings.device.max_per_client = 3;
        settings.device.max_total = 5;
    })
    .await
    .unwrap();
    let client = app.register_client(ClientSpec::device_app()).await;
    let other = app.register_client(ClientSpec::device_app()).await;
    // Concurrent requests cannot pass the bound together.
    let statuses = in_parallel(8, |_| async { app.device_authorization(&client, None).await.status().as_u16() }).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
    assert_oauth_error(app.device_authorization(&client, None).await, 429, "invalid_request").await;
    assert_eq!(app.count_rows("device_codes").await, 3);
    // The total: the other client gets two more, then the server is full.
    app.device_code(&other, None).await;
    app.device_code(&other, None).await;
    assert_oauth_error(app.device_authorization(&other, None).await, 429, "invalid_request").await;
    assert_eq!(app.count_rows("device_codes").await, 5);
    // Expired requests do not count.
    app.clock.advance(Duration::seconds(601));
    app.device_code(&client, None).await;
    app.stop().await;
}

/// A stranger with a public client's id fills the share of its own network
/// (`device.max_per_ip`), not the client's whole bound: a device elsewhere still asks.
async fn one_network_fills_only_its_share_of_a_public_clients_device_requests(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.http.trust_forwarded_headers = true;
        s.device.max_per_ip = 3;
    })
    .await
    .unwrap();
    let spec = ClientSpec { auth_method: AuthMethod::None, ..ClientSpec::device_app() };
    let public = app.register_client(spec).await;
    let ask_from = |ip: &'static str| {
        let (app, id) = (&app, public.id.as_str());
        async move {
            let form = [("client_id", id)];
            app.http
                .post(app.url("/device_authorization"))
                .header("x-forwarded-for", ip)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let statuses = in_parallel(20, |_| async { ask_from("203.0.113.7").await.status().as_u16() }).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 17, "{statuses:?}");
    assert_oauth_error(ask_from("203.0.113.7").await, 429, "invalid_request").await;
    assert_eq!(ask_from("198.51.100.9").await.status(), 200, "another network still asks");
    // IPv6 counts by /64.
    for _ in 0..3 {
        assert_eq!(ask_from("2001:db8:1:2::1").await.status(), 200);
    }
    assert_eq!(ask_from("2001:db8:1:2::ffff").await.status(), 429, "the same /64");
    assert_eq!(ask_from("2001:db8:1:3::1").await.status(), 200, "another /64");
    assert_eq!(app.count_rows("device_codes").await, 8);
    let networks = ["203.0.113.7", "198.51.100.9", "2001:db8:1:2::/64", "2001:db8:1:3::/64"];
    app.assert_sources_keyed("device_codes", &networks).await;
    // A confidential client authenticated: its requests are its own, not counted per IP.
    let confidential = app.register_client(ClientSpec::device_app()).await;
    for _ in 0..5 {
        app.device_code(&confidential, None).await;
    }
    // Expired requests count no more.
    app.clock.advance(Duration::seconds(601));
    assert_eq!(ask_from("203.0.113.7").await.status(), 200);
    app.stop().await;
}

/// The device grant's tokens count in `tessera_tokens_issued_total` under `device_code`.
async fn device_tokens_are_counted_under_their_grant(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.metrics.bind = Some("127.0.0.1:0".parse().unwrap())).await.unwrap();
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("counted").await;
    let body = app.device_code(&client, Some("openid offline_access")).await;
    app.answer_device(&user, &text(&body, "user_code"), "allow").await;
    assert_eq!(app.poll_device(&client, &text(&body, "device_code")).await.status(), 200);
    let url = format!("{}/metrics", app.metrics_address.as_deref().unwrap());
    let scraped = reqwest::get(url).await.unwrap().text().await.unwrap();
    for kind in ["access_token", "id_token", "refresh_token"] {
        let line = scraped
            .lines()
            .find(|l| {
                l.starts_with("tessera_tokens_issued_total{") && l.contains("grant=\"device_code\"") && l.contains(kind)
            })
            .unwrap_or_else(|| panic!("no device_code {kind} series in:\n{scraped}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
    app.stop().await;
}

/// openid-client 6 as the device: `initiateDeviceAuthorization`, then
/// `pollDeviceAuthorizationGrant` (which waits the interval and handles
/// `authorization_pending` itself) while this test approves over HTTP.
async fn openid_client_completes_the_device_flow(database: &TestDatabase) {
    if !node_ready("the openid-client device check") {
        return;
    }
    let app =
        TestApp::spawn(database, |settings| settings.device.interval = Lifetime::parse("1s").unwrap()).await.unwrap();
    let client = app.register_client(ClientSpec::device_app()).await;
    let user = app.create_user("node-device").await;
    let args = [app.address.clone(), client.id.clone(), client.secret().to_owned(), "openid offline_access".into()];
    let mut child = Command::new("node")
        .arg(node_dir().join("device-client.mjs"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().unwrap();
    // The script runs off the test's runtime, which serves the requests it makes.
    let (first_line, rest) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = first_line.send(lines.next().and_then(Result::ok));
        let last = lines.map_while(Result::ok).last();
        let output = child.wait_with_output().expect("node finishes");
        (last, output)
    });
    let started = rest.await.unwrap().expect("the device authorization response");
    let started: Value = serde_json::from_str(&started).unwrap();
    app.answer_device(&user, &text(&started, "user_code"), "allow").await;
    let (summary, output) = reader.await.unwrap();
    assert!(output.status.success(), "openid-client failed: {}", String::from_utf8_lossy(&output.stderr));
    let summary: Value = serde_json::from_str(&summary.expect("a summary")).unwrap();
    assert_eq!(summary["token_type"], "bearer", "{summary}");
    assert_eq!(summary["id_token_sub"], user.id.as_str());
    assert_eq!(summary["userinfo_sub"], user.id.as_str());
    assert!(summary["refresh_token"].is_string(), "{summary}");
    let access = app.verify_access_token(summary["access_token"].as_str().unwrap(), API).await;
    assert_eq!(access["sid"], summary["id_token_sid"]);
    app.stop().await;
}

mod with_settings {
    use super::*;
    crate::database_tests!(
        a_client_at_its_bound_is_refused_and_nothing_is_stored,
        one_network_fills_only_its_share_of_a_public_clients_device_requests,
        device_tokens_are_counted_under_their_grant,
        openid_client_completes_the_device_flow,
    );
}
