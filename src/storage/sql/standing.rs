//! Access-token standing checks, several to one statement.
//!
//! Every introspection, `/userinfo` call and Tessera API call asks whether the token's
//! `jti`, family, client, user and session still stand (`access_token_standing`). On
//! PostgreSQL that statement is a handful of index lookups, but each execution costs
//! PostgreSQL 90–110 µs of CPU on the 2-core machine and Tessera 30–60 µs more for the
//! round trip: more than the signature check, and half of an introspection's CPU
//! (bench/README.md finding 26). Here checks that arrive while one is running wait, and
//! the next statement answers all of them at once (up to [`MOST_TOGETHER`]) from
//! arrays, so under load the statement's fixed cost is shared; a lone
//! check is answered at once, as before.
//!
//! No task of its own: the first check leads, runs one statement with what waits, and
//! hands the lead to the first check still waiting, which runs the next. Each leader runs
//! one statement, so none is kept answering for others. A leader whose caller goes away
//! (its future dropped) hands the lead on as well; the checks of the statement it was
//! running then run alone, as does every check of a statement that failed. A check waits
//! at most [`PATIENCE`] for its answer, and none queues behind a statement running longer
//! than that, so one statement that hangs does not hold every check of the process; and
//! at most [`MOST_WAITING`] wait, so none is more than a few statements from its answer.
//!
//! Sound because a check waits only for a statement that has not started: one that
//! arrives after a revocation committed is answered by a statement that starts later
//! still, and sees it (on SQLite too: each statement reads the newest committed WAL
//! state when it starts).
//!
//! SQLite shares statements the same way, for another reason: there a lookup costs under
//! a microsecond and the cost is the hand-off to and from the reader connection's thread
//! (finding 26), paid once per statement instead of once per check.

use super::grants::standing_query;
use super::kept::Kept;
use crate::storage::{StorageError, TokenStanding};
use sqlx::{Postgres, Sqlite};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The most checks one statement answers.
const MOST_TOGETHER: usize = 64;

/// The most checks waiting; past it a check runs alone. Every waiting check is a request
/// in flight, so connection limits bound it too; this bounds it whatever they are, and
/// keeps any check within a few statements of its answer.
const MOST_WAITING: usize = 4 * MOST_TOGETHER;

/// How long a check waits for a statement to answer it before it runs alone, and past
/// which a running statement takes no more waiting checks: a statement that hangs (a
/// connection half-open after a failover, a table locked) costs the checks behind it at
/// most this, instead of holding every check of the process. A statement normally takes
/// well under a millisecond.
const PATIENCE: Duration = Duration::from_secs(1);

/// One statement for any number of checks and any shape of token. How it is written is
/// what keeps its plan fixed and cheap (measured with `EXPLAIN` and a lone check's
/// latency, finding 26):
/// - The optional members are NULL in their arrays, tested per row (`t.family IS NULL`),
///   not per parameter: a `$n IS NULL` branch made PostgreSQL plan the statement afresh on
///   every call (finding 15).
/// - `generate_subscripts`, not `unnest`: `unnest`'s row estimate reads the array in a
///   custom plan (1 row) but not in the generic one (10 rows), so the custom plan always
///   looked cheaper and PostgreSQL planned every call (a lone check took 0.4 ms more).
///   `generate_subscripts` estimates the same in both, and the generic plan is kept.
/// - Scalar subqueries on the keys, not `EXISTS`: PostgreSQL may answer an `EXISTS` by
///   hashing the whole table (a "hashed SubPlan") when it expects many rows, as it does
///   here; a scalar subquery is always one index lookup per check. Each key is unique, so
///   each returns one row or none.
const TOGETHER: &str = "SELECT t.place, \
       (SELECT r.jti FROM revoked_access_tokens r WHERE r.jti = t.jti) IS NULL \
       AND (SELECT c.disabled_at IS NULL FROM clients c WHERE c.id = t.client) IS TRUE \
       AND (t.family IS NULL OR (SELECT f.revoked_at IS NULL FROM token_families f WHERE f.id = t.family) IS TRUE) \
       AND (t.usr IS NULL OR (SELECT u.disabled_at IS NULL FROM users u WHERE u.id = t.usr) IS TRUE) \
       AND (t.sid IS NULL OR (SELECT true FROM sessions s WHERE s.sid = t.sid) IS TRUE) \
     FROM (SELECT i AS place, ($1::text[])[i] AS jti, ($2::text[])[i] AS client, ($3::text[])[i] AS family, \
             ($4::text[])[i] AS usr, ($5::text[])[i] AS sid \
           FROM generate_subscripts($1::text[], 1) AS i) AS t";

