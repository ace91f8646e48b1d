//! OpenID Connect Back-Channel Logout 1.0: when an SSO session ends, every RP that took
//! part in it (got a code under its `sid`) and registered a `backchannel_logout_uri` is
//! POSTed a Logout Token (§2.5) that validates per §2.6 (`helpers::backchannel`), from an
//! outbox written with the session's end, retried until the RP takes it. RPs of other
//! sessions hear nothing; `backchannel_logout_uri`s are https (loopback http only when
//! allowed, as the tests' config does).

use crate::attacks::in_parallel;
use crate::helpers::backchannel::LogoutReceiver;
use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::cli::tessera;
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{TestApp, TestDatabase};
use std::path::PathBuf;
use std::time::Duration;
use tessera::admin::clients::{NewClient, UrlPolicies};
use tessera::admin::ServiceError;
use tessera::domain::client::ClientId;
use tessera::domain::user::User;
use tessera::http::outbound::OutboundPolicy;
use tessera::signals::Emitter;

const WITHIN: Duration = Duration::from_secs(10);

async fn rp(app: &TestApp, receiver: &LogoutReceiver) -> TestClient {
    app.register_client(ClientSpec { backchannel_logout_uri: Some(receiver.url.clone()), ..ClientSpec::web_app() })
        .await
}

/// Signs `user` in to `client` in `browser` (a new session, or the one it has) and
/// redeems the code; returns the ID token and its `sid`.
async fn sign_in(browser: &TestApp, client: &TestClient, user: &User) -> (String, String) {
    let request = AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI);
    let params = browser.authorize_and_log_in(&request, user).await;
    let body: serde_json::Value = browser.exchange_code(client, &params["code"], &request).await.json().await.unwrap();
    let id_token = body["id_token"].as_str().expect("an ID token").to_owned();
    let claims = browser.verify_id_token(&id_token, &client.id).await;
    let sid = claims["sid"].as_str().expect("ID tokens carry sid (Back-Channel Logout §2.1)").to_owned();
    (id_token, sid)
}

async fn pending(app: &TestApp, client: &TestClient) -> i64 {
    app.storage.count_pending_logouts(&ClientId::parse(&client.id).unwrap()).await.unwrap()
}

