//! Finding 1: the lock was check-then-act (40 parallel guesses for one account all ran,
//! and the right password was accepted after 39 failures), and password checks were
//! unbounded (argon2 at 19 MiB each on a 512-thread pool).

use super::{in_parallel, login_form};
use crate::helpers::browser::PASSWORD;
use crate::helpers::browser::{form_tokens, AuthorizeRequest};
use crate::helpers::clients::ClientSpec;
use crate::helpers::clients::WEB_APP_REDIRECT_URI;
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

/// A login whose client hangs up while its password is checked still settles its
/// reservation. Before, actix dropped the handler with the connection and its place stayed
/// taken until the failure window ran out: `max_failures` posts that hang up at once
/// locked the account for that window, the right password included, at the cost of no
/// failure at all.
async fn logins_whose_client_hangs_up_still_give_their_places_back(database: &TestDatabase) {
    let app = TestApp::spawn(database, |s| {
        s.login.max_concurrent_password_checks = 64;
        s.login.max_failures = 8;
    })
    .await
    .unwrap();
    let client = app.register_client(ClientSpec { is_first_party: true, ..ClientSpec::web_app() }).await;
    app.create_user("hangs-up").await;
    // A hash forty times as costly as the server's (0.3-1 s a check), so that every post
    // is still being checked, or waiting for a core, when its client hangs up.
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
        .query(&AuthorizeRequest::new(&client, WEB_APP_REDIRECT_URI).params())
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
            ("password", PASSWORD),
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
    let response = app.submit_login(&login_form(&app, &client).await, "hangs-up", PASSWORD).await;
    assert_eq!(response.status(), 303, "the account is not locked");
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
);
