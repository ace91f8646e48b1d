//! PostgreSQL refresh rotations, several to one statement.
//!
//! A rotation's claim ([`CLAIM_TOGETHER`]) costs PostgreSQL about 280 µs of CPU on the
//! 2-core machine, most of it the executor's start and end of a statement over three
//! tables and the commit's WAL flush, more than the RSA signature the rotation pays for
//! (bench/README.md finding 18). Here rotations that arrive while [`MOST_STATEMENTS`]
//! statements of their thread's are running wait, and the next statement claims up to
//! [`MOST_TOGETHER`] of them at once from arrays, so under load that fixed cost is shared;
//! with a statement place free, a rotation is sent at once, alone, as before. Each thread
//! (actix worker) has its own queue, served by tasks on that thread ([`Thread`]).
//! (bench/README.md finding 30 has the numbers.)
//!
//! Each statement runs in a task of its own, not in a caller's future: a claim that
//! committed must reach its caller's settlement even when another caller of the group
//! went away, and a statement is never abandoned half-sent because one caller did.
//! Rotations whose caller went away before their statement was taken are dropped unrun
//! (the token stays as it was).
//!
//! Sound because the statement is the one-rotation claim over several rows: it locks the
//! unused tokens it names, skipping any row another transaction holds (that token goes on
//! alone to the transaction, which waits for the row and reads the facts afresh), and
//! claims each only where it is still unused (READ COMMITTED re-checks `used_at IS NULL`
//! on the newest version). A token named twice in one statement is updated by one of its
//! two rows only, and the statement returns that row's place; the other presentation finds
//! the token used in the transaction. So each presentation's claim is exactly its own, and
//! what a statement does not claim, its caller carries on to the transaction, as a lone
//! claim that found nothing.
//!
//! Failures: PostgreSQL runs the statement atomically, so one that PostgreSQL refused (an
//! error of the statement itself: a constraint, a deadlock, a cancel; see [`refused`])
//! changed nothing, and each of its rotations goes on to the transaction, which claims it
//! alone. Any other failure (the connection lost: whether it committed is unknown) fails
//! each of them with that error, as a lone claim's would.

use super::{Claim, FamilyRow};
use crate::domain::refresh::TokenFamily;
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most rotations one statement claims.
const MOST_TOGETHER: usize = 16;

/// The most statements running at once for one thread's rotations. Below it a rotation
/// is sent at once; at it, rotations wait and go together. Each statement also waits for
/// its commit's WAL flush, so a few run at once to keep the cores busy meanwhile: on the
/// 2-core machine 2, 3, 4 and 8 all cut PostgreSQL's CPU per rotation by half, and 4 ran
/// the most rotations (finding 30).
const MOST_STATEMENTS: usize = 4;

/// The most rotations waiting in one thread's queue; past it a rotation is sent alone.
/// Every waiting rotation is a request in flight, so connection limits bound it too; this
/// bounds it whatever they are.
const MOST_WAITING: usize = 4096;