/// SQLite's statement for any number of checks: the checks are one JSON array of
/// `[jti, client, family, user, sid]` arrays (`null` for what a token does not name), read
/// by `json_each`, whose `key` is the check's place from 0. Each lookup is one on a key,
/// as in [`TOGETHER`] and the per-shape statements of `grants.rs`.
const TOGETHER_SQLITE: &str = "SELECT t.key, \
       (SELECT r.jti FROM revoked_access_tokens r WHERE r.jti = t.value ->> 0) IS NULL \
       AND (SELECT c.disabled_at IS NULL FROM clients c WHERE c.id = t.value ->> 1) IS TRUE \
       AND (t.value ->> 2 IS NULL \
            OR (SELECT f.revoked_at IS NULL FROM token_families f WHERE f.id = t.value ->> 2) IS TRUE) \
       AND (t.value ->> 3 IS NULL OR (SELECT u.disabled_at IS NULL FROM users u WHERE u.id = t.value ->> 3) IS TRUE) \
       AND (t.value ->> 4 IS NULL OR (SELECT 1 FROM sessions s WHERE s.sid = t.value ->> 4) IS NOT NULL) \
     FROM json_each($1) AS t";

/// The pool a queue's statements go to: a queue serves one backend.
#[derive(Clone, Copy)]
pub(in crate::storage::sql) enum Reader<'a> {
    Postgres(&'a Kept<Postgres>),
    Sqlite(&'a Kept<Sqlite>),
}

/// A check as it waits: what it asks, owned.
struct Check {
    jti: String,
    client: String,
    family: Option<String>,
    user: Option<String>,
    sid: Option<String>,
}

impl From<&TokenStanding<'_>> for Check {
    fn from(token: &TokenStanding<'_>) -> Self {
        Self {
            jti: token.jti.to_owned(),
            client: token.client.as_str().to_owned(),
            family: token.family.map(|family| family.as_str().to_owned()),
            user: token.user.map(|user| user.as_str().to_owned()),
            sid: token.sid.map(str::to_owned),
        }
    }
}

/// What a waiting check learns.
enum Reply {
    Standing(bool),
    /// Run the next statement, for yourself and what waits.
    Lead,
    /// Your statement failed or its leader went away: run alone.
    Alone,
}

type Waiter = (Check, oneshot::Sender<Reply>);

