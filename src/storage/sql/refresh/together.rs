//! SQLite refresh rotations, several to one writer round trip: group commit.
//!
//! Every SQLite write waits for the one writer (`storage::sql::writer`). A rotation sent
//! as one transaction in one round trip (finding 13) still held the writer for a hand-off
//! to the connection's thread and back and for its own commit, and under load rotations
//! queued for it while cores idled (25–28 % at 2,630 rotations/s). Here a rotation joins
//! a queue; the first one in schedules a drain on the writer thread, and the drain, once
//! it has the writer connection, takes up to [`MOST_TOGETHER`] waiting rotations and sends
//! them as one transaction: BEGIN IMMEDIATE, each rotation's claim, successor and facts
//! ([`CLAIM`], [`SUCCESSOR`], [`FACTS`]), COMMIT. Rotations that arrive meanwhile wait
//! for the next drain, so a busy writer takes bigger groups and an idle one answers a
//! lone rotation at once. (bench/README.md finding 17 has the numbers.)
//!
//! Sound because the statements of a group run one after the other in one transaction,
//! as the same rotations would one transaction each in that order: a token presented
//! twice in one group is claimed by the first and found used by the second (a retry
//! inside the window, or reuse), and a token and its successor in one group rotate in
//! turn. One difference: reuse is not settled in the group. It goes on to its own
//! transaction after the group commits, so a rotation of the same family later in the
//! group still succeeds, and the family (with what that rotation issued) is revoked just
//! after: the order "that rotation, then the reuse", as valid for requests that overlap.
//!
//! Failures: if a statement of the group breaks a constraint (a successor's digest
//! taken) the group is rolled back and each of its rotations runs again alone, so only
//! that one fails. Any other failure (the lock held by another process, the disk) fails
//! the whole group with an error the rotation retries, rather than multiply the wait by
//! eight. Each row is decoded in its own rotation's settlement, so a row that cannot be
//! read, which can only show after the COMMIT, fails its own rotation and no other.
//! Rotations whose caller went away before their group was taken are dropped unrun (the
//! token stays as it was), and the queue refuses new rotations past [`MOST_WAITING`].

use super::{presented_state, unwritten, Claim};
use crate::domain::refresh::{self, FamilyState, Rotation, TokenFamily};
use crate::storage::sql::writer::{Queued, Writer};
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row, Sqlite, SqlitePool};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::sync::oneshot;

/// The most rotations sent together. Each group size is its own query text, prepared and
/// cached on the writer connection (three statements per rotation), so this also bounds
/// that cache: 8 texts, 108 statements.
const MOST_TOGETHER: usize = 8;

/// The most rotations waiting for the writer; past it a rotation is refused with an error
/// it retries after a pause. Every waiting rotation is an HTTP request in flight, so
/// connection limits bound it too; this bounds it whatever they are.
const MOST_WAITING: usize = 4096;

/// How many `$n` each rotation binds: what [`bind_claim!`] binds ($1–$5), the client ($6),
/// the successor's idle expiry ($7) and the DPoP key's thumbprint ($8).
const BINDS_PER_CLAIM: usize = 8;

/// The claim, [`super::postgres_together`]'s `CLAIM_TOGETHER` WHERE clause in SQLite
/// (change the three together with [`refresh::decide`]): only an unused, unexpired token
/// of this client, in a live family of an enabled user who changed no credentials since,
/// with the request's DPoP key if the family is bound. Narrowing the scope never comes
/// here (SQLite has no arrays to compare scopes with in SQL; it is the rare case).
const CLAIM: &str = "UPDATE refresh_tokens SET used_at = $2, successor_digest = $3, successor_sealed = $4, \
     successor_sealed_until = $5 \
   WHERE token_digest = $1 AND used_at IS NULL AND idle_expires_at > $2 AND EXISTS ( \
     SELECT 1 FROM token_families f JOIN users u ON u.id = f.user_id \
     WHERE f.id = refresh_tokens.family_id AND f.client_id = $6 AND f.revoked_at IS NULL \
       AND f.absolute_expires_at > $2 AND u.disabled_at IS NULL \
       AND (u.credentials_changed_at IS NULL OR u.credentials_changed_at <= f.auth_time) \
       AND (f.dpop_jkt IS NULL OR f.dpop_jkt = $8)); ";

