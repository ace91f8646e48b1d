//! Read connections kept between reads instead of handed back to the pool, because sqlx
//! 0.8's pool pings every connection handed back to it (`PoolConnection::return_to_pool`;
//! 0.9.1 still does, and neither has a setting to skip it).
//!
//! On PostgreSQL that ping is a second round trip per statement (a lone `Sync` answered by
//! `ReadyForQuery`) and on SQLite a second hand-off to the connection's thread. Measured
//! with sqlx patched not to ping: PostgreSQL introspection +10–44 % (bench/README.md,
//! findings 20–21). After a read that completed, the ping learns nothing: the driver has
//! just read `ReadyForQuery` (or SQLite's thread answered), so the connection is known to
//! be idle and healthy.
//!
//! So a read takes a connection from here first, and one that completed is kept here for
//! the next read, still checked out of the pool. Every other ending goes through the pool's
//! own release, ping included: a read that failed or was cancelled part-way (its future
//! dropped), a connection with bytes still to send or a transaction open (a rollback
//! queued by a dropped transaction, a transaction leaked: reads open none, but the pool is
//! where such a thing is flushed), one out of the pool for [`Kept::at_most_for`] since it
//! was taken from it (so each goes back, is pinged and meets the pool's `max_lifetime` that
//! often), and every connection once the pool is closing.
//!
//! Kept connections are idle but count against the pool's `max_connections`, so at most a
//! quarter of the pool is kept, and none while the pool has nothing left to give: a read
//! that completes then hands its connection back, and a write on PostgreSQL (one pool for
//! both) hands back all kept ones first ([`Kept::pool_for_write`]). An in-memory SQLite
//! database has one connection, shared with the writer: nothing is kept there.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Kept<DB: Database> {
    pool: Pool<DB>,
    /// Connections that completed their last read, newest last, each with when it was
    /// taken from the pool.
    kept: Mutex<Vec<(PoolConnection<DB>, Instant)>>,
    most: usize,
    max_connections: u32,
    at_most_for: Duration,
}

impl<DB: Database> Kept<DB> {
    /// Keeps up to a quarter of `max_connections` of `pool` between reads, each for at most
    /// `at_most_for` since it was taken from the pool; `shared` (the pool is the SQLite
    /// writer's one connection) keeps none.
    pub(super) fn new(pool: Pool<DB>, max_connections: u32, shared: bool, at_most_for: Duration) -> Self {
        let most = if shared { 0 } else { max_connections as usize / 4 };
        Self { pool, kept: Mutex::new(Vec::with_capacity(most)), most, max_connections, at_most_for }
    }

    /// The pool the connections come from (and go back to), for what does not go through
    /// the kept ones: migrations, closing, its counters.
    pub(super) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// How many connections are kept now (idle, though checked out of the pool).
    pub(super) fn count(&self) -> usize {
        self.lock().len()
    }

    /// A connection for one read: the newest kept one, or one from the pool. Kept ones out
    /// of the pool for too long go back to it first.
    pub(super) async fn take(&self) -> Result<Held<'_, DB>, sqlx::Error> {
        let (newest, old) = {
            let mut kept = self.lock();
            let old = self.stale(&mut kept);
            (kept.pop(), old)
        };
        drop(old); // outside the lock: each hands itself back, on a task of its own
        let (connection, taken) = match newest {
            Some(kept) => kept,
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(Held { connection: Some(connection), taken, kept: self })
    }

    /// The pool, for a write on PostgreSQL (which has one pool for reads and writes): kept
    /// connections out of the pool for too long go back to it, and if the pool has nothing
    /// left to give, all of them, so a write does not wait for one that sits here idle.
    pub(super) fn pool_for_write(&self) -> &Pool<DB> {
        if self.drained() {
            self.release_all();
        } else {
            let old = self.stale(&mut self.lock());
            drop(old);
        }
        &self.pool
    }

    /// Takes out of `kept` the connections out of the pool for `at_most_for`, to be
    /// dropped after the lock (each hands itself back to the pool). Kept again and again,
    /// a connection can be older than those behind it: each is looked at. Allocates only
    /// when one is to go.
    fn stale(&self, kept: &mut Vec<(PoolConnection<DB>, Instant)>) -> Vec<(PoolConnection<DB>, Instant)> {
        let now = Instant::now();
        let fresh = |(_, taken): &(PoolConnection<DB>, Instant)| now.duration_since(*taken) < self.at_most_for;
        if kept.iter().all(fresh) {
            return Vec::new();
        }
        let (fresh, old) = std::mem::take(kept).into_iter().partition(fresh);
        *kept = fresh;
        old
    }

