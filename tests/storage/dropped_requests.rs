//! What a dropped request does to its write (the module comment of `storage`): on SQLite,
//! once the write is on the writer thread it completes. (On PostgreSQL a transaction
//! dropped between statements rolls back; where a drop lands there is a matter of timing,
//! so no test pins it.)

use crate::helpers::{new_user, Backend, TestStorage};
use futures_util::FutureExt;
use std::time::Duration;

async fn a_write_handed_to_the_writer_completes_when_the_request_is_dropped(db: &TestStorage) {
    let user = new_user("alice");
    // Polled once, which hands the write to the writer thread, then dropped, as actix-web
    // drops a handler whose client went away.
    let dropped = db.insert_user(&user).now_or_never();
    assert!(dropped.is_none(), "the write cannot have finished within one poll");

    for _ in 0..500 {
        if db.find_user_by_id(&user.id).await.unwrap().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the write was abandoned with its request");
}

#[tokio::test]
async fn sqlite_a_write_handed_to_the_writer_completes_when_the_request_is_dropped() {
    crate::helpers::run(Backend::Sqlite, a_write_handed_to_the_writer_completes_when_the_request_is_dropped).await
}
