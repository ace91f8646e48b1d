//! Finding 1: the lock was check-then-act (40 parallel guesses for one account all ran,
//! and the right password was accepted after 39 failures), and password checks were
//! unbounded (argon2 at 19 MiB each on a 512-thread pool).

use super::{in_parallel, login_form};
use crate::helpers::browser::PASSWORD;
use crate::helpers::browser::{form_tokens, AuthorizeRequest};
use crate::helpers::clients::WEB_APP_REDIRECT_URI;
use crate::helpers::clients::{ClientSpec, TestClient};
use crate::helpers::{TestApp, TestDatabase};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Password checks that ran: every answer but 429 (refused before the check).
fn checks(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s != 429).count()
}

async fn forty_parallel_guesses_for_one_account_check_at_most_max_failures(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.login.max_concurrent_password_checks = 64).await.unwrap();
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    app.create_user("victim").await;
    // One login form, reused by every guess: the same pending request and CSRF pair.
    let tokens = login_form(&app, &client).await;
    let statuses = in_parallel(40, |i| {
        let (app, tokens) = (&app, &tokens);
        async move {
            let password = if i == 20 { PASSWORD } else { "wrong guess" };
            app.submit_login(tokens, "victim", password).await.status().as_u16()
        }
    })
    .await;
    assert!(statuses.iter().all(|s| [303, 401, 429].contains(s)), "{statuses:?}");
    let max_failures = app.settings.login.max_failures as usize;
    assert!(checks(&statuses) <= max_failures, "at most {max_failures} checks ran: {statuses:?}");
    if !statuses.contains(&303) {
        // The right password came too late: the account is locked now, even for it.
        let locked = app.submit_login(&login_form(&app, &client).await, "victim", PASSWORD).await;
        assert_eq!(locked.status(), 429);
    }
    app.stop().await;
}

async fn one_ip_spraying_many_accounts_checks_at_most_four_times_max_failures(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| s.login.max_concurrent_password_checks = 256).await.unwrap();
    let client = app.register_client(ClientSpec::web_app()).await;
    let tokens = login_form(&app, &client).await;
    let statuses = in_parallel(120, |i| {
        let (app, tokens) = (&app, &tokens);
        async move { app.submit_login(tokens, &format!("sprayed{i}"), "Winter2026!").await.status().as_u16() }
    })
    .await;
    let limit = 4 * app.settings.login.max_failures as usize;
    assert!(statuses.iter().all(|s| [401, 429].contains(s)), "{statuses:?}");
    assert!(checks(&statuses) <= limit, "at most {limit} checks for one IP: {} ran", checks(&statuses));
    // The refused attempts stored nothing: one row for the IP, one per account it checked.
    let rows = app.count_rows("login_throttles").await;
    assert!(rows <= limit as i64 + 1, "{rows} throttle rows for {limit} checks");
    app.stop().await;
}

async fn password_checks_beyond_the_bound_are_refused_at_once_with_retry_after(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.login.max_concurrent_password_checks = 1;
        s.login.max_failures = 1000; // the throttle must not be what refuses here
    })
    .await
    .unwrap();
    let client = app.register_client(ClientSpec::web_app()).await;
    let tokens = login_form(&app, &client).await;
    let responses = in_parallel(30, |i| {
        let (app, tokens) = (&app, &tokens);
        async move {
            let response = app.submit_login(tokens, &format!("busy{i}"), "guess").await;
            (response.status().as_u16(), response.headers().get("retry-after").cloned())
        }
    })
    .await;
    let busy: Vec<_> = responses.iter().filter(|(status, _)| *status == 429).collect();
    assert!(!busy.is_empty(), "30 checks at once with room for one: some are refused");
    assert!(busy.iter().all(|(_, retry)| retry.is_some()), "every refusal says when to retry");
    assert!(responses.iter().all(|(status, _)| [401, 429].contains(status)), "{responses:?}");
    app.stop().await;
}

