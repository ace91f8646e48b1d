//! A thread of its own that drives every SQLite write (`on_writer!`).
//!
//! Why: SQLite admits one writer, and Tessera has one writer connection (see
//! `SqlStorage::writes`), so a write transaction is a critical section for the whole
//! process. Each statement in it is a round trip to the connection's sqlx thread, and the
//! transaction only moves on when its future is polled again. Polled on an HTTP worker,
//! that waits until the worker finishes whatever it is doing, typically an RSA signature
//! (0.2–0.9 ms per token on the benchmark machines), while the write lock and the only
//! writer connection sit idle and every other writer queues behind them. With refresh
//! rotation that left 46 % of the machine idle at 590 rotations/s (bench/README.md,
//! Findings 7). A single statement has the same problem in small: the connection goes
//! back to the pool only when the finished query's future is polled. Work spawned here
//! is polled the moment each statement returns.

use std::future::Future;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct WriterThread {
    handle: Handle,
    /// Dropped with the storage: the thread's runtime then stops.
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    pub fn start() -> std::io::Result<Self> {
        let runtime = Builder::new_current_thread().enable_all().build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("tessera-sqlite-writer".into()).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            })
        })?;
        Ok(Self { handle, _stop: stop })
    }

    /// Runs `work` on the writer thread and waits for its result.
    pub async fn run<T, F>(&self, work: F) -> Result<T, sqlx::Error>
    where
        F: Future<Output = Result<T, sqlx::Error>> + Send + 'static,
        T: Send + 'static,
    {
        // Cancelled only once the storage is dropped (the runtime stopped); a panic in
        // `work` is reported as an error rather than taking the HTTP worker down with it.
        self.handle.spawn(work).await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_writer_thread() {
        let writer = WriterThread::start().unwrap();
        let name = writer.run(async { Ok(std::thread::current().name().map(str::to_owned)) }).await.unwrap();
        assert_eq!(name.as_deref(), Some("tessera-sqlite-writer"));
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_not_a_crash() {
        let writer = WriterThread::start().unwrap();
        let outcome: Result<(), _> = writer.run(async { panic!("simulated failure") }).await;
        assert!(matches!(outcome, Err(sqlx::Error::WorkerCrashed)));
        // The thread survives it.
        assert_eq!(writer.run(async { Ok(7) }).await.unwrap(), 7);
    }
}