/// What a check does on arrival.
enum Turn<'a> {
    Lead(Leading<'a>),
    /// The queue is full, or its statement has run past [`PATIENCE`].
    Alone,
    Wait(Follower<'a>),
}

pub(in crate::storage::sql) struct StandingQueue {
    waiting: Mutex<Waiting>,
    /// [`PATIENCE`]; shorter in the tests.
    patience: Duration,
    /// The size of every statement sent, for the tests to see that checks go together.
    #[cfg(test)]
    sizes: Mutex<Vec<usize>>,
}

#[derive(Default)]
struct Waiting {
    checks: VecDeque<Waiter>,
    /// A check leads: it runs a statement, or the lead is on its way to one.
    led: bool,
    /// When the running statement took its checks; `None` while the lead is on its way.
    running_since: Option<Instant>,
}

impl Default for StandingQueue {
    fn default() -> Self {
        Self {
            waiting: Mutex::default(),
            patience: PATIENCE,
            #[cfg(test)]
            sizes: Mutex::default(),
        }
    }
}

impl StandingQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `token` still stands, answered together with the checks waiting.
    pub(super) async fn check(&self, kept: Reader<'_>, token: &TokenStanding<'_>) -> Result<bool, StorageError> {
        let turn = {
            let mut waiting = self.lock();
            let stuck = waiting.running_since.is_some_and(|since| since.elapsed() >= self.patience);
            if waiting.checks.len() >= MOST_WAITING {
                // Those whose caller left, or stopped waiting, do not count against the bound.
                waiting.checks.retain(|(_, reply)| !reply.is_closed());
            }
            if !waiting.led {
                waiting.led = true;
                Turn::Lead(Leading(self))
            } else if waiting.checks.len() >= MOST_WAITING || stuck {
                Turn::Alone
            } else {
                let (reply, answer) = oneshot::channel();
                waiting.checks.push_back((Check::from(token), reply));
                Turn::Wait(Follower { queue: self, answer: Some(answer) })
            }
        };
        let leading = match turn {
            Turn::Lead(leading) => leading,
            Turn::Alone => return self.alone(kept, token).await,
            Turn::Wait(mut follower) => match tokio::time::timeout(self.patience, follower.wait()).await {
                Ok(Some(Reply::Standing(standing))) => return Ok(standing),
                // The lead is this check's from here: `Leading` is made before any await.
                Ok(Some(Reply::Lead)) => Leading(self),
                // Dropping `follower` first passes on a lead sent meanwhile.
                Ok(Some(Reply::Alone) | None) | Err(_) => {
                    drop(follower);
                    return self.alone(kept, token).await;
                }
            },
        };
        self.lead(kept, Check::from(token), leading).await
    }

    /// `token` in a statement of its own.
    async fn alone(&self, kept: Reader<'_>, token: &TokenStanding<'_>) -> Result<bool, StorageError> {
        Ok(self.run(kept, vec![Check::from(token)]).await?[0])
    }

    /// Runs one statement for `own` and up to [`MOST_TOGETHER`] − 1 waiting checks, then
    /// hands the lead on (also if this future is dropped part-way: `_leading`).
    async fn lead(&self, kept: Reader<'_>, own: Check, _leading: Leading<'_>) -> Result<bool, StorageError> {
        let together: Vec<Waiter> = {
            let mut waiting = self.lock();
            waiting.running_since = Some(Instant::now());
            let mut together = Vec::new();
            while together.len() + 1 < MOST_TOGETHER {
                let Some(waiter) = waiting.checks.pop_front() else { break };
                if !waiter.1.is_closed() {
                    together.push(waiter);
                }
            }
            together
        };
        let (checks, replies): (Vec<Check>, Vec<_>) = together.into_iter().unzip();
        let mut all = Vec::with_capacity(checks.len() + 1);
        all.push(own);
        all.extend(checks);
        match self.run(kept, all).await {
            Ok(standings) => {
                for (reply, standing) in replies.into_iter().zip(&standings[1..]) {
                    let _ = reply.send(Reply::Standing(*standing)); // the caller may have gone away
                }
                Ok(standings[0])
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Reply::Alone);
                }
                Err(error)
            }
        }
    }

    /// One statement for `checks`: their standings, in order.
    async fn run(&self, kept: Reader<'_>, checks: Vec<Check>) -> Result<Vec<bool>, StorageError> {
        #[cfg(test)]
        self.sizes.lock().unwrap_or_else(PoisonError::into_inner).push(checks.len());
        if let [check] = checks.as_slice() {
            return Ok(vec![lone(kept, check).await?]);
        }
        let count = checks.len();
        let rows: Vec<(i64, bool)> = match kept {
            Reader::Postgres(kept) => together_postgres(kept, checks).await?,
            Reader::Sqlite(kept) => together_sqlite(kept, checks).await?,
        };
        // One row per check, whatever the order; `place` counts from 0.
        let mut standings = vec![None; count];
        for (place, standing) in rows {
            match usize::try_from(place).ok().and_then(|place| standings.get_mut(place)) {
                Some(slot @ None) => *slot = Some(standing),
                _ => return Err(StorageError::Corrupt("the standing statement answered a check twice or none".into())),
            }
        }
        standings
            .into_iter()
            .map(|standing| {
                standing.ok_or_else(|| StorageError::Corrupt("the standing statement left a check out".into()))
            })
            .collect()
    }

    /// Gives the lead to the first waiting check whose caller still waits, or marks that
    /// none leads.
    fn hand_on(&self) {
        let mut waiting = self.lock();
        waiting.running_since = None;
        while let Some((check, reply)) = waiting.checks.pop_front() {
            // The new leader runs its own check itself: the queued copy goes.
            drop(check);
            if reply.send(Reply::Lead).is_ok() {
                return;
            } // else its caller went away
        }
        waiting.led = false;
    }

    #[cfg(test)]
    pub(super) fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// [`TOGETHER`] for `checks` (at least two): each one's place, from 0, and standing.
async fn together_postgres(kept: &Kept<Postgres>, checks: Vec<Check>) -> Result<Vec<(i64, bool)>, StorageError> {
    let count = checks.len();
    let mut jtis = Vec::with_capacity(count);
    let mut clients = Vec::with_capacity(count);
    let mut families = Vec::with_capacity(count);
    let mut users = Vec::with_capacity(count);
    let mut sids = Vec::with_capacity(count);
    for check in checks {
        jtis.push(check.jti);
        clients.push(check.client);
        families.push(check.family);
        users.push(check.user);
        sids.push(check.sid);
    }
    let rows: Vec<(i32, bool)> = on_kept!(kept, pool => {
        Ok(sqlx::query_as(TOGETHER)
            .bind(&jtis).bind(&clients).bind(&families).bind(&users).bind(&sids)
            .fetch_all(pool)
            .await?)
    })?;
    // An array subscript counts from 1.
    Ok(rows.into_iter().map(|(subscript, standing)| (i64::from(subscript) - 1, standing)).collect())
}