    /// Hands every kept connection back to the pool; `close()` waits for them, and
    /// [`Held::completed`] keeps none once the pool is closed.
    pub(super) fn release_all(&self) {
        let kept = std::mem::take(&mut *self.lock());
        drop(kept);
    }

    /// Closes the pool. `close()` marks the pool closed before it waits, so no read keeps
    /// its connection after `release_all`, and the pool waits for the kept ones it gets back.
    pub(super) async fn close(&self) {
        let closing = self.pool.close();
        self.release_all();
        closing.await
    }

    /// Every connection the pool may open is open, and none is idle in it: whoever asks it
    /// next waits.
    fn drained(&self) -> bool {
        self.pool.size() >= self.max_connections && self.pool.num_idle() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PoolConnection<DB>, Instant)>> {
        // The lock guards only pushes and pops: a panic cannot leave the list half-changed.
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Did a read fail because its connection did (the server restarted, failed over, or cut
/// it), rather than its statement? Then the other kept connections likely did too, and go
/// back to be tested. A statement's own error (say, a value the database's encoding
/// cannot hold) says nothing about them: a stranger who can cause one must not make every
/// request send the kept connections back.
pub(super) fn connection_lost(error: &crate::storage::StorageError) -> bool {
    let crate::storage::StorageError::Database(error) = error else { return false };
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's classes 08 (connection exception) and 57 (operator intervention:
        // 57P01 terminated by an administrator, 57P02 crash shutdown, 57P03 starting up).
        sqlx::Error::Database(database) => database
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| pg.code().starts_with("08") || pg.code().starts_with("57")),
        _ => false,
    }
}

/// A connection taken for one read. Dropped without [`Held::completed`] (the read failed
/// or was cancelled), `PoolConnection`'s own drop hands it back to the pool, which pings it
/// before anyone else gets it.
pub(super) struct Held<'a, DB: Database> {
    connection: Option<PoolConnection<DB>>,
    /// When the connection was taken from the pool (not from `kept`).
    taken: Instant,
    kept: &'a Kept<DB>,
}

impl<DB: Database> Held<'_, DB> {
    pub(super) fn connection(&mut self) -> &mut DB::Connection {
        self.connection.as_mut().expect("taken only by `completed`, which consumes the hold")
    }

    /// The read completed: keep the connection for the next one if it is idle, there is
    /// room, the pool has connections to spare, and it is not closing.
    pub(super) fn completed(mut self) {
        let Some(connection) = self.connection.take() else { return };
        if connection.should_flush() || connection.is_in_transaction() || self.kept.drained() {
            return; // dropped: the pool's release sends what is queued, and pings
        }
        let mut kept = self.kept.lock();
        // Under the lock, so that `release_all` after `close()` marked the pool closed
        // cannot miss a connection kept at the same moment.
        if kept.len() < self.kept.most && !self.kept.pool.is_closed() {
            kept.push((connection, self.taken));
        }
    }
}