/// Posts `password` for the account `hangs-up` (whose hash is made forty times as costly
/// as the server's, 0.3-1 s a check) `login.max_failures` times at once, each from a
/// client that resets its connection once every post holds its place; returns when every
/// place is given back. Before, actix dropped the handler with the connection and its
/// place stayed taken until the failure window ran out.
async fn posts_whose_clients_hang_up(app: &TestApp, client: &TestClient, password: &str) {
    app.create_user("hangs-up").await;
    let slow = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19_456, 80, 1, None).unwrap(),
    );
    let salt = argon2::password_hash::SaltString::encode_b64(b"hangs-up salt 16").unwrap();
    let hash = argon2::password_hash::PasswordHasher::hash_password(&slow, PASSWORD.as_bytes(), &salt).unwrap();
    let set_hash = format!("UPDATE users SET password_hash = '{hash}' WHERE username = 'hangs-up'");
    app.execute_sql(&set_hash, &set_hash).await;
    // A browser of its own, so that its cookies can go into requests written by hand.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser
        .get(app.url("/authorize"))
        .query(&AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI).params())
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|cookie| cookie.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let tokens = form_tokens(&page.text().await.unwrap());
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("pending", tokens.pending.as_str()),
            ("csrf_token", &tokens.csrf_token),
            ("username", "hangs-up"),
            ("password", password),
        ])
        .finish();
    let url = reqwest::Url::parse(&app.url("/login")).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nCookie: {}\r\n\r\n{body}",
        url.path(),
        body.len(),
        cookies.join("; "),
    );
    let in_flight =
        || app.query_i64("SELECT COALESCE(MAX(in_flight), 0) FROM login_throttles WHERE subject = 'account:hangs-up'");
    let posts = app.settings.login.max_failures as i64;
    let mut connections = Vec::new();
    for _ in 0..posts {
        let mut connection = tokio::net::TcpStream::connect(&host).await.unwrap();
        connection.write_all(request.as_bytes()).await.unwrap();
        // A reset rather than an orderly close: what a client that went away sends.
        connection.set_zero_linger().unwrap();
        connections.push(connection);
    }
    // Every post has its place: each one's password is being checked, or waits for a core.
    // Then every client hangs up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while in_flight().await < posts {
        assert!(Instant::now() < deadline, "the {posts} posts never all held a place");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(connections);
    // Each check runs to its end and gives its place back.
    while in_flight().await > 0 {
        assert!(Instant::now() < deadline, "places held after the clients hung up: {}", in_flight().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn hanging_up_app(database: &TestDatabase) -> (TestApp, TestClient) {
    let app = TestApp::spawn(database, |s| {
        s.login.max_concurrent_password_checks = 64;
        s.login.max_failures = 8;
        s.metrics.bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    (app, client)
}

/// Right passwords whose clients hang up give their places back, so `max_failures` of
/// them do not lock the account (they did, at the cost of no failure at all); and each is
/// recorded as `abandoned`, or an attacker could learn which guess was right from the
/// throttle's counts without leaving the trace of a login.
async fn logins_whose_client_hangs_up_still_give_their_places_back(database: &TestDatabase) {
    let (app, client) = hanging_up_app(database).await;
    let before = crate::metrics::scrape(&app).await;
    posts_whose_clients_hang_up(&app, &client, PASSWORD).await;
    let after = crate::metrics::scrape(&app).await;
    let count = |outcome: &str| {
        let name = format!("tessera_logins_total{{outcome=\"{outcome}\"}}");
        after.get(&name).copied().unwrap_or(0.0) - before.get(&name).copied().unwrap_or(0.0)
    };
    // A check that ended in the instant between the last look at the places and the hang-up
    // sent its answer before the reset arrived: a login like any other (seen once in CI).
    let (abandoned, succeeded) = (count("abandoned"), count("success"));
    assert!(abandoned >= 1.0, "hanging up is recorded as abandoned: {abandoned}");
    let checked = app.settings.login.max_failures as f64;
    assert_eq!(abandoned + succeeded, checked, "every right password checked is recorded: {abandoned} + {succeeded}");
    let response = app.submit_login(&login_form(&app, &client).await, "hangs-up", PASSWORD).await;
    assert_eq!(response.status(), 303, "the account is not locked");
    app.stop().await;
}

/// Wrong passwords whose clients hang up are failures all the same: hanging up after each
/// guess does not spare the guesser the lock.
async fn wrong_guesses_whose_client_hangs_up_still_count(database: &TestDatabase) {
    let (app, client) = hanging_up_app(database).await;
    posts_whose_clients_hang_up(&app, &client, "not-the-password").await;
    let failures = "SELECT COALESCE(MAX(failures), 0) FROM login_throttles WHERE subject = 'account:hangs-up'";
    assert_eq!(app.query_i64(failures).await, app.settings.login.max_failures as i64);
    let response = app.submit_login(&login_form(&app, &client).await, "hangs-up", PASSWORD).await;
    assert_eq!(response.status(), 429, "the account is locked, the right password included");
    app.stop().await;
}

/// The lock still escalates: after it runs out, one more check may run, and its failure
/// doubles the lock.
mod lock_escalation {
    use super::*;

    async fn a_failure_after_a_lock_runs_out_doubles_the_lock(app: &TestApp) {
        let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
        app.create_user("escalate").await;
        let tokens = login_form(app, &client).await;
        for _ in 0..5 {
            assert_eq!(app.submit_login(&tokens, "escalate", "wrong guess").await.status(), 401);
        }
        assert_eq!(app.submit_login(&tokens, "escalate", PASSWORD).await.status(), 429, "locked for 30 s");
        app.clock.advance(chrono::Duration::seconds(31));
        assert_eq!(app.submit_login(&tokens, "escalate", "wrong again").await.status(), 401, "one more check");
        app.clock.advance(chrono::Duration::seconds(31));
        assert_eq!(app.submit_login(&tokens, "escalate", PASSWORD).await.status(), 429, "now locked for 60 s");
        app.clock.advance(chrono::Duration::seconds(30));
        assert_eq!(app.submit_login(&tokens, "escalate", PASSWORD).await.status(), 303, "and then free again");
    }

    crate::backend_tests!(a_failure_after_a_lock_runs_out_doubles_the_lock);
}

crate::database_tests!(
    forty_parallel_guesses_for_one_account_check_at_most_max_failures,
    one_ip_spraying_many_accounts_checks_at_most_four_times_max_failures,
    password_checks_beyond_the_bound_are_refused_at_once_with_retry_after,
    logins_whose_client_hangs_up_still_give_their_places_back,
    wrong_guesses_whose_client_hangs_up_still_count,
);