/// The successor, stored only if the claim above set its digest on the presented token.
/// The digest is fresh (256 random bits): were it ever not, the primary key would fail the
/// group, and the rotation would run again alone and fail alone.
const SUCCESSOR: &str = "INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at) \
     SELECT $3, f.id, $2, MIN($7, f.absolute_expires_at) FROM refresh_tokens t \
     JOIN token_families f ON f.id = t.family_id WHERE t.token_digest = $1 AND t.successor_digest = $3; ";

/// [`super::TOKEN_QUERY`]'s facts, and whether this rotation rotated: `changes()` is the
/// row count of the last INSERT, UPDATE or DELETE, the successor's INSERT just above.
/// When nothing was claimed the facts are those the transaction path would read (nothing
/// changed), so [`refresh::decide`] settles every case that writes nothing (a retry, an
/// invalid or unknown token, a wrong DPoP key) here; only reuse goes on to the transaction.
const FACTS: &str = concat!(token_columns!(), ", changes() = 1 AS rotated", token_from!(), "; ");

#[derive(sqlx::FromRow)]
struct ClaimRow {
    #[sqlx(flatten)]
    token: super::TokenRow,
    rotated: bool,
}

/// Which rotation of the group a row answers: its place, the `claim` column.
const PLACE: &str = "claim";

/// What one rotation learns: settled, or `None` when the transaction path must decide.
type Settled = Result<Option<Rotation>, StorageError>;

/// Rotations waiting for the writer.
#[derive(Default)]
pub(in crate::storage::sql) struct RotationQueue {
    waiting: Mutex<Waiting>,
    /// The size of every group sent, for the tests to see that groups form.
    #[cfg(test)]
    groups: Mutex<Vec<usize>>,
}

/// A rotation waiting: what it claims, where its outcome goes, and its place in the
/// writer's queue count (`tessera_db_writes_queued`) until the outcome is sent.
type Waiter = (Claim<'static>, oneshot::Sender<Settled>, Queued);

#[derive(Default)]
struct Waiting {
    rotations: Vec<Waiter>,
    /// A drain is scheduled or running and will take what waits.
    drain_scheduled: bool,
}

impl RotationQueue {
    /// Queues `claim`, schedules a drain if none is, and waits for its outcome. The drain
    /// runs on the writer thread: a caller that goes away does not stop it.
    pub(super) async fn settle(self: &Arc<Self>, writer: &Writer, claim: Claim<'static>) -> Settled {
        let (settled, outcome) = oneshot::channel();
        let schedule = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if waiting.rotations.len() >= MOST_WAITING {
                // Those whose caller left do not count against the bound.
                waiting.rotations.retain(|(_, settled, _)| !settled.is_closed());
                if waiting.rotations.len() >= MOST_WAITING {
                    return Err(try_again());
                }
            }
            waiting.rotations.push((claim, settled, writer.count_queued()));
            !std::mem::replace(&mut waiting.drain_scheduled, true)
        };
        if schedule {
            let queue = Arc::clone(self);
            writer.submit(move |pool| queue.drain(pool));
        }
        // The sender is dropped unsent only if the drain never ran it: the storage stopped,
        // or the drain panicked.
        outcome.await.unwrap_or(Err(StorageError::WriterStopped))
    }

    /// Takes up to [`MOST_TOGETHER`] waiting rotations whose callers still wait (the rest are
    /// dropped unrun), or all of them with `all`; says whether more wait (then the drain
    /// stays scheduled and goes on).
    fn take(&self, all: bool) -> (Vec<Waiter>, bool) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.rotations.retain(|(_, settled, _)| !settled.is_closed());
        let count = if all { waiting.rotations.len() } else { waiting.rotations.len().min(MOST_TOGETHER) };
        let group: Vec<_> = waiting.rotations.drain(..count).collect();
        let more = !waiting.rotations.is_empty();
        waiting.drain_scheduled = more;
        (group, more)
    }

    /// Sends groups until nothing waits. It takes a group only once it holds the writer
    /// connection, so that what arrived while it queued goes too, and gives the connection
    /// back between groups, so other writes take their turn in between.
    async fn drain(self: Arc<Self>, pool: SqlitePool) {
        let _reset = ResetOnUnwind(&self);
        loop {
            let connection = pool.acquire().await;
            // The writer connection is gone or timed out: every waiting rotation learns
            // it at once, as a lone write would have, rather than eight per timeout.
            let (group, more) = self.take(connection.is_err());
            if group.is_empty() {
                return; // every waiting caller left: `take` found nothing more either
            }
            let mut connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    for (_, settled, _) in group {
                        let _ = settled.send(Err(same_pool_error(&error)));
                    }
                    return;
                }
            };
            let claims: Vec<&Claim<'_>> = group.iter().map(|(claim, _, _)| claim).collect();
            #[cfg(test)]
            self.groups.lock().unwrap_or_else(PoisonError::into_inner).push(claims.len());
            let outcomes = run_group(&mut connection, &claims).await;
            drop(connection);
            for ((_, settled, _), outcome) in group.into_iter().zip(outcomes) {
                let _ = settled.send(outcome); // the caller may have gone away
            }
            if !more {
                return;
            }
        }
    }
}

