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
//! exactly as the same rotations would one transaction each in that order: a token
//! presented twice in one group is claimed by the first and found used by the second
//! (a retry inside the window, or reuse). If any statement fails (the disk, a successor's
//! digest taken) the group is rolled back and each of its rotations runs again alone, so
//! one failure is reported to its own rotation and changes nothing for the rest.

use super::{presented_state, unwritten, Claim, TokenRow};
use crate::domain::refresh::{self, FamilyState, Rotation, TokenFamily};
use crate::storage::sql::writer::{Queued, Writer};
use crate::storage::timestamp::Timestamp;
use crate::storage::StorageError;
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqlitePool};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::sync::oneshot;

/// The most rotations sent together. Each group size is its own query text, prepared and
/// cached on the writer connection (three statements per rotation), so this also bounds
/// that cache: 8 texts, 108 statements.
pub(in crate::storage::sql) const MOST_TOGETHER: usize = 8;

/// How many `$n` each rotation binds: what [`bind_claim!`] binds ($1–$5), the client ($6),
/// the successor's idle expiry ($7) and the DPoP key's thumbprint ($8).
const BINDS_PER_CLAIM: usize = 8;

/// The claim, [`super::CLAIM_AND_INSERT`]'s WHERE clause in SQLite (change the three
/// together with [`refresh::decide`]): only an unused, unexpired token of this client, in
/// a live family of an enabled user who changed no credentials since, with the request's
/// DPoP key if the family is bound. Narrowing the scope never comes here (SQLite has no
/// arrays to compare scopes with in SQL; it is the rare case).
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
    /// Which rotation of the group the row answers: its place in the group.
    claim: i64,
    #[sqlx(flatten)]
    token: TokenRow,
    rotated: bool,
}

/// What one rotation learns: settled, or `None` when the transaction path must decide.
type Settled = Result<Option<Rotation>, StorageError>;

/// Rotations waiting for the writer.
#[derive(Default)]
pub(in crate::storage::sql) struct RotationQueue {
    waiting: Mutex<Waiting>,
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
            waiting.rotations.push((claim, settled, writer.count_queued()));
            !std::mem::replace(&mut waiting.drain_scheduled, true)
        };
        if schedule {
            let queue = Arc::clone(self);
            writer.submit(move |pool| queue.drain(pool));
        }
        // The sender is dropped unsent only if the drain never ran: the storage stopped.
        outcome.await.unwrap_or(Err(StorageError::WriterStopped))
    }

    /// Takes up to [`MOST_TOGETHER`] waiting rotations; says whether more wait (then the
    /// drain stays scheduled and goes on).
    fn take(&self) -> (Vec<Waiter>, bool) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let count = waiting.rotations.len().min(MOST_TOGETHER);
        let group: Vec<_> = waiting.rotations.drain(..count).collect();
        let more = !waiting.rotations.is_empty();
        waiting.drain_scheduled = more;
        (group, more)
    }

    /// Sends groups until nothing waits. It takes a group only once it holds the writer
    /// connection, so that what arrived while it queued goes too, and gives the connection
    /// back between groups, so other writes take their turn in between.
    async fn drain(self: Arc<Self>, pool: SqlitePool) {
        // Should this task panic, the next rotation to arrive schedules a drain again.
        let _reset = ResetOnUnwind(&self);
        loop {
            let connection = pool.acquire().await;
            let (group, more) = self.take();
            let mut connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    // The writer connection is gone or timed out: every rotation taken
                    // learns it, as a lone write would have.
                    for (_, settled, _) in group {
                        let _ = settled.send(Err(same_pool_error(&error)));
                    }
                    if more {
                        continue;
                    }
                    return;
                }
            };
            let claims: Vec<&Claim<'_>> = group.iter().map(|(claim, _, _)| claim).collect();
            let outcomes = match claim_together(&mut connection, &claims).await {
                Ok(outcomes) => outcomes,
                // Run each again alone: only the one that fails fails.
                Err(_) if claims.len() > 1 => {
                    let mut outcomes = Vec::with_capacity(claims.len());
                    for claim in &claims {
                        outcomes.push(match claim_together(&mut connection, &[claim]).await {
                            Ok(mut alone) => alone.pop().expect("one outcome per claim"),
                            Err(error) => Err(error),
                        });
                    }
                    outcomes
                }
                Err(error) => vec![Err(error)],
            };
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

/// A pool's failure to hand out the writer connection, once for each rotation that waited
/// for it (`sqlx::Error` is not `Clone`).
fn same_pool_error(error: &sqlx::Error) -> StorageError {
    match error {
        sqlx::Error::PoolTimedOut => StorageError::Database(sqlx::Error::PoolTimedOut),
        sqlx::Error::PoolClosed => StorageError::Database(sqlx::Error::PoolClosed),
        _ => StorageError::WriterStopped,
    }
}

/// Marks no drain scheduled when a drain unwinds, so that rotations are not left waiting
/// for a drain that is gone.
struct ResetOnUnwind<'a>(&'a RotationQueue);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.waiting.lock().unwrap_or_else(PoisonError::into_inner).drain_scheduled = false;
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

/// Sends `claims` (1 to [`MOST_TOGETHER`]) as one transaction in one round trip and settles
/// each. On error the transaction is rolled back, and the connection closed should even
/// that fail, so that no transaction is carried into the next write.
async fn claim_together(
    connection: &mut PoolConnection<Sqlite>,
    claims: &[&Claim<'_>],
) -> Result<Vec<Settled>, StorageError> {
    let mut query = sqlx::query_as::<_, ClaimRow>(text(claims.len()));
    for c in claims {
        query = bind_claim!(query, c)
            .bind(c.client_id.as_str())
            .bind(Timestamp::from(c.idle_expires_at))
            .bind(c.dpop_jkt.as_deref());
    }
    // `fetch_all`, never `fetch_optional`/`fetch_one`: those stop the text at the first row,
    // before its COMMIT, and would leave the transaction open on the writer connection.
    let rows = match query.fetch_all(&mut **connection).await {
        Ok(rows) => rows,
        Err(error) => {
            // A statement failed: the text stops there, and if its BEGIN ran the
            // transaction is still open, unknown to sqlx. Roll it back; should even that
            // fail, the connection goes (closing it rolls back).
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut **connection).await {
                if !rollback.to_string().contains("no transaction is active") {
                    connection.close_on_drop();
                }
            }
            return Err(error.into());
        }
    };
    let mut by_place: Vec<Option<ClaimRow>> = claims.iter().map(|_| None).collect();
    for row in rows {
        let place = usize::try_from(row.claim).ok().filter(|place| *place < claims.len());
        let place = place.ok_or_else(|| StorageError::Corrupt(format!("a claim numbered {}", row.claim)))?;
        by_place[place] = Some(row);
    }
    Ok(claims.iter().zip(by_place).map(|(c, row)| settle(c, row)).collect())
}

/// One rotation's outcome from its row; no row: no such token, as the transaction path
/// would find.
fn settle(c: &Claim<'_>, row: Option<ClaimRow>) -> Settled {
    let Some(ClaimRow { token: row, rotated, .. }) = row else { return Ok(Some(Rotation::Invalid)) };
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
mod tests {
    use super::*;

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
