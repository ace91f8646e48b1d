//! SQLite's one writer: its connection, and a thread of its own that drives every SQLite
//! write (`on_writer!`).
//!
//! Why a connection of its own: SQLite admits one writer at a time. With exactly one
//! writer connection per process, writers queue on the pool's async semaphore and start
//! the moment the lock is free, instead of failing with `SQLITE_BUSY` and sleeping in the
//! busy handler (1, 2, 5 … 100 ms steps) while the lock sits idle (bench/README.md,
//! Findings 5).
//!
//! Why a thread of its own: that makes a write transaction a critical section for the
//! whole process. Each statement in it is a round trip to the connection's sqlx thread,
//! and the transaction only moves on when its future is polled again. Polled on an HTTP
//! worker, that waits until the worker finishes whatever it is doing, typically an RSA
//! signature (0.2–0.9 ms per token on the benchmark machines), while the write lock and
//! the only writer connection sit idle and every other writer queues behind them. With
//! refresh rotation that left 46 % of the machine idle at 590 rotations/s (bench/README.md,
//! Findings 7). A single statement has the same problem in small: the connection goes
//! back to the pool only when the finished query's future is polled. Work spawned here
//! is polled the moment each statement returns.
//!
//! What it costs: the work is spawned, so it must own what it uses (`ToWriter`), and it
//! is no longer the caller's to cancel. A request dropped while its write is on this
//! thread (the client went away, the server is shutting down) does not stop the write:
//! it runs to its end, committed or rolled back as its own code decides. On PostgreSQL
//! the write runs in the request's future, and dropping that future mid-transaction rolls
//! the transaction back. See the module comment of `storage` for why either is sound.

use crate::storage::StorageError;
use sqlx::SqlitePool;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tracing::Instrument;

/// The writer connection and the thread that drives it. Owning both, it is the only way
/// to write: no SQLite write can run anywhere else. (An in-memory database has one
/// connection, which the reads then share.)
pub struct Writer {
    connection: SqlitePool,
    thread: Handle,
    /// Dropped with the storage: the thread's runtime then stops.
    _stop: oneshot::Sender<()>,
    /// Writes handed to the thread and not finished: the queue every SQLite write waits
    /// in, exported as `tessera_db_writes_queued`.
    queued: Arc<AtomicUsize>,
}

/// Counts a write out of [`Writer::queued`] when it ends, however it ends.
pub(in crate::storage::sql) struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Writer {
    /// Starts the thread that drives `connection`, a pool of exactly one connection.
    pub fn start(connection: SqlitePool) -> std::io::Result<Self> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let thread = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("tessera-sqlite-writer".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            })
        })?;
        Ok(Self { connection, thread, _stop: stop, queued: Arc::default() })
    }

    /// Runs `work` on the writer thread, on the writer connection, and waits for its
    /// result. The work runs inside the caller's tracing span, so what it logs carries the
    /// request's fields.
    pub async fn run<T, F, W>(&self, work: W) -> Result<T, StorageError>
    where
        W: FnOnce(SqlitePool) -> F,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
        T: Send + 'static,
    {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let queued = Queued(self.queued.clone());
        let work = work(self.connection.clone()).instrument(tracing::Span::current());
        let work = async move {
            let _queued = queued;
            work.await
        };
        // Cancelled only once the storage is dropped (the runtime stopped); a panic in
        // `work` is reported as an error rather than taking the HTTP worker down with it.
        self.thread.spawn(work).await.unwrap_or_else(|join| {
            if join.is_panic() {
                tracing::error!("a write on the SQLite writer thread panicked");
            }
            Err(StorageError::WriterStopped)
        })
    }

    /// Starts `work` on the writer thread, on the writer connection, without waiting for
    /// it: for work that hands its outcomes out itself (`refresh::together`). It runs in
    /// no request's span, since it may serve several.
    pub fn submit<F, W>(&self, work: W)
    where
        W: FnOnce(SqlitePool) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        self.queued.fetch_add(1, Ordering::Relaxed);
        let queued = Queued(self.queued.clone());
        let work = work(self.connection.clone());
        // A panic ends only the task; its outcomes' senders are dropped with it.
        drop(self.thread.spawn(async move {
            let _queued = queued;
            work.await
        }));
    }

    /// Counts a write that waits for the writer elsewhere first (a rotation in
    /// `refresh::together`'s queue) into [`Writer::queued`] until the guard is dropped.
    pub(in crate::storage::sql) fn count_queued(&self) -> Queued {
        self.queued.fetch_add(1, Ordering::Relaxed);
        Queued(self.queued.clone())
    }

    /// Takes the writer connection and holds it until the returned sender fires or is
    /// dropped; returns once it holds it. For tests of what waits for the writer.
    #[cfg(test)]
    pub(in crate::storage::sql) async fn hold_connection(&self) -> oneshot::Sender<()> {
        let (held, is_held) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        self.submit(move |pool| async move {
            let _connection = pool.acquire().await;
            let _ = held.send(());
            let _ = released.await;
        });
        is_held.await.expect("the writer thread runs");
        release
    }

    /// Writes waiting for the writer or running on it now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub async fn close(&self) {
        self.connection.close().await
    }
}