/// The claim, for any number of rotations (PostgreSQL only: SQLite has no data-modifying
/// CTEs). Its WHERE clause is [`crate::domain::refresh::decide`] restricted to the one
/// case it calls Rotate (change it, `together::CLAIM` and `decide` together; the
/// `refresh_tokens` API tests cover each case on PostgreSQL through it), with every
/// presentation's values read from arrays, one row each. It claims only an unused,
/// unexpired token of the presenting client, in a live family of an enabled user who
/// changed no credentials since, bound to no DPoP key or to the request's, whose scope
/// holds the requested one (space-separated, NULL for none); it records the successor on
/// the token and inserts it. It returns one row per rotation it claimed, with the
/// rotation's place (from 1) and the family; a presentation it did not claim has no row
/// and nothing of it changed.
///
/// Written so that PostgreSQL's plan starts from the presented tokens whatever it expects
/// of the arrays (checked with `bench/explain`, finding 30):
/// - The tokens are found by `token_digest = ANY(…)` on the primary key. Joined to the
///   `generate_subscripts` rows alone, which it expects to be 1,000, it hashed the whole
///   table for them (87 ms on 200,000 tokens).
/// - The family and user are checked in a scalar subquery on the token's family, one
///   lookup on a key per token. Joined in the `FROM` instead, the planner matched families
///   to rotations by client, over every family of the client.
/// - Optional values are tested per row, as in `standing::TOGETHER`, not per parameter.
///
/// It is planned on every call, not kept prepared ([`claim_together`]): a connection's
/// kept plan, made at its sixth call while the table was small, scanned the whole table
/// on every call as the table grew, until an `ANALYZE` (finding 30: 58 M rows read in ten
/// seconds on a fresh database). Planning costs PostgreSQL about 0.3 ms a statement,
/// shared by its rotations.
///
/// The tokens are locked first, skipping any another transaction holds: a token that
/// someone else is rotating or whose family's reuse is being revoked waits alone in the
/// transaction (which then reads the facts afresh) instead of holding up the other
/// rotations of its statement; so a statement never waits for a row.
const CLAIM_TOGETHER: &str = concat!(
    "WITH i AS ( \
       SELECT n AS place, ($1::text[])[n] AS presented, ($2::timestamptz[])[n] AS rotated_at, \
         ($3::text[])[n] AS successor, ($4::bytea[])[n] AS sealed, ($5::timestamptz[])[n] AS sealed_until, \
         ($6::text[])[n] AS client, ($7::text[])[n] AS scope, ($8::timestamptz[])[n] AS idle, ($9::text[])[n] AS jkt \
       FROM generate_subscripts($1::text[], 1) AS n), \
     claimed AS ( \
       UPDATE refresh_tokens t SET used_at = i.rotated_at, successor_digest = i.successor, \
         successor_sealed = i.sealed, successor_sealed_until = i.sealed_until \
       FROM i \
       WHERE t.token_digest = ANY(ARRAY( \
           SELECT r.token_digest FROM refresh_tokens r \
           WHERE r.token_digest = ANY(ARRAY(SELECT presented FROM i)) AND r.used_at IS NULL \
           ORDER BY r.token_digest FOR UPDATE SKIP LOCKED)) \
         AND t.token_digest = i.presented AND t.used_at IS NULL AND t.idle_expires_at > i.rotated_at AND (SELECT f.client_id = i.client AND f.revoked_at IS NULL AND f.absolute_expires_at > i.rotated_at \
                AND u.disabled_at IS NULL \
                AND (u.credentials_changed_at IS NULL OR u.credentials_changed_at <= f.auth_time) \
                AND (i.scope IS NULL OR string_to_array(f.scope, ' ') @> string_to_array(i.scope, ' ')) \
                AND (f.dpop_jkt IS NULL OR f.dpop_jkt = i.jkt) \
              FROM token_families f JOIN users u ON u.id = f.user_id WHERE f.id = t.family_id) IS TRUE \
       RETURNING i.place, i.successor, i.rotated_at, i.idle, t.family_id), \
     successor AS ( \
       INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at) \
       SELECT c.successor, f.id, c.rotated_at, LEAST(c.idle, f.absolute_expires_at) \
       FROM claimed c JOIN token_families f ON f.id = c.family_id) \
     SELECT c.place, ",
    family_columns!(),
    " FROM claimed c JOIN token_families f ON f.id = c.family_id"
);

/// A row of [`CLAIM_TOGETHER`]: which rotation, and its family.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    place: i32,
    #[sqlx(flatten)]
    family: FamilyRow,
}

/// What one rotation learns: the family when claimed, `None` when the transaction must
/// tell why not.
type Claimed = Result<Option<TokenFamily>, StorageError>;