impl<DB: Database> Drop for Kept<DB> {
    fn drop(&mut self) {
        // A `PoolConnection` hands itself back on a task of the current runtime, and
        // panics where there is none (a storage dropped after its runtime): there the kept
        // connections are closed here instead. `detach` spawns nothing while the pool's
        // `min_connections` is 0, as `pool_options` leaves it.
        if tokio::runtime::Handle::try_current().is_err() {
            let kept = std::mem::take(self.kept.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
            for (connection, _) in kept {
                drop(connection.detach());
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use sqlx::pool::PoolOptions;

    const MAX: u32 = 8;
    /// Longer than any test: nothing goes back for its age unless a test says so.
    const LONG: Duration = Duration::from_secs(600);

    async fn sqlite() -> (tempfile::TempDir, Pool<sqlx::Sqlite>) {
        let dir = tempfile::tempdir().unwrap();
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("t.db")).create_if_missing(true);
        let pool = PoolOptions::new().max_connections(MAX).connect_with(options).await.unwrap();
        (dir, pool)
    }

    async fn postgres() -> Option<Pool<sqlx::Postgres>> {
        let url = super::super::tests::postgres_url()?;
        Some(PoolOptions::new().max_connections(MAX).connect(&url).await.unwrap())
    }

    /// Takes `n` connections at once, runs a statement on each and completes them, in
    /// the order taken: up to the quarter is then kept.
    pub(in crate::storage::sql) async fn keep<DB: Database>(kept: &Kept<DB>, n: usize)
    where
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(kept.take().await.unwrap());
        }
        for mut one in held {
            sqlx::query("SELECT 1").execute(one.connection()).await.unwrap();
            one.completed();
        }
    }

    /// Waits (bounded) until the pool has at least `idle` idle connections: a connection
    /// handed back goes through the release on a task of its own.
    async fn until_idle<DB: Database>(pool: &Pool<DB>, idle: usize) {
        for _ in 0..500 {
            if pool.num_idle() >= idle {
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
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
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
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
            let mut held = kept.take().await.unwrap();
            assert!(sqlx::query("SELECT * FROM no_such_table").execute(held.connection()).await.is_err());
            drop(held);
            assert_eq!(kept.count(), 0);
            until_idle(&pool, 1).await;
        }

        a_cancelled_read_is_not_kept_and_leaves_nothing_for_the_next(pool) {
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
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
            let kept = std::sync::Arc::new(Kept::new(pool.clone(), MAX, false, LONG));
            // Dozens at once: each gets its own answer, and no more than the quarter stays.
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
            assert!(kept.count() <= MAX as usize / 4);
            // Once the pool has taken back what was not kept, six reads at once leave it
            // two idle connections as they complete: the quarter is kept, and the rest is
            // the pool's, to be taken at once, now.
            until_idle(&pool, pool.size() as usize - kept.count()).await;
            keep(&*kept, 6).await;
            assert_eq!(kept.count(), MAX as usize / 4);
            let mut others = Vec::new();
            for _ in 0..MAX as usize - kept.count() {
                others.push(tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await.unwrap().unwrap());
            }
        }

        shared_keeps_nothing(pool) {
            let kept = Kept::new(pool.clone(), MAX, true, LONG);
            let mut held = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(held.connection()).await.unwrap();
            held.completed();
            assert_eq!(kept.count(), 0);
            until_idle(&pool, 1).await;
        }

        a_connection_out_of_the_pool_too_long_goes_back_even_behind_a_fresh_one(pool) {
            // Long enough that a stalled machine does not age the fresh one too.
            let kept = Kept::new(pool.clone(), MAX, false, Duration::from_secs(2));
            let mut old = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(old.connection()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let mut fresh = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(fresh.connection()).await.unwrap();
            old.completed();
            fresh.completed();
            assert_eq!(kept.count(), 2, "kept in that order: the old one first, the fresh one last");
            let _next = kept.take().await.unwrap();
            assert_eq!(kept.count(), 0, "the fresh one taken, the old one gone back to the pool");
            until_idle(&pool, 1).await;
        }

        a_read_that_completes_while_the_pool_has_nothing_left_hands_its_connection_back(pool) {
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
            let mut others = Vec::new();
            for _ in 1..MAX {
                others.push(pool.acquire().await.unwrap());
            }
            let mut held = kept.take().await.unwrap();
            sqlx::query("SELECT 1").execute(held.connection()).await.unwrap();
            held.completed();
            assert_eq!(kept.count(), 0, "whoever asks the pool next must not wait for it");
            until_idle(&pool, 1).await;
        }

        a_write_gets_back_the_kept_connections_when_the_pool_has_nothing_left(pool) {
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
            keep(&kept, 2).await;
            assert_eq!(kept.count(), 2);
            let mut others = Vec::new();
            for _ in 2..MAX {
                others.push(pool.acquire().await.unwrap());
            }
            let write = kept.pool_for_write();
            assert_eq!(kept.count(), 0);
            let connection = tokio::time::timeout(Duration::from_secs(2), write.acquire()).await;
            assert!(connection.expect("a write does not wait for idle kept connections").is_ok());
        }

        a_connection_left_in_a_transaction_is_not_kept(pool) {
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
            let mut held = kept.take().await.unwrap();
            let tx = held.connection().begin().await.unwrap();
            std::mem::forget(tx); // neither committed nor rolled back: still open
            held.completed();
            assert_eq!(kept.count(), 0);
        }

        closing_hands_back_the_kept_connections_and_keeps_no_more(pool) {
            let kept = Kept::new(pool.clone(), MAX, false, LONG);
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
    async fn only_a_failed_connection_sends_the_kept_ones_back() {
        use crate::storage::StorageError;
        let (_dir, pool) = sqlite().await;
        let statement = sqlx::query("SELECT * FROM no_such_table").execute(&pool).await.unwrap_err();
        assert!(!connection_lost(&StorageError::Database(statement)));
        assert!(!connection_lost(&StorageError::Corrupt("a row".into())));
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(connection_lost(&StorageError::Database(io)));
        let Some(pg) = postgres().await else { return };
        let statement = sqlx::query("SELECT * FROM no_such_table").execute(&pg).await.unwrap_err();
        assert!(!connection_lost(&StorageError::Database(statement)), "42P01 is the statement's");
    }

    #[tokio::test]
    async fn a_postgres_connection_with_a_rollback_queued_is_not_kept() {
        let Some(pool) = postgres().await else { return };
        let kept = Kept::new(pool.clone(), MAX, false, LONG);
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