/// [`TOGETHER_SQLITE`] for `checks` (at least two): each one's place, from 0, and standing.
async fn together_sqlite(kept: &Kept<Sqlite>, checks: Vec<Check>) -> Result<Vec<(i64, bool)>, StorageError> {
    let array: Vec<[Option<String>; 5]> = checks
        .into_iter()
        .map(|check| [Some(check.jti), Some(check.client), check.family, check.user, check.sid])
        .collect();
    let json = serde_json::to_string(&array).map_err(|error| StorageError::Corrupt(error.to_string()))?;
    on_kept!(kept, pool => Ok(sqlx::query_as(TOGETHER_SQLITE).bind(&json).fetch_all(pool).await?))
}

/// One check alone, in the statement for its shape: cheaper than [`TOGETHER`] for one
/// (a lone introspection's median latency was 0.05–0.1 ms lower), which is what an idle
/// server sends.
async fn lone(kept: Reader<'_>, check: &Check) -> Result<bool, StorageError> {
    // A macro, not a closure: the query's type differs per backend.
    macro_rules! query {
        () => {
            standing_query(
                &check.jti,
                &check.client,
                check.family.as_deref(),
                check.user.as_deref(),
                check.sid.as_deref(),
            )
        };
    }
    match kept {
        Reader::Postgres(kept) => on_kept!(kept, pool => Ok(query!().fetch_one(pool).await?)),
        Reader::Sqlite(kept) => on_kept!(kept, pool => Ok(query!().fetch_one(pool).await?)),
    }
}

/// Held while leading: hands the lead on when the statement is done or the leader's future
/// is dropped.
struct Leading<'a>(&'a StandingQueue);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.hand_on();
    }
}

/// A check waiting for its reply. Dropped while waiting (its caller went away), it closes
/// its end first, so no lead can be sent to it afterwards, and passes on a lead that was
/// sent before: otherwise no check would lead again.
struct Follower<'a> {
    queue: &'a StandingQueue,
    answer: Option<oneshot::Receiver<Reply>>,
}

impl Follower<'_> {
    /// The reply, or `None` if its sender went without one.
    async fn wait(&mut self) -> Option<Reply> {
        let answer = self.answer.as_mut().expect("waited for once");
        let reply = answer.await.ok();
        self.answer = None;
        reply
    }
}