type Waiter = (Claim<'static>, oneshot::Sender<Claimed>);

/// Rotations waiting for a statement, a queue per thread (see [`Thread`]).
#[derive(Default)]
pub(in crate::storage::sql) struct PostgresRotations {
    waiting: Mutex<HashMap<Thread, Waiting>>,
    /// The size of every statement sent, for the tests to see that rotations go together.
    #[cfg(test)]
    sizes: Mutex<Vec<usize>>,
}

/// The thread a rotation came from. Each thread's rotations wait for statements run by
/// tasks spawned on that thread, as each actix worker is a runtime on a thread of its own
/// and signs tokens on it: a worker busy signing does not run its tasks, so one worker's
/// statements serving another's rotations would make the other wait on it.
type Thread = std::thread::ThreadId;

struct Waiting {
    rotations: VecDeque<Waiter>,
    /// Statements running, each in its task; each takes what waits before it ends.
    running: usize,
    /// When a place was last taken, or a statement started or ended: with every place
    /// taken and no progress for [`PATIENCE`], the statements are stuck, and new rotations
    /// go alone (as they also do while the places wait that long for a connection: each
    /// then waits for one, as every rotation did before they were shared).
    progress: Instant,
}

impl Default for Waiting {
    fn default() -> Self {
        Self { rotations: VecDeque::new(), running: 0, progress: Instant::now() }
    }
}

/// How long a thread's statements may all run without one ending before new rotations
/// stop joining their queue and are sent alone: a statement that hangs (a table locked, a
/// connection half-open) holds the rotations it took and those already waiting, not every
/// later one of the thread. A statement normally takes a few milliseconds.
const PATIENCE: Duration = Duration::from_secs(1);

impl PostgresRotations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Thread, Waiting>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `claim` together with the rotations waiting: the family if claimed, `None`
    /// if not (the transaction tells why).
    pub(super) async fn claim(self: &Arc<Self>, pool: &PgPool, claim: Claim<'static>) -> Claimed {
        let (settled, outcome) = oneshot::channel();
        let thread = std::thread::current().id();
        let start = {
            let mut queues = self.lock();
            let waiting = queues.entry(thread).or_default();
            if waiting.rotations.len() >= MOST_WAITING {
                // Those whose caller left do not count against the bound.
                waiting.rotations.retain(|(_, settled)| !settled.is_closed());
            }
            let stuck = waiting.running >= MOST_STATEMENTS && waiting.progress.elapsed() >= PATIENCE;
            if waiting.rotations.len() >= MOST_WAITING || stuck {
                Err(claim)
            } else {
                waiting.rotations.push_back((claim, settled));
                let start = waiting.running < MOST_STATEMENTS;
                waiting.running += usize::from(start);
                if start {
                    waiting.progress = Instant::now();
                }
                Ok(start)
            }
        };
        match start {
            Err(claim) => return claim_together(pool, &[&claim]).await.pop().expect("one outcome per claim"),
            Ok(true) => {
                let place = Place { queue: Arc::clone(self), thread, given_back: false };
                tokio::spawn(place.run(pool.clone()));
            }
            Ok(false) => {}
        }
        // The sender is dropped unsent only if its task went away (a panic, the runtime
        // stopping) with nothing left to run what waits.
        outcome.await.unwrap_or(Err(StorageError::Database(sqlx::Error::PoolClosed)))
    }
}

/// A statement place of one thread's queue, held by the task that runs its statements.
/// Given back when nothing waits; dropped without that (the task panicked, or its runtime
/// stopped), it is given back all the same, and if it was the thread's last place the
/// rotations still waiting learn that they failed instead of waiting for no task.
struct Place {
    queue: Arc<PostgresRotations>,
    thread: Thread,
    given_back: bool,
}

