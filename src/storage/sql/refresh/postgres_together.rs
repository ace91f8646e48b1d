//! PostgreSQL refresh rotations, several to one statement.
//!
//! A rotation's claim ([`CLAIM_TOGETHER`]) costs PostgreSQL about 280 µs of CPU on the
//! 2-core machine, most of it the executor's start and end of a statement over three
//! tables and the commit's WAL flush, more than the RSA signature the rotation pays for
//! (bench/README.md finding 18). Here rotations that arrive while [`MOST_STATEMENTS`]
//! statements are running wait, and the next statement claims up to [`MOST_TOGETHER`] of
//! them at once from arrays, so under load that fixed cost is shared; with a statement
//! place free, a rotation is sent at once, alone, as before. (bench/README.md finding 30
//! has the numbers.)
//!
//! Each statement runs in a task of its own, not in a caller's future: a claim that
//! committed must reach its caller's settlement even when another caller of the group
//! went away, and a statement is never abandoned half-sent because one caller did.
//! Rotations whose caller went away before their statement was taken are dropped unrun
//! (the token stays as it was).
//!
//! Sound because the statement is the one-rotation claim over several rows: each row is
//! claimed only where it is unused (concurrent statements claiming one token serialize on
//! its row lock, and the later one re-checks `used_at IS NULL`, READ COMMITTED), and one
//! statement never names a token twice (a second presentation of it waits for the next
//! statement), so each presentation's claim is exactly its own. What a statement does not
//! claim, its caller carries on to the transaction, as a lone claim that found nothing.
//!
//! Failures: PostgreSQL runs the statement atomically, so one that PostgreSQL refused (an
//! error with a SQLSTATE: a constraint, a serialization failure) changed nothing, and each
//! of its rotations goes on to the transaction, which claims it alone. Any other failure
//! (the connection lost: whether it committed is unknown) fails each of them with that
//! error, as a lone claim's would.

use super::{Claim, FamilyRow};
use crate::domain::refresh::TokenFamily;
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// The most rotations one statement claims.
const MOST_TOGETHER: usize = 16;

/// The most statements running at once. Below it a rotation is sent at once; at it,
/// rotations wait and go together. Each statement also waits for its commit's WAL flush,
/// so a few run at once to keep the cores busy meanwhile: on the 2-core machine 2, 3, 4
/// and 8 all cut PostgreSQL's CPU per rotation by half, and 4 ran the most rotations
/// (finding 30).
const MOST_STATEMENTS: usize = 4;

/// The most rotations waiting; past it a rotation is sent alone. Every waiting rotation is
/// a request in flight, so connection limits bound it too; this bounds it whatever they
/// are.
const MOST_WAITING: usize = 4096;