async fn logout_sends_a_logout_token_to_each_rp_of_the_session(app: &TestApp) {
    let (a_end, b_end, other_end) =
        (LogoutReceiver::start(vec![]), LogoutReceiver::start(vec![]), LogoutReceiver::start(vec![]));
    let (a, b, other) = (rp(app, &a_end).await, rp(app, &b_end).await, rp(app, &other_end).await);
    let ivan = app.create_user("ivan").await;
    let (id_token, sid) = sign_in(app, &a, &ivan).await;
    let (_, same_sid) = sign_in(app, &b, &ivan).await;
    assert_eq!(sid, same_sid, "one SSO session, two RPs");
    // Another person's session, at another RP: not part of ivan's.
    let (judys_browser, _) = app.other_browser();
    let judy = app.create_user("judy").await;
    let (_, judys_sid) = sign_in(&judys_browser, &other, &judy).await;

    let out = app
        .http
        .get(app.url("/logout"))
        .query(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://app.example.com/logged-out"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);

    for (client, end) in [(&a, &a_end), (&b, &b_end)] {
        let tokens = end.wait_for(1, WITHIN).await;
        assert_eq!(tokens.len(), 1, "one Logout Token per RP of the session");
        let claims = app.validate_logout_token(&tokens[0], &client.id).await;
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["sub"], ivan.id.as_str());
        assert_eq!(claims["iss"], app.address.as_str());
    }
    // An independent validator (PyJWT, from the spec only) accepts it too.
    python_validates(app, &a_end.received()[0], &a.id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(other_end.received().is_empty(), "judy's session ({judys_sid}) did not end: its RP hears nothing");
    assert_eq!(a_end.received().len(), 1, "sent once");
    assert_eq!(pending(app, &a).await, 0, "delivered tokens leave the outbox");
    let metrics = app.storage.count_pending_logouts(&ClientId::parse(&other.id).unwrap()).await.unwrap();
    assert_eq!(metrics, 0);
    for end in [&a_end, &b_end, &other_end] {
        end.stop().await;
    }
}

/// Every other way a session ends: an operator revoking the user's sessions, disabling the
/// user, changing their password. Through the service layer the CLI and the admin API
/// share.
async fn ending_a_users_access_sends_logout_tokens(app: &TestApp) {
    let end = LogoutReceiver::start(vec![]);
    let client = rp(app, &end).await;
    let events = Emitter::from_settings(&app.settings);
    for (round, how) in ["revoke", "disable", "password"].into_iter().enumerate() {
        let user = app.create_user(&format!("user-{how}")).await;
        let (browser, _) = app.other_browser();
        let (_, sid) = sign_in(&browser, &client, &user).await;
        match how {
            "revoke" => {
                tessera::admin::sessions::revoke_all(&*app.storage, &events, &user).await.unwrap();
            }
            "disable" => assert!(tessera::admin::users::disable(&*app.storage, &events, &user).await.unwrap()),
            _ => tessera::admin::users::set_password(&*app.storage, &events, &user, "a new long passphrase 42".into())
                .await
                .unwrap(),
        }
        let tokens = end.wait_for(round + 1, WITHIN).await;
        assert_eq!(tokens.len(), round + 1, "{how}: a Logout Token");
        let claims = app.validate_logout_token(&tokens[round], &client.id).await;
        assert_eq!(claims["sid"], sid.as_str(), "{how}");
        assert_eq!(claims["sub"], user.id.as_str(), "{how}");
    }
    end.stop().await;
}

/// §2.5 delivery is at least once: the token is in the outbox as soon as the session has
/// ended (before any POST: a crash then only delays it), an RP that is down is tried
/// again with back-off, and gets it once it is up.
async fn an_rp_that_is_down_gets_the_token_later(app: &TestApp) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/backchannel-logout");
    let client = app.register_client(ClientSpec { backchannel_logout_uri: Some(url), ..ClientSpec::web_app() }).await;
    let user = app.create_user("kim").await;
    let (id_token, sid) = sign_in(app, &client, &user).await;
    assert_eq!(pending(app, &client).await, 0, "nothing owed while the session lives");
    let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
    assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
    assert_eq!(pending(app, &client).await, 1, "owed in the logout's own transaction");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(pending(app, &client).await, 1, "the RP is down: still owed");

    // The RP comes up, answering 503 once; each failure doubles the wait, so the clock is
    // moved past it.
    let end = LogoutReceiver::start_on(port, vec![503]);
    let mut tokens = Vec::new();
    for _ in 0..20 {
        app.clock.advance(chrono::Duration::minutes(6));
        tokens = end.wait_for(2, Duration::from_millis(1500)).await;
        if tokens.len() >= 2 {
            break;
        }
    }
    assert_eq!(tokens.len(), 2, "the 503 is retried");
    for token in &tokens {
        let claims = app.validate_logout_token(token, &client.id).await;
        assert_eq!(claims["sid"], sid.as_str());
    }
    for _ in 0..100 {
        if pending(app, &client).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pending(app, &client).await, 0, "delivered: out of the outbox");
    end.stop().await;
}