impl Place {
    /// Sends statements until nothing of the thread waits. A group is taken once a
    /// connection is, so that what arrives meanwhile goes too, and a pool that has none
    /// to give fails every waiting rotation at once, as a lone claim would have failed,
    /// rather than one group per `acquire_timeout`.
    async fn run(mut self, pool: PgPool) {
        while self.something_waits() {
            let connection = pool.acquire().await;
            let group = self.take(connection.is_err());
            let mut connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    for (_, settled) in group {
                        let _ = settled.send(Err(same_pool_error(&error).into()));
                    }
                    continue;
                }
            };
            if group.is_empty() {
                continue; // every waiting caller left meanwhile
            }
            let claims: Vec<&Claim<'_>> = group.iter().map(|(claim, _)| claim).collect();
            #[cfg(test)]
            self.queue.sizes.lock().unwrap_or_else(PoisonError::into_inner).push(claims.len());
            let outcomes = claim_together(&mut *connection, &claims).await;
            drop(connection);
            for ((_, settled), outcome) in group.into_iter().zip(outcomes) {
                let _ = settled.send(outcome); // the caller may have gone away
            }
        }
    }

    /// Whether a rotation of the thread waits; if none does, gives this place back.
    fn something_waits(&mut self) -> bool {
        let mut queues = self.queue.lock();
        let Some(waiting) = queues.get_mut(&self.thread) else {
            self.given_back = true;
            return false;
        };
        waiting.progress = Instant::now();
        // Those whose caller left are dropped from the front only: `take` skips the rest.
        while waiting.rotations.front().is_some_and(|(_, settled)| settled.is_closed()) {
            waiting.rotations.pop_front();
        }
        if !waiting.rotations.is_empty() {
            return true;
        }
        self.given_back = true;
        waiting.running = waiting.running.saturating_sub(1);
        if waiting.running == 0 {
            queues.remove(&self.thread); // nothing waits, and no statement runs
        }
        false
    }

    /// Takes up to [`MOST_TOGETHER`] waiting rotations whose callers still wait, the
    /// oldest first, or all of them with `all`. One token presented twice may go in one
    /// statement: only one of its two rows updates the token (PostgreSQL does not say
    /// which), the statement returns that one's place, and the other finds the token used
    /// in the transaction, as it would after any other statement.
    fn take(&self, all: bool) -> Vec<Waiter> {
        let mut queues = self.queue.lock();
        let Some(waiting) = queues.get_mut(&self.thread) else { return Vec::new() };
        waiting.progress = Instant::now();
        let most = if all { usize::MAX } else { MOST_TOGETHER };
        let mut group = Vec::new();
        while group.len() < most {
            match waiting.rotations.pop_front() {
                Some((_, settled)) if settled.is_closed() => {}
                Some(waiter) => group.push(waiter),
                None => break,
            }
        }
        group
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if self.given_back {
            return;
        }
        let mut queues = self.queue.lock();
        if let Some(waiting) = queues.get_mut(&self.thread) {
            waiting.running = waiting.running.saturating_sub(1);
            if waiting.running == 0 {
                // Dropping the senders tells each waiting rotation that it failed.
                queues.remove(&self.thread);
            }
        }
    }
}

/// A pool's failure to hand out a connection, once for each rotation that waited for it
/// (`sqlx::Error` is not `Clone`): a timeout is retried as a lone claim's is.
fn same_pool_error(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        _ => sqlx::Error::PoolClosed,
    }
}

/// Whether PostgreSQL refused a statement, so that none of it happened: an error of the
/// statement itself (a data exception, a constraint, a serialization failure or deadlock,
/// a syntax or access error, a program limit, a lock not available, a cancelled
/// statement). Not a fatal error such as an administrator's shutdown (57P01), after which
/// whether the statement committed is unknown.
fn refused(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else { return false };
    let Some(code) = error.code() else { return false };
    matches!(code.get(..2), Some("22" | "23" | "40" | "42" | "54")) || matches!(&*code, "55P03" | "57014")
}