/// The claim, for any number of rotations (PostgreSQL only: SQLite has no data-modifying
/// CTEs). Its WHERE clause is [`crate::domain::refresh::decide`] restricted to the one case it calls
/// Rotate (change it, `together::CLAIM` and `decide` together;
/// the `refresh_tokens` API tests cover each case on PostgreSQL through it), with every presentation's
/// values read from arrays, one row each. It claims only an unused, unexpired token of the
/// presenting client, in a live family of an enabled user who changed no credentials
/// since, bound to no DPoP key or to the request's, whose scope holds the requested one
/// (space-separated, NULL for none); it records the successor on the token and inserts it.
/// It returns one row per rotation it claimed, with the rotation's place (from 1) and the
/// family; a presentation it did not claim has no row and nothing of it changed.
///
/// Written so that PostgreSQL's plan starts from the presented tokens whatever it expects
/// of the arrays, and so that it plans the statement once (checked with `bench/explain`
/// and `pg_prepared_statements`, finding 30):
/// - The tokens are found by `token_digest = ANY(…)` on the primary key. Joined to the
///   `generate_subscripts` rows alone, which it expects to be 1,000, it hashed the whole
///   table for them (87 ms on 200,000 tokens).
/// - That array is the CTE's column, `ARRAY(SELECT presented FROM i)`, not `$1`: with `$1`
///   the plan for the call's own array always looked cheaper than the generic plan, so
///   PostgreSQL planned every call afresh (1.3 ms a call against 0.24 ms).
/// - The family and user are checked in a scalar subquery on the token's family, one
///   lookup on a key per token. Joined in the `FROM` instead, the planner matched families
///   to rotations by client, over every family of the client.
/// - Optional values are tested per row, as in `standing::TOGETHER`, not per parameter.
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
       WHERE t.token_digest = ANY(ARRAY(SELECT presented FROM i)) AND t.token_digest = i.presented AND t.used_at IS NULL \
         AND t.idle_expires_at > i.rotated_at AND (SELECT f.client_id = i.client AND f.revoked_at IS NULL AND f.absolute_expires_at > i.rotated_at \
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
/// and signs tokens on it: a worker busy signing does not run its tasks, and when one
/// worker's statements served another's rotations, the other worker waited for them with
/// nothing to do (a quarter of the two cores idle, finding 30).
type Thread = std::thread::ThreadId;

#[derive(Default)]
struct Waiting {
    rotations: Vec<Waiter>,
    /// Statements running, each in its task; each takes what waits before it ends.
    running: usize,
}

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
            if waiting.rotations.len() >= MOST_WAITING {
                Err(claim)
            } else {
                waiting.rotations.push((claim, settled));
                let start = waiting.running < MOST_STATEMENTS;
                waiting.running += usize::from(start);
                Ok(start)
            }
        };
        match start {
            Err(claim) => return claim_together(pool, &[&claim]).await.pop().expect("one outcome per claim"),
            Ok(true) => {
                let queue = Arc::clone(self);
                tokio::spawn(queue.run(pool.clone(), thread));
            }
            Ok(false) => {}
        }
        // The sender is dropped unsent only if its task panicked or the runtime stopped.
        outcome.await.unwrap_or(Err(StorageError::WriterStopped))
    }

    /// Takes up to [`MOST_TOGETHER`] waiting rotations whose callers still wait, none
    /// presenting a token another already presents (those wait for the next statement:
    /// PostgreSQL does not say which of two rows an `UPDATE … FROM` would join to one
    /// target row takes); with none left, ends this statement's place.
    fn take(&self, thread: Thread) -> Vec<Waiter> {
        let mut queues = self.lock();
        let Some(waiting) = queues.get_mut(&thread) else { return Vec::new() };
        waiting.rotations.retain(|(_, settled)| !settled.is_closed());
        let mut presented = HashSet::new();
        let mut group = Vec::new();
        let mut rest = Vec::new();
        for waiter in waiting.rotations.drain(..) {
            if group.len() < MOST_TOGETHER && presented.insert(waiter.0.presented.as_str().to_owned()) {
                group.push(waiter);
            } else {
                rest.push(waiter);
            }
        }
        waiting.rotations = rest;
        if group.is_empty() {
            waiting.running = waiting.running.saturating_sub(1);
            if waiting.running == 0 {
                queues.remove(&thread); // nothing waits, and no statement runs
            }
        }
        // In the order of the tokens, so that statements running at once lock the rows they
        // share in the same order and never wait for each other in a cycle (a deadlock,
        // which PostgreSQL breaks only after `deadlock_timeout`, a second).
        group.sort_unstable_by(|(a, _), (b, _)| a.presented.as_str().cmp(b.presented.as_str()));
        group
    }

    /// Sends `thread`'s statements until nothing of it waits.
    async fn run(self: Arc<Self>, pool: PgPool, thread: Thread) {
        let _place = ReleaseOnUnwind(&self, thread);
        loop {
            let group = self.take(thread);
            if group.is_empty() {
                return;
            }
            let claims: Vec<&Claim<'_>> = group.iter().map(|(claim, _)| claim).collect();
            #[cfg(test)]
            self.sizes.lock().unwrap_or_else(PoisonError::into_inner).push(claims.len());
            let outcomes = claim_together(&pool, &claims).await;
            for ((_, settled), outcome) in group.into_iter().zip(outcomes) {
                let _ = settled.send(outcome); // the caller may have gone away
            }
        }
    }
}