/// An RP that answers 400 rejected the token (§2.8): the same token cannot succeed, so it
/// is not sent again.
async fn a_token_the_rp_rejects_is_not_sent_again(app: &TestApp) {
    let end = LogoutReceiver::start(vec![400]);
    let client = rp(app, &end).await;
    let user = app.create_user("lea").await;
    let (id_token, _) = sign_in(app, &client, &user).await;
    app.http.get(app.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
    assert_eq!(end.wait_for(1, WITHIN).await.len(), 1);
    app.clock.advance(chrono::Duration::minutes(10));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(end.received().len(), 1, "a 400 is final");
    assert_eq!(pending(app, &client).await, 0);
    end.stop().await;
}

/// §2.2: the URI is an absolute https URL without a fragment; plain http, private and
/// loopback hosts only where the operator allows them.
async fn registration_refuses_uris_that_are_not_https(app: &TestApp) {
    let register = |uri: &str, policy: OutboundPolicy| {
        let new = NewClient {
            name: "RP".into(),
            grant_types: vec!["authorization_code".into()],
            scope: "openid".into(),
            redirect_uris: vec![WEB_APP_REDIRECT_URI.into()],
            backchannel_logout_uri: Some(uri.to_owned()),
            backchannel_logout_session_required: true,
            ..NewClient::default()
        };
        let policies = UrlPolicies { backchannel_logout_uri: policy, ..UrlPolicies::default() };
        let storage = app.storage.clone();
        async move { tessera::admin::clients::create(&*storage, policies, new).await }
    };
    let strict = OutboundPolicy::default();
    let dev = OutboundPolicy { allow_loopback: true, allow_private: false };
    for (uri, policy) in [
        ("http://rp.example.com/logout", strict),
        ("http://rp.example.com/logout", dev),
        ("https://rp.example.com/logout#fragment", strict),
        ("https://10.1.2.3/logout", strict),
        ("http://127.0.0.1:9000/logout", strict),
        ("not a url", strict),
    ] {
        match register(uri, policy).await {
            Err(ServiceError::Invalid { field, .. }) => assert_eq!(field, "backchannel_logout_uri", "{uri}"),
            other => panic!("{uri} was not refused: {:?}", other.map(|(c, _)| c.backchannel_logout_uri)),
        }
    }
    let (client, _) = register("https://rp.example.com/logout?tenant=1", strict).await.unwrap();
    let stored = app.storage.find_client(&client.id).await.unwrap().unwrap();
    assert_eq!(stored.backchannel_logout_uri.as_deref(), Some("https://rp.example.com/logout?tenant=1"));
    assert!(stored.backchannel_logout_session_required);
    assert!(register("http://127.0.0.1:9000/logout", dev).await.is_ok(), "loopback when allowed");
}

async fn discovery_advertises_back_channel_logout(app: &TestApp) {
    let metadata: serde_json::Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["backchannel_logout_supported"], true);
    assert_eq!(metadata["backchannel_logout_session_supported"], true);
}

