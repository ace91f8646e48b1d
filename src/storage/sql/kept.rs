//! Read connections kept between reads instead of handed back to the pool, because sqlx
//! 0.8's pool pings every connection handed back to it (`PoolConnection::return_to_pool`;
//! 0.9.1 still does, and neither has a setting to skip it).
//!
//! On PostgreSQL that ping is a second round trip per statement (a lone `Sync` answered by
//! `ReadyForQuery`) and on SQLite a second hand-off to the connection's thread. Measured
//! with sqlx patched not to ping: PostgreSQL introspection +10–44 % (bench/README.md,
//! finding 20). After a read that completed, the ping learns nothing: the driver has just
//! read `ReadyForQuery` (or SQLite's thread answered), so the connection is known to be
//! idle and healthy.
//!
//! So a read takes a connection from here first, and one that completed is kept here for
//! the next read, still checked out of the pool. Every other ending goes through the pool's
//! own release, ping included: a read that failed or was cancelled part-way (its future
//! dropped), a connection with bytes still to send (a rollback queued by a dropped
//! transaction: reads open none, but the pool is where such a thing is flushed), one kept
//! longer than [`KEPT_AT_MOST_FOR`], and every connection once the pool is closing.
//!
//! Kept connections are idle but count against the pool's `max_connections`, so at most
//! [`Kept::most`] are kept: a quarter of the pool, so that writes (PostgreSQL has one pool
//! for both) and other reads always find the rest. An in-memory SQLite database has one
//! connection shared with the writer, so there nothing is kept.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A kept connection older than this goes back through the pool, whose release ping tests
/// it, and whose `max_lifetime` and idle checks then apply to it again.
pub(super) const KEPT_AT_MOST_FOR: Duration = Duration::from_secs(30);

pub(super) struct Kept<DB: Database> {
    pool: Pool<DB>,
    /// Connections that completed their last read, newest last, with when they did.
    kept: Mutex<Vec<(PoolConnection<DB>, Instant)>>,
    most: usize,
}

impl<DB: Database> Kept<DB> {
    /// Keeps up to a quarter of `max_connections` of `pool` between reads; `shared` (the
    /// pool is the SQLite writer's one connection) keeps none.
    pub(super) fn new(pool: Pool<DB>, max_connections: u32, shared: bool) -> Self {
        let most = if shared { 0 } else { max_connections as usize / 4 };
        Self { pool, kept: Mutex::new(Vec::with_capacity(most)), most }
    }

    /// How many connections are kept now (idle, though checked out of the pool).
    pub(super) fn count(&self) -> usize {
        self.lock().len()
    }

