//! Finding 1: the lock was check-then-act (40 parallel guesses for one account all ran,
//! and the right password was accepted after 39 failures), and password checks were
//! unbounded (argon2 at 19 MiB each on a 512-thread pool).

use super::{in_parallel, login_form};
use crate::helpers::browser::PASSWORD;
use crate::helpers::clients::ClientSpec;
use crate::helpers::{TestApp, TestDatabase};

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
);