/// Runs `tests/interop/python/verify_logout_token.py` (PyJWT); skipped outside CI when
/// PyJWT is missing.
fn python_validates(app: &TestApp, token: &str, client_id: &str) {
    let ready = std::process::Command::new("python3")
        .args(["-c", "import jwt, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(std::env::var_os("CI").is_none(), "PyJWT is missing in CI (.ci/run installs it)");
        eprintln!("skipping the PyJWT Logout Token check: run .ci/run once to install its dependencies");
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python/verify_logout_token.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args([app.address.as_str(), client_id, token])
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "PyJWT rejected the Logout Token: {}", String::from_utf8_lossy(&output.stderr));
    let claims: serde_json::Value = serde_json::from_slice(&output.stdout).expect("claims as JSON");
    assert_eq!(claims["aud"], client_id);
}

/// RFC 8628: a device approved in a session took part in it: its RP is told too.
async fn a_device_approved_in_the_session_is_told_too(app: &TestApp) {
    let end = LogoutReceiver::start(vec![]);
    let device = app
        .register_client(ClientSpec { backchannel_logout_uri: Some(end.url.clone()), ..ClientSpec::device_app() })
        .await;
    let user = app.create_user("tv-owner").await;
    let body = app.device_code(&device, Some("openid")).await;
    app.answer_device(&user, body["user_code"].as_str().unwrap(), "allow").await;
    app.clock.advance(chrono::Duration::seconds(5));
    let tokens: serde_json::Value =
        app.poll_device(&device, body["device_code"].as_str().unwrap()).await.json().await.unwrap();
    let id = app.verify_id_token(tokens["id_token"].as_str().unwrap(), &device.id).await;
    let out = app.log_out_confirmed(&[]).await;
    assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
    let received = end.wait_for(1, WITHIN).await;
    assert_eq!(received.len(), 1, "the device's RP is told");
    let claims = app.validate_logout_token(&received[0], &device.id).await;
    assert_eq!(claims["sid"], id["sid"]);
    end.stop().await;
}

/// The CLI registers the URI (and `--backchannel-logout-session-required=false`) and
/// refuses plain http.
async fn the_cli_registers_a_backchannel_logout_uri(app: &TestApp) {
    let base =
        ["client", "create", "--name", "shop", "--grant", "authorization_code", "--redirect-uri", WEB_APP_REDIRECT_URI];
    let refused =
        tessera(app, &[&base[..], &["--backchannel-logout-uri", "http://shop.example.com/bcl"]].concat(), None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("https"), "{}", String::from_utf8_lossy(&refused.stderr));
    let extra = [
        "--backchannel-logout-uri",
        "https://shop.example.com/bcl",
        "--backchannel-logout-session-required=false",
        "--json",
    ];
    let output = tessera(app, &[&base[..], &extra[..]].concat(), None);
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(created["backchannel_logout_uri"], "https://shop.example.com/bcl");
    assert_eq!(created["backchannel_logout_session_required"], false);
}

/// The outbox stays bounded: housekeeping keeps the newest `max_pending_per_client` of
/// an RP that is down, and gives every token up after `give_up_after`.
async fn housekeeping_caps_and_gives_up_undelivered_tokens(app: &TestApp) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/backchannel-logout");
    let client = app.register_client(ClientSpec { backchannel_logout_uri: Some(url), ..ClientSpec::web_app() }).await;
    let events = Emitter::from_settings(&app.settings);
    for i in 0..3 {
        let user = app.create_user(&format!("gone{i}")).await;
        let (browser, _) = app.other_browser();
        sign_in(&browser, &client, &user).await;
        tessera::admin::sessions::revoke_all(&*app.storage, &events, &user).await.unwrap();
    }
    assert_eq!(pending(app, &client).await, 3);
    let day = chrono::Duration::hours(24);
    let purged = tessera::housekeeping::purge_logouts(&*app.storage, &*app.clock, 1, day, 2).await.unwrap();
    assert_eq!(purged, 1, "one over the cap of 2");
    assert_eq!(pending(app, &client).await, 2);
    tessera::housekeeping::purge_logouts(&*app.storage, &*app.clock, 1, day, 2).await.unwrap();
    assert_eq!(pending(app, &client).await, 2, "at the cap: nothing more");
    app.clock.advance(day + chrono::Duration::minutes(1));
    tessera::housekeeping::purge_logouts(&*app.storage, &*app.clock, 1, day, 2).await.unwrap();
    assert_eq!(pending(app, &client).await, 0, "given up after give_up_after");
}

/// The admin API registers, changes and removes the URI, with the same checks.
async fn the_admin_api_registers_and_changes_the_uri(app: &TestApp) {
    let admin =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let token = app.token_of(&admin).await;
    let send = |method: reqwest::Method, path: String, body: serde_json::Value| {
        app.http.request(method, app.url(&path)).bearer_auth(&token).json(&body).send()
    };
    let mut new = serde_json::json!({
        "name": "shop",
        "grant_types": ["authorization_code"],
        "redirect_uris": [WEB_APP_REDIRECT_URI],
        "backchannel_logout_uri": "http://shop.example.com/bcl",
    });
    let refused = send(reqwest::Method::POST, "/admin/v1/clients".into(), new.clone()).await.unwrap();
    assert_eq!(refused.status(), 400);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["field"], "backchannel_logout_uri", "{problem}");
    new["backchannel_logout_uri"] = "https://shop.example.com/bcl".into();
    let created = send(reqwest::Method::POST, "/admin/v1/clients".into(), new).await.unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["backchannel_logout_uri"], "https://shop.example.com/bcl");
    assert_eq!(created["backchannel_logout_session_required"], true, "the default");
    let path = format!("/admin/v1/clients/{}", created["client_id"].as_str().unwrap());
    let changed = send(
        reqwest::Method::PATCH,
        path.clone(),
        serde_json::json!({
            "backchannel_logout_uri": "https://shop.example.com/logout", "backchannel_logout_session_required": false
        }),
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(changed["backchannel_logout_uri"], "https://shop.example.com/logout");
    assert_eq!(changed["backchannel_logout_session_required"], false);
    let bad = send(reqwest::Method::PATCH, path.clone(), serde_json::json!({"backchannel_logout_uri": "https://h/#x"}));
    assert_eq!(bad.await.unwrap().status(), 400);
    let removed = send(reqwest::Method::PATCH, path, serde_json::json!({"backchannel_logout_uri": ""})).await.unwrap();
    let removed: serde_json::Value = removed.json().await.unwrap();
    assert!(removed["backchannel_logout_uri"].is_null(), "{removed}");
}