/// Sends `claims` as one [`CLAIM_TOGETHER`] and settles each, in their order.
async fn claim_together<'c>(executor: impl sqlx::PgExecutor<'c>, claims: &[&Claim<'_>]) -> Vec<Claimed> {
    let column = |value: fn(&Claim<'_>) -> Option<String>| claims.iter().map(|c| value(c)).collect::<Vec<_>>();
    let times = |value: fn(&Claim<'_>) -> Option<DateTime<Utc>>| claims.iter().map(|c| value(c)).collect::<Vec<_>>();
    let sealed: Vec<Option<&[u8]>> = claims.iter().map(|c| c.sealed.as_ref().map(|(sealed, _)| &**sealed)).collect();
    // Planned afresh on every call (see `CLAIM_TOGETHER`): an unnamed statement.
    let rows: Result<Vec<ClaimedRow>, sqlx::Error> = sqlx::query_as(CLAIM_TOGETHER)
        .persistent(false)
        .bind(column(|c| Some(c.presented.as_str().to_owned())))
        .bind(times(|c| Some(c.now))) // truncated as stored by `Claim::of`
        .bind(column(|c| Some(c.successor.as_str().to_owned())))
        .bind(sealed)
        .bind(times(|c| c.sealed.as_ref().map(|(_, until)| until.0)))
        .bind(column(|c| Some(c.client_id.as_str().to_owned())))
        .bind(column(|c| c.requested_scope.as_ref().map(|scope| scope.iter().collect::<Vec<_>>().join(" "))))
        .bind(times(|c| Some(Timestamp::from(c.idle_expires_at).0)))
        .bind(column(|c| c.dpop_jkt.as_deref().map(str::to_owned)))
        .fetch_all(executor)
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // PostgreSQL refused the statement, so nothing of it happened: each rotation goes
        // on to the transaction, which claims it alone.
        Err(error) if claims.len() > 1 && refused(&error) => {
            tracing::warn!(%error, rotations = claims.len(), "a statement of refresh rotations failed; each goes alone");
            return claims.iter().map(|_| Ok(None)).collect();
        }
        // The connection failed (a group's is already acquired, so never the pool): whether
        // the statement committed is unknown, and the others get an error no rotation
        // retries, as the first does.
        Err(error) => {
            let others = || {
                let text = format!("the statement of several refresh rotations failed: {error}");
                StorageError::Database(sqlx::Error::Io(std::io::Error::other(text)))
            };
            let mut outcomes: Vec<Claimed> = claims[1..].iter().map(|_| Err(others())).collect();
            outcomes.insert(0, Err(error.into()));
            return outcomes;
        }
    };
    let mut outcomes: Vec<Claimed> = claims.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let place = usize::try_from(row.place).ok().and_then(|place| place.checked_sub(1));
        match place.and_then(|place| outcomes.get_mut(place)) {
            Some(slot @ Ok(None)) => *slot = TokenFamily::try_from(row.family).map(Some),
            Some(slot) => *slot = Err(StorageError::Corrupt("two rows for one refresh rotation".into())),
            None => tracing::error!("a row for no refresh rotation of the statement"),
        }
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::client::ClientId;
    use crate::domain::refresh::{FamilyId, Rotation};
    use crate::domain::secret::SecretDigest;
    use crate::domain::signals::{Reason, Revocation};
    use crate::storage::sql::refresh::together::tests::Presented;
    use crate::storage::sql::{tests as sql_tests, Backend, SqlStorage};
    use crate::storage::RefreshStore;
    use sqlx::Connection;

    fn pool(storage: &SqlStorage) -> &PgPool {
        let Backend::Postgres { kept, .. } = &storage.backend else { panic!("a PostgreSQL URL") };
        kept.pool()
    }

    fn sizes(storage: &SqlStorage) -> Vec<usize> {
        let Backend::Postgres { rotations, .. } = &storage.backend else { panic!("a PostgreSQL URL") };
        rotations.sizes.lock().unwrap().clone()
    }

    /// A client, a user, `fresh` families `f<n>` each with its live token `t<n>`, and the
    /// families `a` with its live token `a1` and `c`, whose `c0` was used an hour ago for
    /// `c1`.
    async fn seed(pool: &PgPool, client: &ClientId, fresh: usize) {
        sqlx::query(
            "INSERT INTO clients (id, name, token_endpoint_auth_method, grant_types, scopes, audiences, \
             redirect_uris, created_at, updated_at) VALUES ($1, 'c', 'none', '[]', '[]', '[]', '[]', now(), now())",
        )
        .bind(client.as_str())
        .execute(pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES ('u', 'u', 'x', now(), now())")
            .execute(pool)
            .await
            .unwrap();
        let mut tokens: Vec<(String, String, Option<&str>)> =
            (0..fresh).map(|n| (format!("t{n}"), format!("f{n}"), None)).collect();
        tokens.extend(
            [("a1", "a", None), ("c0", "c", Some("c1")), ("c1", "c", None)]
                .map(|(token, family, successor)| (token.to_owned(), family.to_owned(), successor)),
        );
        for (token, family, successor) in tokens {
            sqlx::query(
                "INSERT INTO token_families (id, client_id, user_id, sid, scope, auth_time, created_at, last_used_at, \
                 absolute_expires_at) VALUES ($1, $2, 'u', 's', 'offline_access', now() - interval '1 hour', \
                 now() - interval '1 hour', now(), now() + interval '1 day') ON CONFLICT DO NOTHING",
            )
            .bind(&family)
            .bind(client.as_str())
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at, used_at, \
                 successor_digest) VALUES ($1, $2, now() - interval '1 hour', now() + interval '1 day', \
                 CASE WHEN $3::text IS NULL THEN NULL ELSE now() - interval '1 hour' END, $3)",
            )
            .bind(SecretDigest::of(&token).as_str())
            .bind(&family)
            .bind(successor.map(|s| SecretDigest::of(s).as_str().to_owned()))
            .execute(pool)
            .await
            .unwrap();
        }
    }

    /// A fresh database seeded as [`seed`] does, shared; `None` where PostgreSQL is skipped.
    async fn seeded(fresh: usize) -> Option<(Arc<SqlStorage>, String, String, ClientId)> {
        let (storage, name, url) = sql_tests::fresh_postgres("tessera_rotations").await?;
        let client = ClientId::generate();
        seed(pool(&storage), &client, fresh).await;
        Some((Arc::new(storage), name, url, client))
    }

    fn queue(storage: &SqlStorage) -> &PostgresRotations {
        let Backend::Postgres { rotations, .. } = &storage.backend else { panic!("a PostgreSQL URL") };
        rotations
    }

    /// The rotations waiting for a statement, on every thread.
    fn waiting(storage: &SqlStorage) -> usize {
        queue(storage).lock().values().map(|waiting| waiting.rotations.len()).sum()
    }

    /// Rotates `presented` from a task of its own.
    fn rotate(
        storage: &Arc<SqlStorage>,
        client: &ClientId,
        presented: Presented,
    ) -> tokio::task::JoinHandle<Result<Rotation, StorageError>> {
        let (storage, client) = (Arc::clone(storage), client.clone());
        tokio::spawn(async move {
            let now = chrono::Utc::now();
            let reuse = Revocation::new(Reason::RefreshTokenReused, now, None);
            storage.rotate_refresh_token(&presented.request(&client, now, &reuse)).await
        })
    }

    /// Polls `done` every 5 ms for up to 5 s.
    async fn until(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..1000 {
            if done() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        done()
    }

    /// A connection holding `token_families` locked, so that every statement waits.
    async fn lock_families(url: &str) -> sqlx::PgConnection {
        let mut lock = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
        sqlx::query("LOCK TABLE token_families IN ACCESS EXCLUSIVE MODE").execute(&mut lock).await.unwrap();
        lock
    }

    /// Four rotations, one after another, each start a statement, which waits for a lock;
    /// the 43 that come next wait for those four, and go as statements of up to
    /// [`MOST_TOGETHER`] once the lock goes. Each settles as it would have alone: every
    /// fresh token rotates with its own family and its own successor stored, of one token
    /// presented twice one rotates and the other gets its successor back, and a used token
    /// is reuse. Nothing is left of the queue after.
    #[tokio::test]
    async fn rotations_wait_for_the_statements_running_and_go_together() {
        let fresh = 44;
        let Some((storage, name, url, client)) = seeded(fresh).await else { return };
        let lock = lock_families(&url).await;

        let mut rotations = Vec::new();
        for n in 0..MOST_STATEMENTS {
            rotations.push(rotate(&storage, &client, Presented::of(&format!("t{n}"), &format!("s{n}"))));
            assert!(until(|| sizes(&storage).len() == n + 1).await, "t{n} starts a statement of its own");
        }
        for n in MOST_STATEMENTS..fresh {
            rotations.push(rotate(&storage, &client, Presented::of(&format!("t{n}"), &format!("s{n}"))));
        }
        for presented in [Presented::of("a1", "a2"), Presented::of("a1", "a2'"), Presented::of("c0", "c1'")] {
            rotations.push(rotate(&storage, &client, presented));
        }
        let count = rotations.len();
        let behind = count - MOST_STATEMENTS;
        assert!(until(|| waiting(&storage) == behind).await, "{behind} wait: {}", waiting(&storage));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(sizes(&storage), [1; MOST_STATEMENTS], "no fifth statement starts while four run");
        assert_eq!(waiting(&storage), behind);

        drop(lock); // closing the connection ends its transaction
        let mut outcomes = Vec::new();
        for rotation in rotations {
            outcomes.push(rotation.await.unwrap().unwrap());
        }
        let taken = sizes(&storage);
        assert_eq!(taken.iter().sum::<usize>(), count, "each rotation went in one statement: {taken:?}");
        assert!(taken.iter().all(|&size| size <= MOST_TOGETHER), "{taken:?}");
        assert!(taken[MOST_STATEMENTS..].iter().any(|&size| size > 1), "the waiting ones went together: {taken:?}");

        for (n, outcome) in outcomes[..fresh].iter().enumerate() {
            let Rotation::Rotated(family) = outcome else { panic!("t{n}: {outcome:?}") };
            assert_eq!(family.id, FamilyId::parse(&format!("f{n}")).unwrap(), "t{n} settles with its own family");
            let stored = storage.find_refresh_token(&SecretDigest::of(&format!("s{n}"))).await.unwrap();
            let (successor, family) = stored.unwrap_or_else(|| panic!("s{n} stored"));
            assert!(successor.used_at.is_none(), "s{n} unused");
            assert_eq!(family.id.as_str(), format!("f{n}"));
        }
        let sealed = match (&outcomes[fresh], &outcomes[fresh + 1]) {
            (Rotation::Rotated(_), Rotation::Retried { successor_sealed, .. }) => (successor_sealed, "sealed a2"),
            (Rotation::Retried { successor_sealed, .. }, Rotation::Rotated(_)) => (successor_sealed, "sealed a2'"),
            other => panic!("a1 twice: one rotation and one retry, not {other:?}"),
        };
        assert_eq!(sealed.0, sealed.1.as_bytes(), "the retry gets the rotation's successor");
        assert!(matches!(outcomes[fresh + 2], Rotation::Reused(_)), "c0: {:?}", outcomes[fresh + 2]);
        let c = storage.find_family(&FamilyId::parse("c").unwrap()).await.unwrap().unwrap();
        assert!(c.revoked_at.is_some(), "reuse revokes the family");
        assert!(until(|| queue(&storage).lock().is_empty()).await, "every place given back, nothing waits");

        sql_tests::drop_postgres(Arc::into_inner(storage).expect("the rotations are done"), &name).await;
    }

    /// A token whose row another transaction holds is skipped by the statement, and waits
    /// alone in the transaction: the other rotations of its statement do not wait for it.
    #[tokio::test]
    async fn a_locked_token_does_not_hold_up_its_statement() {
        let Some((storage, name, url, client)) = seeded(4).await else { return };
        let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT 1 FROM refresh_tokens WHERE token_digest = $1 FOR UPDATE")
            .bind(SecretDigest::of("t0").as_str())
            .execute(&mut holder)
            .await
            .unwrap();

        // Four statements wait for the families, so that the four tokens go in one next.
        let families = lock_families(&url).await;
        let mut first = Vec::new();
        for n in 0..MOST_STATEMENTS {
            first.push(rotate(&storage, &client, Presented::of(&format!("x{n}"), &format!("y{n}"))));
            assert!(until(|| sizes(&storage).len() == n + 1).await);
        }
        let others: Vec<_> =
            (0..4).map(|n| rotate(&storage, &client, Presented::of(&format!("t{n}"), &format!("s{n}")))).collect();
        assert!(until(|| waiting(&storage) == 4).await);
        drop(families);
        for unknown in first {
            assert!(matches!(unknown.await.unwrap(), Ok(Rotation::Invalid)), "no such token");
        }
        let mut others = others.into_iter();
        let locked = others.next().unwrap();
        for (n, rotation) in others.enumerate() {
            let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), rotation).await;
            let outcome = outcome.unwrap_or_else(|_| panic!("t{} waited for t0's lock", n + 1));
            assert!(matches!(outcome.unwrap(), Ok(Rotation::Rotated(_))));
        }
        assert!(sizes(&storage)[MOST_STATEMENTS..].contains(&4), "the four went in one: {:?}", sizes(&storage));
        assert!(!locked.is_finished(), "t0 waits for its row");
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        assert!(matches!(locked.await.unwrap(), Ok(Rotation::Rotated(_))), "then rotates alone");

        holder.close().await.unwrap();
        sql_tests::drop_postgres(Arc::into_inner(storage).expect("the rotations are done"), &name).await;
    }

    /// A statement PostgreSQL refuses (here: two rotations naming one successor, against
    /// the primary key) changed nothing, and each of its rotations goes on alone: one
    /// rotates, the other fails, and its token stays unused.
    #[tokio::test]
    async fn a_refused_statement_sends_each_rotation_alone() {
        let Some((storage, name, _, client)) = seeded(2).await else { return };

        let now = chrono::Utc::now();
        let reuse = Revocation::new(Reason::RefreshTokenReused, now, None);
        let presented = [Presented::of("t0", "same"), Presented::of("t1", "same")];
        let requests: Vec<_> = presented.iter().map(|p| p.request(&client, now, &reuse)).collect();
        // One task: both wait before the first statement's task runs and takes them.
        let outcomes = futures_util::future::join_all(requests.iter().map(|r| storage.rotate_refresh_token(r))).await;
        assert_eq!(sizes(&storage), [2], "the two went in one statement");

        let rotated: Vec<usize> = (0..2).filter(|&n| matches!(outcomes[n], Ok(Rotation::Rotated(_)))).collect();
        assert_eq!(rotated.len(), 1, "one rotates alone: {outcomes:?}");
        let other = 1 - rotated[0];
        assert!(outcomes[other].is_err(), "the other fails alone: {:?}", outcomes[other]);
        let (token, _) = storage.find_refresh_token(&presented[other].token).await.unwrap().unwrap();
        assert!(token.used_at.is_none(), "and its token is as it was");
        drop(requests);
        sql_tests::drop_postgres(Arc::into_inner(storage).expect("one owner"), &name).await;
    }
}
