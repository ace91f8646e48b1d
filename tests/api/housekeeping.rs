//! Housekeeping (src/housekeeping.rs): the purge deletes what nobody can use any more
//! (expired families, their rotated-away tokens) and keeps every live family usable.

use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::TestApp;
use chrono::Duration;
use tessera::domain::secret::SecretDigest;

async fn housekeeping_purges_what_nobody_can_use(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("quinn").await;
    let old = refresh_token(&app.offline_login(&client, &user).await);
    let rotated_away = refresh_token(&refreshed(app, &client, &old).await);
    app.clock.advance(Duration::days(91));
    let fresh = refresh_token(&app.offline_login(&client, &user).await);
    let purged =
        tessera::housekeeping::purge(&*app.storage, &*app.clock, 2, app.settings.ssf.inactivity_timeout.chrono())
            .await
            .unwrap();
    assert!(purged >= 2, "the expired family and its tokens went ({purged} rows)");
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&old)).await.unwrap().is_none());
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&rotated_away)).await.unwrap().is_none());
    assert!(app.storage.find_refresh_token(&SecretDigest::of(&fresh)).await.unwrap().is_some(), "live families stay");
    refreshed(app, &client, &fresh).await;
}

crate::backend_tests!(housekeeping_purges_what_nobody_can_use);