/// One RP whose endpoint accepts connections and never answers, with 40 Logout Tokens owed,
/// holds at most the per-client share of the dispatcher's places: another RP's token goes
/// out while the hanging ones wait for their timeout (attacker review: unfair claims let a
/// dead endpoint delay every RP's logouts by minutes).
async fn a_hanging_rp_does_not_hold_up_the_others(app: &TestApp) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/backchannel-logout", hanging.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let (accepted, held) = (accepted.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in hanging.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.lock().unwrap().push(stream); // never answered, never closed
            }
        });
    }
    let slow = app.register_client(ClientSpec { backchannel_logout_uri: Some(url), ..ClientSpec::web_app() }).await;
    let receiver = LogoutReceiver::start(vec![]);
    let fine = app
        .register_client(ClientSpec { backchannel_logout_uri: Some(receiver.url.clone()), ..ClientSpec::web_app() })
        .await;

    let (id_token, _) = sign_in(app, &slow, &app.create_user("hana").await).await;
    let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
    assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
    // 40 more owed to the hanging RP, due before anything else.
    let copies = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
        INSERT INTO backchannel_logouts (jti, client_id, user_id, sid, created_at, attempts, next_attempt_at) \
        SELECT b.jti || '.' || n.i, b.client_id, b.user_id, b.sid, b.created_at, 0, b.next_attempt_at \
        FROM backchannel_logouts b, n WHERE b.client_id = ";
    let copies = format!("{copies}'{}'", slow.id);
    app.execute_sql(&copies, &copies).await;
    assert_eq!(pending(app, &slow).await, 41);

    let (id_token, _) = sign_in(app, &fine, &app.create_user("ivo").await).await;
    let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
    assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
    let tokens = receiver.wait_for(1, Duration::from_secs(4)).await;
    assert_eq!(tokens.len(), 1, "the other RP is told while the hanging one times out");
    let in_flight = accepted.load(Ordering::SeqCst);
    assert!((1..=4).contains(&in_flight), "the hanging RP held {in_flight} places");
    receiver.stop().await;
}

crate::backend_tests!(
    a_hanging_rp_does_not_hold_up_the_others,
    the_admin_api_registers_and_changes_the_uri,
    housekeeping_caps_and_gives_up_undelivered_tokens,
    a_device_approved_in_the_session_is_told_too,
    the_cli_registers_a_backchannel_logout_uri,
    logout_sends_a_logout_token_to_each_rp_of_the_session,
    ending_a_users_access_sends_logout_tokens,
    an_rp_that_is_down_gets_the_token_later,
    a_token_the_rp_rejects_is_not_sent_again,
    registration_refuses_uris_that_are_not_https,
    discovery_advertises_back_channel_logout,
);

mod with_metrics {
    use super::*;
    use crate::metrics::scrape;