/// An input of a write, as the writer thread takes it: owned, because the thread may
/// outlive the request that borrowed it (see `on_writer!`). PostgreSQL writes never
/// convert: they borrow their inputs where they run.
pub trait ToWriter {
    type Owned: Send + 'static;
    fn to_writer(self) -> Self::Owned;
}

/// A borrowed input is copied, once per write.
impl<T: ToOwned + ?Sized> ToWriter for &T
where
    T::Owned: Send + 'static,
{
    type Owned = T::Owned;
    fn to_writer(self) -> T::Owned {
        self.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer() -> Writer {
        let connection = sqlx::pool::PoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        Writer::start(connection).unwrap()
    }

    #[tokio::test]
    async fn writes_are_counted_while_they_wait_or_run() {
        let writer = std::sync::Arc::new(writer().await);
        // The first write holds the one connection until released; the second waits for it.
        let release = writer.hold_connection().await;
        let second = writer.clone();
        let second = tokio::spawn(async move {
            second
                .run(|pool| async move {
                    let _connection = pool.acquire().await?;
                    Ok(())
                })
                .await
        });
        for _ in 0..1000 {
            if writer.queued() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(writer.queued(), 2, "one running, one waiting");
        release.send(()).unwrap();
        second.await.unwrap().unwrap();
        assert_eq!(writer.queued(), 0, "both done");
    }

    #[tokio::test]
    async fn work_runs_on_the_writer_thread() {
        let writer = writer().await;
        let name = writer.run(|_| async { Ok(std::thread::current().name().map(str::to_owned)) }).await.unwrap();
        assert_eq!(name.as_deref(), Some("tessera-sqlite-writer"));
    }

    #[tokio::test]
    async fn work_runs_on_the_writer_connection() {
        let writer = writer().await;
        // A temporary table exists only on the connection that created it.
        writer
            .run(|pool| async move {
                sqlx::query("CREATE TEMP TABLE marker (x INTEGER)").execute(&pool).await?;
                Ok(())
            })
            .await
            .unwrap();
        let count: i64 = writer
            .run(|pool| async move { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM marker").fetch_one(&pool).await?) })
            .await
            .unwrap();
        assert_eq!(count, 0);
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_not_a_crash() {
        let writer = writer().await;
        let outcome: Result<(), _> = writer.run(|_| async { panic!("simulated failure") }).await;
        assert!(matches!(outcome, Err(StorageError::WriterStopped)), "{outcome:?}");
        // The thread survives it.
        assert_eq!(writer.run(|_| async { Ok(7) }).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn work_runs_in_the_callers_span() {
        let subscriber = tracing::Dispatch::new(tracing_subscriber::registry());
        // Spans made on this thread are the subscriber's; it tracks, per thread, which
        // span is entered, and so it is asked on the writer thread.
        let _scope = tracing::dispatcher::set_default(&subscriber);
        let writer = writer().await;
        let span = tracing::info_span!("the_request");
        let on_writer = subscriber.clone();
        let entered = writer
            .run(|_| async move { Ok(on_writer.current_span().id().cloned()) })
            .instrument(span.clone())
            .await
            .unwrap();
        assert!(span.id().is_some());
        assert_eq!(entered, span.id());
    }
}