/// Runs `claims` as one group and settles each; a group that broke a constraint runs
/// again one rotation at a time (see the module comment).
async fn run_group(connection: &mut PoolConnection<Sqlite>, claims: &[&Claim<'_>]) -> Vec<Settled> {
    let failure = match claim_together(connection, claims).await {
        Ok(outcomes) => return outcomes,
        Err(failure) => failure,
    };
    // SQLITE_CONSTRAINT (19), whatever its extended code (unique, primary key, foreign
    // key, not null, check, trigger, datatype).
    let is_constraint = matches!(&failure.error,
        sqlx::Error::Database(db) if db.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 19));
    if claims.len() == 1 || !is_constraint || !failure.rolled_back {
        // The first learns what failed; the rest of a group retry after a pause.
        if claims.len() > 1 {
            tracing::warn!(error = %failure.error, rotations = claims.len(), "a group of refresh rotations failed");
        }
        let mut first = Some(StorageError::from(failure.error));
        return claims.iter().map(|_| Err(first.take().unwrap_or_else(try_again))).collect();
    }
    let mut outcomes = Vec::with_capacity(claims.len());
    for claim in claims {
        outcomes.push(match claim_together(connection, &[claim]).await {
            Ok(mut alone) => alone.pop().expect("one outcome per claim"),
            Err(failure) => Err(failure.error.into()),
        });
    }
    outcomes
}

/// The error a rotation retries after a pause (`is_retryable`): the writer was busy.
fn try_again() -> StorageError {
    StorageError::Database(sqlx::Error::PoolTimedOut)
}

/// A pool's failure to hand out the writer connection, once for each rotation that waited
/// for it (`sqlx::Error` is not `Clone`).
fn same_pool_error(error: &sqlx::Error) -> StorageError {
    match error {
        sqlx::Error::PoolTimedOut => StorageError::Database(sqlx::Error::PoolTimedOut),
        sqlx::Error::PoolClosed => StorageError::Database(sqlx::Error::PoolClosed),
        _ => StorageError::WriterStopped,
    }
}

/// When a drain unwinds: marks no drain scheduled and drops the waiting rotations'
/// senders, so that each learns the writer stopped rather than wait for a drain that is
/// gone.
struct ResetOnUnwind<'a>(&'a RotationQueue);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut waiting = self.0.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.drain_scheduled = false;
            waiting.rotations.clear();
        }
    }
}