/// When a statement's task unwinds: gives its place back and drops the waiting rotations'
/// senders, so that each learns the claim failed rather than wait for a task that is gone.
struct ReleaseOnUnwind<'a>(&'a PostgresRotations, Thread);

impl Drop for ReleaseOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(waiting) = self.0.lock().get_mut(&self.1) {
                waiting.running = waiting.running.saturating_sub(1);
                waiting.rotations.clear();
            }
        }
    }
}

/// Sends `claims` as one [`CLAIM_TOGETHER`] and settles each, in their order.
async fn claim_together(pool: &PgPool, claims: &[&Claim<'_>]) -> Vec<Claimed> {
    let column = |value: fn(&Claim<'_>) -> Option<String>| claims.iter().map(|c| value(c)).collect::<Vec<_>>();
    let times = |value: fn(&Claim<'_>) -> Option<DateTime<Utc>>| claims.iter().map(|c| value(c)).collect::<Vec<_>>();
    let sealed: Vec<Option<&[u8]>> = claims.iter().map(|c| c.sealed.as_ref().map(|(sealed, _)| &**sealed)).collect();
    let rows: Result<Vec<ClaimedRow>, sqlx::Error> = sqlx::query_as(CLAIM_TOGETHER)
        .bind(column(|c| Some(c.presented.as_str().to_owned())))
        .bind(times(|c| Some(Timestamp::from(c.now).0)))
        .bind(column(|c| Some(c.successor.as_str().to_owned())))
        .bind(sealed)
        .bind(times(|c| c.sealed.as_ref().map(|(_, until)| until.0)))
        .bind(column(|c| Some(c.client_id.as_str().to_owned())))
        .bind(column(|c| c.requested_scope.as_ref().map(|scope| scope.iter().collect::<Vec<_>>().join(" "))))
        .bind(times(|c| Some(Timestamp::from(c.idle_expires_at).0)))
        .bind(column(|c| c.dpop_jkt.as_deref().map(str::to_owned)))
        .fetch_all(pool)
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        // PostgreSQL refused the statement, so nothing of it happened: each rotation goes
        // on to the transaction, which claims it alone.
        Err(sqlx::Error::Database(error)) if claims.len() > 1 => {
            tracing::warn!(%error, rotations = claims.len(), "a statement of refresh rotations failed; each goes alone");
            return claims.iter().map(|_| Ok(None)).collect();
        }
        Err(error) => {
            let others = || match &error {
                sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
                sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
                // Whether the statement committed is unknown: not an error a rotation retries.
                error => sqlx::Error::Io(std::io::Error::other(format!(
                    "the statement of several refresh rotations failed: {error}"
                ))),
            };
            let mut outcomes: Vec<Claimed> = claims[1..].iter().map(|_| Err(others().into())).collect();
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

    /// Rotates each of `presented` at once, from tasks of their own.
    async fn rotate_all(storage: &Arc<SqlStorage>, client: &ClientId, presented: Vec<Presented>) -> Vec<Rotation> {
        let now = chrono::Utc::now();
        let (storage, client) = (Arc::clone(storage), client.clone());
        tokio::spawn(async move {
            let reuse = Revocation::new(Reason::RefreshTokenReused, now, None);
            let requests: Vec<_> = presented.iter().map(|p| p.request(&client, now, &reuse)).collect();
            let outcomes =
                futures_util::future::join_all(requests.iter().map(|r| storage.rotate_refresh_token(r))).await;
            outcomes.into_iter().map(Result::unwrap).collect()
        })
        .await
        .unwrap()
    }

    /// Forty-three rotations at once while their statements wait for a lock: they go as
    /// statements of up to [`MOST_TOGETHER`], several running at once, and each settles as
    /// it would have alone: every fresh token rotates with its own successor stored, of one
    /// token presented twice one rotates and the other gets its successor back (the two
    /// never in one statement), and a used token is reuse.
    #[tokio::test]
    async fn rotations_share_statements_and_each_settles_as_alone() {
        let Some((storage, name, url)) = sql_tests::fresh_postgres("tessera_rotations").await else { return };
        let storage = Arc::new(storage);
        let client = ClientId::generate();
        let fresh = 40;
        seed(pool(&storage), &client, fresh).await;

        // Every statement waits for the families table until all rotations are taken.
        let mut lock = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
        sqlx::query("LOCK TABLE token_families IN ACCESS EXCLUSIVE MODE").execute(&mut lock).await.unwrap();

        let mut presented: Vec<Presented> =
            (0..fresh).map(|n| Presented::of(&format!("t{n}"), &format!("s{n}"))).collect();
        presented.extend([Presented::of("a1", "a2"), Presented::of("a1", "a2'"), Presented::of("c0", "c1'")]);
        let count = presented.len();
        let rotations = tokio::spawn({
            let (storage, client) = (Arc::clone(&storage), client.clone());
            async move { rotate_all(&storage, &client, presented).await }
        });
        // Until every rotation is in a statement that waits, but for the second `a1`, which
        // may wait for a later one.
        let waiting = || {
            let Backend::Postgres { rotations, .. } = &storage.backend else { unreachable!() };
            rotations.lock().values().map(|waiting| waiting.rotations.len()).sum::<usize>()
        };
        for _ in 0..1000 {
            if waiting() <= 1 && sizes(&storage).iter().sum::<usize>() + waiting() == count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let taken = sizes(&storage);
        assert!(taken.len() <= MOST_STATEMENTS, "at most {MOST_STATEMENTS} statements at once: {taken:?}");
        assert!(taken.iter().sum::<usize>() >= count - 1, "all but one are in statements: {taken:?}");
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        let outcomes = rotations.await.unwrap();
        let taken = sizes(&storage);
        assert_eq!(taken.iter().sum::<usize>(), count, "each rotation went in one statement: {taken:?}");
        assert!(taken.iter().all(|&size| size <= MOST_TOGETHER), "{taken:?}");
        assert!(taken.iter().any(|&size| size > 1), "rotations went together: {taken:?}");

        for (n, outcome) in outcomes[..fresh].iter().enumerate() {
            let Rotation::Rotated(family) = outcome else { panic!("t{n}: {outcome:?}") };
            assert_eq!(family.id, FamilyId::parse(&format!("f{n}")).unwrap(), "t{n} settles with its own family");
            let (successor, family) =
                storage.find_refresh_token(&SecretDigest::of(&format!("s{n}"))).await.unwrap().unwrap();
            assert!(successor.used_at.is_none(), "s{n} stored, unused");
            assert_eq!(family.id.as_str(), format!("f{n}"));
        }
        let (a, a_again) = (&outcomes[fresh], &outcomes[fresh + 1]);
        let sealed = match (a, a_again) {
            (Rotation::Rotated(_), Rotation::Retried { successor_sealed, .. }) => (successor_sealed, "sealed a2"),
            (Rotation::Retried { successor_sealed, .. }, Rotation::Rotated(_)) => (successor_sealed, "sealed a2'"),
            other => panic!("a1 twice: one rotation and one retry, not {other:?}"),
        };
        assert_eq!(sealed.0, sealed.1.as_bytes(), "the retry gets the rotation's successor");
        assert!(matches!(outcomes[fresh + 2], Rotation::Reused(_)), "c0: {:?}", outcomes[fresh + 2]);
        let c = storage.find_family(&FamilyId::parse("c").unwrap()).await.unwrap().unwrap();
        assert!(c.revoked_at.is_some(), "reuse revokes the family");

        lock.close().await.unwrap();
        sql_tests::drop_postgres(Arc::into_inner(storage).expect("the rotations are done"), &name).await;
    }

    /// A statement PostgreSQL refuses (here: two rotations naming one successor, against
    /// the primary key) changed nothing, and each of its rotations goes on alone: one
    /// rotates, the other fails, and its token stays unused.
    #[tokio::test]
    async fn a_refused_statement_sends_each_rotation_alone() {
        let Some((storage, name, _)) = sql_tests::fresh_postgres("tessera_rotations").await else { return };
        let storage = Arc::new(storage);
        let client = ClientId::generate();
        seed(pool(&storage), &client, 2).await;

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
