//! `HealthCheck`.

use crate::helpers::TestStorage;

async fn a_connected_store_answers_a_ping(db: &TestStorage) {
    db.ping().await.expect("one round trip to the database");
}

crate::backend_tests!(a_connected_store_answers_a_ping);