/// The query text for `count` rotations: BEGIN IMMEDIATE, then each one's [`CLAIM`],
/// [`SUCCESSOR`] and [`FACTS`] with its binds numbered from `BINDS_PER_CLAIM × place`,
/// then COMMIT. Built once per size.
fn text(count: usize) -> &'static str {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (1..=MOST_TOGETHER)
            .map(|count| {
                let mut text = String::from("BEGIN IMMEDIATE; ");
                for place in 0..count {
                    let offset = BINDS_PER_CLAIM * place;
                    text += &renumbered(CLAIM, offset);
                    text += &renumbered(SUCCESSOR, offset);
                    text += &format!("SELECT {place} AS claim, ");
                    text += &renumbered(FACTS, offset);
                }
                text + "COMMIT"
            })
            .collect()
    });
    &texts[count - 1]
}

/// `sql` with every `$n` made `$(n + offset)`.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: usize = rest[..digits].parse().expect("every $ in these texts starts a bind number");
        out.push_str(&(number + offset).to_string());
        rest = &rest[digits..];
    }
    out + rest
}

/// Why a group's text failed, and whether its transaction was rolled back.
struct GroupFailure {
    error: sqlx::Error,
    rolled_back: bool,
}

/// Sends `claims` (1 to [`MOST_TOGETHER`]) as one transaction in one round trip and settles
/// each. On error the transaction is rolled back, and the connection closed should even
/// that fail, so that no transaction is carried into the next write.
async fn claim_together(
    connection: &mut PoolConnection<Sqlite>,
    claims: &[&Claim<'_>],
) -> Result<Vec<Settled>, GroupFailure> {
    let mut query = sqlx::query(text(claims.len()));
    for c in claims {
        query = bind_claim!(query, c)
            .bind(c.client_id.as_str())
            .bind(Timestamp::from(c.idle_expires_at))
            .bind(c.dpop_jkt.as_deref());
    }
    // `fetch_all`, never `fetch_optional`/`fetch_one`: those stop the text at the first row,
    // before its COMMIT, and would leave the transaction open on the writer connection.
    // Rows are decoded later, each by its own rotation.
    let rows = match query.fetch_all(&mut **connection).await {
        Ok(rows) => rows,
        Err(error) => {
            // A statement failed: the text stops there, and if its BEGIN ran the
            // transaction is still open, unknown to sqlx. Roll it back; should even that
            // fail, the connection goes (closing it rolls back).
            let rolled_back = match sqlx::query("ROLLBACK").execute(&mut **connection).await {
                Ok(_) => true,
                Err(rollback) => {
                    let none_open = rollback.to_string().contains("no transaction is active");
                    if !none_open {
                        connection.close_on_drop();
                    }
                    none_open
                }
            };
            return Err(GroupFailure { error, rolled_back });
        }
    };
    let mut by_place: Vec<Result<Option<SqliteRow>, StorageError>> = claims.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let place = row.try_get::<i64, _>(PLACE).ok().and_then(|place| usize::try_from(place).ok());
        match place.and_then(|place| by_place.get_mut(place)) {
            Some(slot @ Ok(None)) => *slot = Ok(Some(row)),
            Some(slot) => *slot = Err(StorageError::Corrupt("two rows for one refresh rotation".into())),
            None => tracing::error!("a row for no refresh rotation of the group"),
        }
    }
    Ok(claims.iter().zip(by_place).map(|(c, row)| settle(c, row?)).collect())
}