impl Drop for Follower<'_> {
    fn drop(&mut self) {
        if let Some(mut answer) = self.answer.take() {
            answer.close();
            if let Ok(Reply::Lead) = answer.try_recv() {
                self.queue.hand_on();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::domain::client::ClientId;
    use crate::storage::sql::{tests as sql_tests, Backend, SqlStorage};
    use crate::storage::GrantStore;
    use sqlx::Connection;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    /// Polls `future` once, as the runtime would.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
    }

    /// A fresh, migrated PostgreSQL database with one client and one revoked jti; `None`
    /// where the tests skip PostgreSQL.
    async fn database() -> Option<(SqlStorage, String, ClientId, String)> {
        let (storage, name, raw_url) = sql_tests::fresh_postgres("tessera_standing").await?;
        let client = ClientId::generate();
        let Backend::Postgres { kept, .. } = &storage.backend else { panic!("a PostgreSQL URL") };
        sqlx::query(
            "INSERT INTO clients (id, name, token_endpoint_auth_method, grant_types, scopes, audiences, \
             redirect_uris, created_at, updated_at) VALUES ($1, 'c', 'none', '[]', '[]', '[]', '[]', now(), now())",
        )
        .bind(client.as_str())
        .execute(kept.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('revoked', now() + interval '1 hour')",
        )
        .execute(kept.pool())
        .await
        .unwrap();
        Some((storage, name, client, raw_url))
    }

    async fn drop_database(storage: SqlStorage, name: &str) {
        sql_tests::drop_postgres(storage, name).await;
    }

    /// Holds `clients` locked from another connection until the transaction ends, so that
    /// a check's statement waits in PostgreSQL: the tests then know it is in flight, which
    /// a first poll alone does not promise (a fast answer can complete it).
    async fn lock_clients(url: &str) -> sqlx::PgConnection {
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
        sqlx::query("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE").execute(&mut connection).await.unwrap();
        connection
    }

    async fn unlock(mut connection: sqlx::PgConnection) {
        sqlx::query("ROLLBACK").execute(&mut connection).await.unwrap();
        connection.close().await.unwrap();
    }

    fn queue(storage: &SqlStorage) -> (Reader<'_>, &StandingQueue) {
        match &storage.backend {
            Backend::Postgres { kept, standing, .. } => (Reader::Postgres(kept), standing),
            Backend::Sqlite { kept, standing, .. } => (Reader::Sqlite(kept), standing),
        }
    }

    /// A fresh, migrated SQLite database with one client and one revoked jti, as
    /// [`database`]; the directory holds the file.
    async fn sqlite_database() -> (SqlStorage, tempfile::TempDir, ClientId) {
        let dir = tempfile::tempdir().unwrap();
        let raw_url = format!("sqlite://{}/standing.db?mode=rwc", dir.path().display());
        let storage =
            SqlStorage::connect(&DatabaseUrl::parse(&raw_url).unwrap(), &sql_tests::settings(8)).await.unwrap();
        storage.migrate().await.unwrap();
        let client = ClientId::generate();
        let mut connection = sqlx::SqliteConnection::connect(&raw_url).await.unwrap();
        sqlx::query(
            "INSERT INTO clients (id, name, token_endpoint_auth_method, grant_types, scopes, audiences, \
             redirect_uris, created_at, updated_at) VALUES ($1, 'c', 'none', '[]', '[]', '[]', '[]', 0, 0)",
        )
        .bind(client.as_str())
        .execute(&mut connection)
        .await
        .unwrap();
        sqlx::query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('revoked', 4102444800000)")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        (storage, dir, client)
    }

    /// Hundreds of checks at once, of every answer: they share statements of up to
    /// [`MOST_TOGETHER`], and each gets its own answer (a mix-up of places would give some
    /// the wrong one).
    #[tokio::test]
    async fn concurrent_checks_share_statements_and_each_gets_its_own_answer() {
        let Some((storage, name, client, _)) = database().await else { return };
        concurrent_checks(&storage, &client).await;
        drop_database(storage, &name).await;
    }

    /// The same on SQLite, whose statement reads the checks from JSON.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_share_sqlite_statements_and_each_gets_its_own_answer() {
        let (storage, _dir, client) = sqlite_database().await;
        concurrent_checks(&storage, &client).await;
        storage.close().await;
    }

    async fn concurrent_checks(storage: &SqlStorage, client: &ClientId) {
        let client = client.clone();
        let stranger = ClientId::generate();
        let jtis: Vec<String> = (0..200).map(|i| if i % 3 == 0 { "revoked".into() } else { format!("j{i}") }).collect();
        let checks = jtis.iter().enumerate().map(|(i, jti)| {
            let (storage, client, stranger) = (&storage, &client, &stranger);
            async move {
                let owner = if i % 4 == 1 { stranger } else { client };
                let token = TokenStanding { jti, family: None, client: owner, user: None, sid: None };
                (i, storage.access_token_standing(&token).await.unwrap())
            }
        });
        for (i, standing) in futures_util::future::join_all(checks).await {
            assert_eq!(standing, i % 3 != 0 && i % 4 != 1, "check {i}");
        }
        let sizes = queue(storage).1.sizes();
        assert_eq!(sizes.iter().sum::<usize>(), 200, "every check answered once: {sizes:?}");
        assert!(sizes.contains(&MOST_TOGETHER), "checks went together, as many as allowed: {sizes:?}");
        assert!(sizes.iter().all(|&size| size <= MOST_TOGETHER), "{sizes:?}");
    }

    /// A leader whose caller goes away mid-statement leaves no one stranded: the checks
    /// of its statement run alone, and the next check leads.
    #[tokio::test]
    async fn a_leader_that_goes_away_strands_no_one() {
        let Some((storage, name, client, url)) = database().await else { return };
        let (kept, standing) = queue(&storage);
        let token = TokenStanding { jti: "j", family: None, client: &client, user: None, sid: None };
        let wait = std::time::Duration::from_secs(10);
        let lock = lock_clients(&url).await;
        let mut first = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut first).await.is_pending(), "it leads, alone, and waits for the lock");
        let mut second = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut second).await.is_pending());
        let mut others = Box::pin(futures_util::future::join_all((0..7).map(|_| standing.check(kept, &token))));
        assert!(poll_once(&mut others).await.is_pending());
        assert_eq!(standing.lock().checks.len(), 8, "they wait for the first statement to end");
        unlock(lock).await;
        assert!(tokio::time::timeout(wait, &mut first).await.expect("answered").unwrap());
        // The lead went to `second`: polled once, it takes the seven into its statement,
        // which waits for the lock, and goes away.
        let lock = lock_clients(&url).await;
        assert!(poll_once(&mut second).await.is_pending());
        assert!(standing.lock().checks.is_empty());
        drop(second);
        unlock(lock).await;
        let answers = tokio::time::timeout(wait, others).await.expect("not stranded");
        assert!(answers.into_iter().all(|answer| answer.unwrap()));
        assert_eq!(standing.sizes(), [1, 8, 1, 1, 1, 1, 1, 1, 1], "the seven ran alone");
        assert!(!standing.lock().led, "no one leads once all are answered");
        let later = tokio::time::timeout(wait, standing.check(kept, &token)).await;
        assert!(later.expect("the next check leads").unwrap());
        drop(first);
        drop_database(storage, &name).await;
    }

    /// A statement that hangs (here: waiting for a lock) holds no check past its patience:
    /// the one waiting for it runs alone after it, and one arriving later runs alone at once.
    #[tokio::test]
    async fn a_hung_statement_holds_no_check_past_its_patience() {
        let Some((mut storage, name, client, url)) = database().await else { return };
        let Backend::Postgres { standing, .. } = &mut storage.backend else { panic!("a PostgreSQL URL") };
        standing.patience = std::time::Duration::from_millis(200);
        let (kept, standing) = queue(&storage);
        let token = TokenStanding { jti: "j", family: None, client: &client, user: None, sid: None };
        let lock = lock_clients(&url).await;
        let mut leader = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut leader).await.is_pending());
        let mut waiting = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut waiting).await.is_pending());
        assert_eq!(standing.lock().checks.len(), 1);
        // Past its patience it leaves the queue and sends its own statement (which waits
        // for the lock too).
        let still = tokio::time::timeout(std::time::Duration::from_millis(600), &mut waiting).await;
        assert!(still.is_err(), "the lock is still held");
        let live =
            |standing: &StandingQueue| standing.lock().checks.iter().filter(|(_, reply)| !reply.is_closed()).count();
        assert_eq!(live(standing), 0, "it stopped waiting");
        assert_eq!(standing.sizes(), [1, 1], "the leader's statement and its own");
        let mut later = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut later).await.is_pending());
        assert_eq!(live(standing), 0, "it did not queue behind the hung statement");
        assert_eq!(standing.sizes(), [1, 1, 1]);
        unlock(lock).await;
        let wait = std::time::Duration::from_secs(10);
        for check in [leader, waiting, later] {
            assert!(tokio::time::timeout(wait, check).await.expect("answered once the lock goes").unwrap());
        }
        assert!(!standing.lock().led);
        drop_database(storage, &name).await;
    }

    /// A follower handed the lead and then dropped before it ran passes the lead on.
    #[tokio::test]
    async fn a_follower_dropped_with_the_lead_passes_it_on() {
        let Some((storage, name, client, url)) = database().await else { return };
        let (kept, standing) = queue(&storage);
        let token = TokenStanding { jti: "j", family: None, client: &client, user: None, sid: None };
        let wait = std::time::Duration::from_secs(10);
        let lock = lock_clients(&url).await;
        let mut leader = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut leader).await.is_pending());
        let mut first = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut first).await.is_pending());
        let mut second = Box::pin(standing.check(kept, &token));
        assert!(poll_once(&mut second).await.is_pending());
        // Both queued after the leader took what waited: its statement is its own.
        assert_eq!(standing.lock().checks.len(), 2);
        unlock(lock).await;
        assert!(tokio::time::timeout(wait, &mut leader).await.expect("answered").unwrap());
        // The leader handed the lead to `first`, which is dropped without running.
        assert_eq!(standing.lock().checks.len(), 1, "the lead went to the first");
        drop(first);
        let second = tokio::time::timeout(wait, second).await;
        assert!(second.expect("the lead reached the second").unwrap());
        assert!(!standing.lock().led);
        assert_eq!(standing.sizes(), [1, 1], "the leader's statement and the second's");
        drop(leader);
        drop_database(storage, &name).await;
    }
}