    /// The outbox is on the metrics: how many Logout Tokens are owed and how long the
    /// oldest has waited, so an operator sees an RP that stopped taking them.
    async fn the_undelivered_logout_tokens_are_a_metric(database: &TestDatabase) {
        let app = TestApp::spawn(database, |s| s.metrics.bind = Some("127.0.0.1:0".parse().unwrap())).await.unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/backchannel-logout");
        let client =
            app.register_client(ClientSpec { backchannel_logout_uri: Some(url), ..ClientSpec::web_app() }).await;
        let user = app.create_user("mo").await;
        let (id_token, _) = sign_in(&app, &client, &user).await;
        let before = scrape(&app).await;
        assert_eq!(before["tessera_backchannel_logout_backlog_tokens"], 0.0);
        assert_eq!(before["tessera_backchannel_logout_oldest_undelivered_age_seconds"], 0.0);
        let out = app.http.get(app.url("/logout")).query(&[("id_token_hint", id_token.as_str())]).send().await.unwrap();
        assert!(out.status().is_success() || out.status().is_redirection(), "{}", out.status());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let owed = scrape(&app).await;
        assert_eq!(owed["tessera_backchannel_logout_backlog_tokens"], 1.0, "the RP is down: owed");
        let lag = owed["tessera_backchannel_logout_oldest_undelivered_age_seconds"];
        assert!((0.25..60.0).contains(&lag), "the oldest has waited since the logout: {lag}");
        // A disabled client is sent nothing: its tokens are not owed.
        let disable = |sqlite: &str, postgres: &str| {
            let id = &client.id;
            (
                format!("UPDATE clients SET disabled_at = {sqlite} WHERE id = '{id}'"),
                format!("UPDATE clients SET disabled_at = {postgres} WHERE id = '{id}'"),
            )
        };
        let (sqlite, postgres) = disable("1", "now()");
        app.execute_sql(&sqlite, &postgres).await;
        assert_eq!(scrape(&app).await["tessera_backchannel_logout_backlog_tokens"], 0.0, "a disabled client's");
        let (sqlite, postgres) = disable("NULL", "NULL");
        app.execute_sql(&sqlite, &postgres).await;
        assert_eq!(scrape(&app).await["tessera_backchannel_logout_backlog_tokens"], 1.0);

        let end = LogoutReceiver::start_on(port, vec![]);
        let mut backlog = 1.0;
        for _ in 0..20 {
            app.clock.advance(chrono::Duration::minutes(6)); // past the back-off
            end.wait_for(1, Duration::from_millis(1000)).await;
            backlog = scrape(&app).await["tessera_backchannel_logout_backlog_tokens"];
            if backlog == 0.0 {
                break;
            }
        }
        assert_eq!(backlog, 0.0, "delivered: nothing owed");
        assert_eq!(end.received().len(), 1);
        end.stop().await;
        app.stop().await;
    }

    crate::database_tests!(the_undelivered_logout_tokens_are_a_metric);
}

mod replicas {
    use super::*;

    /// Two replicas' dispatchers claim from one outbox: 24 sessions ended at once, each
    /// Logout Token reaches the RP exactly once.
    async fn two_replicas_send_each_token_once(database: &TestDatabase) {
        let a = TestApp::spawn(database, |_| {}).await.unwrap();
        let b = TestApp::spawn(database, |_| {}).await.unwrap();
        let end = LogoutReceiver::start(vec![]);
        let client = rp(&a, &end).await;
        let events = Emitter::from_settings(&a.settings);
        let mut users = Vec::new();
        for i in 0..24 {
            let user = a.create_user(&format!("user{i}")).await;
            let (browser, _) = if i % 2 == 0 { a.other_browser() } else { b.other_browser() };
            let (_, sid) = sign_in(&browser, &client, &user).await;
            users.push((user, sid));
        }
        let storage = a.storage.clone();
        in_parallel(users.len(), |i| {
            let (storage, events, user) = (storage.clone(), events.clone(), users[i].0.clone());
            async move { tessera::admin::sessions::revoke_all(&*storage, &events, &user).await.unwrap() }
        })
        .await;
        let received = end.wait_for(users.len(), WITHIN).await;
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let received_now = end.received();
        assert_eq!(received_now.len(), users.len(), "each token once: {} received", received_now.len());
        let mut sids = std::collections::HashSet::new();
        for token in &received {
            // Each test replica is its own issuer (its own port); a deployment's share one.
            let from_b = a.unverified_issuer(token) == b.address;
            let claims = if from_b {
                b.validate_logout_token(token, &client.id).await
            } else {
                a.validate_logout_token(token, &client.id).await
            };
            sids.insert(claims["sid"].as_str().unwrap().to_owned());
        }
        assert_eq!(sids, users.iter().map(|(_, sid)| sid.clone()).collect(), "one per session");
        end.stop().await;
        b.stop().await;
        a.stop().await;
    }

    crate::database_tests!(two_replicas_send_each_token_once);
}