/// One rotation's outcome from its row; no row: no such token, as the transaction path
/// would find.
fn settle(c: &Claim<'_>, row: Option<SqliteRow>) -> Settled {
    let Some(row) = row else { return Ok(Some(Rotation::Invalid)) };
    let ClaimRow { token: row, rotated } = ClaimRow::from_row(&row)?;
    let family = TokenFamily::try_from(row.family)?;
    if rotated {
        return Ok(Some(Rotation::Rotated(family)));
    }
    let (presented, sealed) = presented_state(row.state, false);
    let withdrawn = row.is_user_withdrawn.unwrap_or(false);
    let decision = refresh::decide(&presented, &FamilyState::of(&family, withdrawn), &c.presentation());
    Ok(unwritten(decision, family, sealed))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::domain::client::ClientId;
    use crate::domain::refresh::{FamilyId, RotationRequest};
    use crate::domain::secret::SecretDigest;
    use crate::domain::signals::{Reason, Revocation};
    use crate::storage::sql::{Backend, SqlStorage};
    use crate::storage::RefreshStore;
    use chrono::{DateTime, Duration, Utc};

    /// A rotation as the token endpoint asks for it, owning what the request borrows.
    pub(in crate::storage::sql::refresh) struct Presented {
        pub(in crate::storage::sql::refresh) token: SecretDigest,
        successor: String,
        pub(in crate::storage::sql::refresh) sealed: Vec<u8>,
    }

    impl Presented {
        pub(in crate::storage::sql::refresh) fn of(token: &str, successor: &str) -> Self {
            Self {
                token: SecretDigest::of(token),
                successor: successor.to_owned(),
                sealed: format!("sealed {successor}").into_bytes(),
            }
        }

        pub(in crate::storage::sql::refresh) fn request<'a>(
            &'a self,
            client: &'a ClientId,
            now: DateTime<Utc>,
            reuse: &'a Revocation,
        ) -> RotationRequest<'a> {
            RotationRequest {
                presented: &self.token,
                client_id: client,
                now,
                successor: &self.successor,
                successor_sealed: &self.sealed,
                idle_ttl: Duration::hours(1),
                retry_window: Duration::seconds(10),
                requested_scope: None,
                reuse,
                dpop_jkt: None,
            }
        }
    }

    async fn storage(dir: &tempfile::TempDir) -> Arc<SqlStorage> {
        let url = DatabaseUrl::parse(&format!("sqlite://{}/t.db?mode=rwc", dir.path().display())).unwrap();
        let settings = crate::storage::sql::tests::settings(4);
        let storage = SqlStorage::connect(&url, &settings).await.unwrap();
        storage.migrate().await.unwrap();
        Arc::new(storage)
    }

    fn writer(storage: &SqlStorage) -> &Writer {
        let Backend::Sqlite { writer, .. } = &storage.backend else { panic!("a SQLite URL") };
        writer
    }

    /// A client, a user, and three families: `a` with its live token `a1`, `b` with `b1`,
    /// and `c`, whose `c0` was used an hour ago for `c1`.
    async fn seed(storage: &SqlStorage, client: &ClientId, now: DateTime<Utc>) {
        let (client, now) = (client.as_str().to_owned(), Timestamp::from(now));
        let hour_ago = Timestamp::from(now.0 - Duration::hours(1));
        let later = Timestamp::from(now.0 + Duration::days(1));
        writer(storage)
            .run(move |pool| async move {
                sqlx::query(
                    "INSERT INTO clients (id, name, token_endpoint_auth_method, grant_types, scopes, audiences, \
                     redirect_uris, created_at, updated_at) VALUES ($1, 'c', 'none', '[]', '[]', '[]', '[]', $2, $2)",
                )
                .bind(&client)
                .bind(now)
                .execute(&pool)
                .await?;
                sqlx::query(
                    "INSERT INTO users (id, username, password_hash, created_at, updated_at) VALUES ('u', 'u', 'x', $1, $1)",
                )
                .bind(now)
                .execute(&pool)
                .await?;
                for family in ["a", "b", "c"] {
                    sqlx::query(
                        "INSERT INTO token_families (id, client_id, user_id, sid, scope, auth_time, created_at, \
                         last_used_at, absolute_expires_at) VALUES ($1, $2, 'u', 's', 'offline_access', $3, $3, $3, $4)",
                    )
                    .bind(family)
                    .bind(&client)
                    .bind(hour_ago)
                    .bind(later)
                    .execute(&pool)
                    .await?;
                }
                let tokens = [("a1", "a", None), ("b1", "b", None), ("c0", "c", Some("c1")), ("c1", "c", None)];
                for (token, family, successor) in tokens {
                    let used = successor.map(|_| hour_ago);
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at, used_at, \
                         successor_digest) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(SecretDigest::of(token).as_str())
                    .bind(family)
                    .bind(hour_ago)
                    .bind(later)
                    .bind(used)
                    .bind(successor.map(|s| SecretDigest::of(s).as_str().to_owned()))
                    .execute(&pool)
                    .await?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Six rotations queued while the writer is held, so that one drain takes them as one
    /// group: each settles as it would have alone, in the order they came.
    #[tokio::test]
    async fn a_group_settles_each_rotation_as_one_after_another_would() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(&dir).await;
        let client = ClientId::parse("client").unwrap();
        let now = Utc::now();
        seed(&storage, &client, now).await;

        // Hold the writer connection until the six rotations and their drain wait for it.
        let release = writer(&storage).hold_connection().await;

        let presented = [
            Presented::of("a1", "a2"),  // rotates
            Presented::of("a1", "a2'"), // the same token again: a retry, with a2
            Presented::of("b1", "b2"),  // rotates
            Presented::of("b2", "b3"),  // the successor just issued: rotates in turn
            Presented::of("c0", "c1'"), // used an hour ago: reuse
            Presented::of("c1", "c2"),  // the reused token's successor: rotates, then its family is revoked
        ];
        let count = presented.len();
        let rotations = {
            let (storage, client) = (Arc::clone(&storage), client.clone());
            tokio::spawn(async move {
                let reuse = Revocation::new(Reason::RefreshTokenReused, now, None);
                let requests: Vec<_> = presented.iter().map(|p| p.request(&client, now, &reuse)).collect();
                let outcomes =
                    futures_util::future::join_all(requests.iter().map(|r| storage.rotate_refresh_token(r))).await;
                outcomes.into_iter().map(Result::unwrap).collect::<Vec<_>>()
            })
        };
        let expected_queue = 1 + count + 1; // the holder, the rotations, their drain
        for _ in 0..1000 {
            if writer(&storage).queued() == expected_queue {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(writer(&storage).queued(), expected_queue, "every rotation waits behind the held writer");
        release.send(()).unwrap();
        let outcomes = rotations.await.unwrap();
        let Backend::Sqlite { rotations, .. } = &storage.backend else { unreachable!() };
        assert_eq!(*rotations.groups.lock().unwrap(), [count], "the six went as one group");

        assert!(
            matches!(
                &outcomes[..],
                [
                    Rotation::Rotated(_),
                    Rotation::Retried { .. },
                    Rotation::Rotated(_),
                    Rotation::Rotated(_),
                    Rotation::Reused(_),
                    Rotation::Rotated(_),
                ]
            ),
            "rotated, retried, rotated, rotated, reused, rotated: {outcomes:?}"
        );
        let Rotation::Retried { successor_sealed, .. } = &outcomes[1] else { unreachable!() };
        assert_eq!(successor_sealed, b"sealed a2", "the retry gets the first presentation's successor");
        let c = storage.find_family(&FamilyId::parse("c").unwrap()).await.unwrap().unwrap();
        assert!(c.revoked_at.is_some(), "the reuse revoked its family after the group");
    }

    #[test]
    fn binds_are_renumbered_past_the_earlier_rotations() {
        assert_eq!(renumbered("a = $1 AND b = $10 OR c = $8;", 16), "a = $17 AND b = $26 OR c = $24;");
        assert_eq!(renumbered("no binds", 8), "no binds");
    }

    #[test]
    fn each_group_size_binds_eight_per_rotation_and_numbers_its_rows() {
        for count in 1..=MOST_TOGETHER {
            let text = text(count);
            assert!(text.contains(&format!("${}", count * BINDS_PER_CLAIM)), "group of {count}");
            assert!(!text.contains(&format!("${}", count * BINDS_PER_CLAIM + 1)), "group of {count}");
            assert_eq!(text.matches(" AS claim, ").count(), count);
            assert!(text.starts_with("BEGIN IMMEDIATE; ") && text.ends_with("; COMMIT"));
        }
    }
}