    /// A connection for one read: the newest kept one, or one from the pool.
    pub(super) async fn take(&self) -> Result<Held<'_, DB>, sqlx::Error> {
        let newest = self.lock().pop();
        let connection = match newest {
            Some((connection, since)) if since.elapsed() < KEPT_AT_MOST_FOR => connection,
            // Older ones are older still: all go back through the pool's release.
            stale => {
                let older = std::mem::take(&mut *self.lock());
                drop((stale, older));
                self.pool.acquire().await?
            }
        };
        Ok(Held { connection: Some(connection), kept: self })
    }

    /// Hands every kept connection back to the pool; `close()` waits for them, and
    /// [`Held::completed`] keeps none once the pool is closed.
    pub(super) fn release_all(&self) {
        let kept = std::mem::take(&mut *self.lock());
        drop(kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PoolConnection<DB>, Instant)>> {
        // The lock guards only pushes and pops: a panic cannot leave the list half-changed.
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection taken for one read. Dropped without [`Held::completed`] (the read failed
/// or was cancelled), `PoolConnection`'s own drop hands it back to the pool, which pings it
/// before anyone else gets it.
pub(super) struct Held<'a, DB: Database> {
    connection: Option<PoolConnection<DB>>,
    kept: &'a Kept<DB>,
}

impl<DB: Database> Held<'_, DB> {
    pub(super) fn connection(&mut self) -> &mut DB::Connection {
        self.connection.as_mut().expect("taken only by `completed`, which consumes the hold")
    }

    /// The read completed: keep the connection for the next one if it is idle, there is
    /// room, and the pool is not closing.
    pub(super) fn completed(mut self) {
        let Some(connection) = self.connection.take() else { return };
        if connection.should_flush() {
            return; // dropped: the pool's release sends what is queued
        }
        let mut kept = self.kept.lock();
        // Under the lock, so that `release_all` after `close()` marked the pool closed
        // cannot miss a connection kept at the same moment.
        if kept.len() < self.kept.most && !self.kept.pool.is_closed() {
            kept.push((connection, Instant::now()));
        }
    }
}

impl<DB: Database> Drop for Kept<DB> {
    fn drop(&mut self) {
        // A `PoolConnection` hands itself back on a task of the current runtime, and
        // panics where there is none (a storage dropped after its runtime): there the kept
        // connections are closed here instead.
        if tokio::runtime::Handle::try_current().is_err() {
            let kept = std::mem::take(self.kept.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
            for (connection, _) in kept {
                drop(connection.detach());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::pool::PoolOptions;

    const MAX: u32 = 8;

    async fn sqlite() -> (tempfile::TempDir, Pool<sqlx::Sqlite>) {
        let dir = tempfile::tempdir().unwrap();
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("t.db")).create_if_missing(true);
        let pool = PoolOptions::new().max_connections(MAX).connect_with(options).await.unwrap();
        (dir, pool)
    }

    /// The test database's server, as in `tests/`: required in CI, else skipped.
    async fn postgres() -> Option<Pool<sqlx::Postgres>> {
        let url = match std::env::var("TESSERA_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var_os("CI").is_some() => panic!("TESSERA_TEST_POSTGRES_URL is not set in CI"),
            _ => {
                eprintln!("skipped: TESSERA_TEST_POSTGRES_URL is not set");
                return None;
            }
        };
        Some(PoolOptions::new().max_connections(MAX).connect(&url).await.unwrap())
    }

    /// Waits (bounded) until the pool has `idle` idle connections: a connection handed
    /// back goes through the release on a task of its own.
    async fn until_idle<DB: Database>(pool: &Pool<DB>, idle: usize) {
        for _ in 0..500 {
            if pool.num_idle() == idle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the pool has {} idle connections, not {idle}", pool.num_idle());
    }

    /// Each test once per backend: `$pool` is a pool of `MAX` connections.
    macro_rules! on_both {
        ($($name:ident($pool:ident) $body:block)*) => {
            mod sqlite {
                use super::*;
                $(#[tokio::test]
                async fn $name() {
                    let (_dir, $pool) = sqlite().await;
                    $body
                })*
            }
            mod postgres {
                use super::*;
                $(#[tokio::test]
                async fn $name() {
                    let Some($pool) = postgres().await else { return };
                    $body
                })*
            }
        };
    }

    on_both! {
        a_completed_read_keeps_its_connection_out_of_the_pool_for_the_next(pool) {
            let kept = Kept::new(pool.clone(), MAX, false);
            let mut held = kept.take().await.unwrap();
            let one: i64 = sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(held.connection()).await.unwrap();
            assert_eq!(one, 1);
            held.completed();
            assert_eq!(kept.count(), 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(pool.num_idle(), 0, "kept, not handed back: still checked out");
            let mut again = kept.take().await.unwrap();
            assert_eq!(kept.count(), 0, "the next read takes it");
            let two: i64 = sqlx::query_scalar("SELECT CAST(2 AS BIGINT)").fetch_one(again.connection()).await.unwrap();
            assert_eq!(two, 2);
            assert_eq!(pool.size(), 1, "no second connection was opened");
        }

        a_failed_read_goes_back_through_the_pool(pool) {
            let kept = Kept::new(pool.clone(), MAX, false);
            let mut held = kept.take().await.unwrap();
            assert!(sqlx::query("SELECT * FROM no_such_table").execute(held.connection()).await.is_err());
            drop(held);
            assert_eq!(kept.count(), 0);
            until_idle(&pool, 1).await;
        }

        a_cancelled_read_is_not_kept_and_leaves_nothing_for_the_next(pool) {
            let kept = Kept::new(pool.clone(), MAX, false);
            // A read that returns many rows, dropped after the first: its connection still
            // has rows on the way, and is not the next read's to see.
            let many = "WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < 100000) SELECT i FROM n";
            let mut held = kept.take().await.unwrap();
            {
                use futures_util::StreamExt;
                let mut rows = sqlx::query_scalar::<_, i64>(many).fetch(held.connection());
                assert_eq!(rows.next().await.unwrap().unwrap(), 1);
            }
            drop(held);
            assert_eq!(kept.count(), 0);
            until_idle(&pool, 1).await;
            let mut next = kept.take().await.unwrap();
            let seven: i64 = sqlx::query_scalar("SELECT CAST(7 AS BIGINT)").fetch_one(next.connection()).await.unwrap();
            assert_eq!(seven, 7);
            next.completed();
            assert_eq!(kept.count(), 1);
        }

        at_most_a_quarter_of_the_pool_is_kept_and_the_rest_stays_free(pool) {
            let kept = std::sync::Arc::new(Kept::new(pool.clone(), MAX, false));
            let reads = (0..40i64).map(|i| {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut held = kept.take().await.unwrap();
                    let got: i64 = sqlx::query_scalar("SELECT $1").bind(i).fetch_one(held.connection()).await.unwrap();
                    held.completed();
                    got
                })
            });
            let got: Vec<i64> = futures_util::future::join_all(reads).await.into_iter().map(Result::unwrap).collect();
            assert_eq!(got, (0..40).collect::<Vec<_>>());
            assert_eq!(kept.count(), MAX as usize / 4);
            // The other three quarters are the pool's: all can be taken at once, now.
            let mut others = Vec::new();
            for _ in 0..MAX as usize - kept.count() {
                others.push(tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await.unwrap().unwrap());
            }
        }

        shared_keeps_nothing(pool) {
            let kept = Kept::new(pool.clone(), MAX, true);
            let mut held = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(held.connection()).await.unwrap();
            held.completed();
            assert_eq!(kept.count(), 0);
            until_idle(&pool, 1).await;
        }

        closing_hands_back_the_kept_connections_and_keeps_no_more(pool) {
            let kept = Kept::new(pool.clone(), MAX, false);
            let mut first = kept.take().await.unwrap();
            let mut second = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(first.connection()).await.unwrap();
            sqlx::query("SELECT 1").execute(second.connection()).await.unwrap();
            first.completed();
            assert_eq!(kept.count(), 1);
            let closing = pool.close();
            kept.release_all();
            // A read that completes while the pool closes keeps nothing.
            second.completed();
            assert_eq!(kept.count(), 0);
            tokio::time::timeout(Duration::from_secs(5), closing).await.expect("close() waits for no kept connection");
        }
    }

    #[tokio::test]
    async fn a_postgres_connection_with_a_rollback_queued_is_not_kept() {
        let Some(pool) = postgres().await else { return };
        let kept = Kept::new(pool.clone(), MAX, false);
        let mut held = kept.take().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(held.connection()).await.unwrap();
        let mut tx = held.connection().begin().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
        drop(tx); // queues ROLLBACK, to be sent with whatever the connection does next
        held.completed();
        assert_eq!(kept.count(), 0, "the pool's release flushes the rollback");
        until_idle(&pool, 1).await;
        let mut other = pool.acquire().await.unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'idle in transaction'",
        )
        .bind(pid)
        .fetch_one(&mut *other)
        .await
        .unwrap();
        assert_eq!(open, 0, "no transaction left open");
    }
}
