//! Finding 5: every unauthenticated `/authorize` stored a pending row (up to 8 KB), so one
//! client at 270 requests/s grew the database by 5.6 GB an hour; and housekeeping stopped
//! after 100 rounds of 500 rows per table, on unindexed columns.

use super::in_parallel;
use crate::helpers::browser::AuthorizeRequest;
use crate::helpers::clients::{ClientSpec, WEB_APP_REDIRECT_URI};
use crate::helpers::TestApp;

async fn a_thousand_unauthenticated_authorize_requests_store_nothing(app: &TestApp) {
    let client = app.register_client(ClientSpec::web_app()).await;
    let long = "x".repeat(2000);
    // 1,000 requests, 50 at a time (the test pool has 5 connections: a flood of 1,000 at
    // once measures the pool's acquire timeout, not what the requests store).
    let mut pages = Vec::new();
    for _ in 0..20 {
        pages.extend(
            in_parallel(50, |_| {
                let (app, client, long) = (app, &client, &long);
                async move {
                    let request = AuthorizeRequest {
                        state: Some(long.clone()),
                        ..AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)
                    }
                    .with("login_hint", long);
                    app.get_authorize(&request).await.status().as_u16()
                }
            })
            .await,
        );
    }
    assert!(pages.iter().all(|s| *s == 200), "each got its login page");
    for table in ["pending_authorizations", "sessions", "authorization_codes", "login_throttles"] {
        assert_eq!(app.count_rows(table).await, 0, "{table}: a stranger's request stores nothing");
    }
}

async fn one_housekeeping_run_purges_a_backlog_of_two_hundred_thousand_rows(app: &TestApp) {
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) \
         INSERT INTO revoked_access_tokens (jti, expires_at) SELECT 'jti-' || i, 1 FROM n",
        "INSERT INTO revoked_access_tokens (jti, expires_at) \
         SELECT 'jti-' || i, TIMESTAMPTZ '2001-01-01 00:00:00+00' FROM generate_series(1, 200000) AS i",
    )
    .await;
    assert_eq!(app.count_rows("revoked_access_tokens").await, 200_000);
    let purged =
        tessera::housekeeping::purge(&*app.storage, &*app.clock, 500, app.settings.ssf.inactivity_timeout.chrono())
            .await
            .unwrap();
    assert!(purged >= 200_000);
    assert_eq!(app.count_rows("revoked_access_tokens").await, 0, "one run finishes the backlog");
}

crate::backend_tests!(
    a_thousand_unauthenticated_authorize_requests_store_nothing,
    one_housekeeping_run_purges_a_backlog_of_two_hundred_thousand_rows,
);
