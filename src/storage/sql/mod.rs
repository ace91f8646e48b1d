//! The one SQL implementation of every store, instantiated for SQLite and PostgreSQL
//! by `on_pool!` and `on_writer!` (see the module comment of `storage`).
//!
//! The rules every method here keeps:
//! - a body means the same on both backends: each macro wraps it in an `async` block on
//!   both arms, so `?` and `return` leave the body, never the method, and the body's value
//!   is a `Result<_, StorageError>` (a row that fails to convert is `StorageError::Corrupt`,
//!   not a driver error);
//! - every SQL text is a constant, built with `concat!` from the column lists and
//!   conditions it shares (`client_columns!()` …): nothing is formatted per call, and no
//!   identifier is ever spliced in from a parameter.

use super::rows::{ClientRow, SigningKeyRow, UserRow};
use super::timestamp::Timestamp;
use super::{ClientStore, HealthCheck, KeyState, KeyStore, StorageError, StoredKey, UserStore};
use crate::config::{DatabaseSettings, DatabaseUrl};
use crate::domain::client::{Client, ClientId, KeySource};
use crate::domain::secret::SecretDigest;
use crate::domain::user::{User, UserId, Username};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use std::future::Future;

/// Runs `$body`, a read, with `$pool` bound to a read connection of whichever backend this
/// storage has (`&mut SqliteConnection` or `&mut PgConnection`: a body that uses it twice
/// reborrows it, `&mut *pool`). The connection comes from `kept` and, if the body returned
/// `Ok`, is kept for the next read rather than handed back to the pool (see `kept`): so a
/// body is one or more plain statements and never begins a transaction. The body is
/// expanded once per backend, so each expansion is type-checked against its driver; it is
/// an `async` block on both, evaluating to `Result<_, StorageError>`.
macro_rules! on_pool {
    ($storage:expr, $pool:ident => $body:expr) => {
        match &$storage.backend {
            $crate::storage::sql::Backend::Sqlite { kept, .. } => on_kept!(kept, $pool => $body),
            $crate::storage::sql::Backend::Postgres { kept, .. } => on_kept!(kept, $pool => $body),
        }
    };
}

/// One arm of `on_pool!`: `$body` on a connection from `$kept`, kept again if it read `Ok`.
macro_rules! on_kept {
    ($kept:ident, $pool:ident => $body:expr) => {
        $crate::storage::sql::body(async {
            let mut held = $kept.take().await?;
            let $pool = held.connection();
            let read = $crate::storage::sql::body(async { $body }).await;
            match &read {
                Ok(_) => held.completed(),
                // The database may have gone away (a restart, a failover): the others go
                // back through the pool's ping too rather than fail a read each.
                Err(error) => {
                    if $crate::storage::sql::kept::connection_lost(error) {
                        $kept.release_all()
                    }
                }
            }
            read
        })
        .await
    };
}

/// Runs `$body`, a write, with `$pool` bound to the write pool: as `on_pool!`, but on
/// SQLite the body runs on the writer thread (see `writer`).
///
/// `[$input, …]` names what the body borrows from the caller. The writer thread may
/// outlive the request (a spawned task is not the caller's to cancel), so on SQLite each
/// input is made owned once (`ToWriter`: a copy of what was borrowed) and moved there; the
/// body sees a reference to it. On PostgreSQL the body runs in place and borrows the
/// inputs as they are: nothing is copied. Values that are `Copy` (times, counts) need no
/// mention; forgetting a borrowed one is a compile error on the SQLite arm.
macro_rules! on_writer {
    ($storage:expr, [$($input:ident),* $(,)?], $pool:ident => $body:expr) => {
        match &$storage.backend {
            $crate::storage::sql::Backend::Sqlite { writer, .. } => {
                $(let $input = $crate::storage::sql::writer::ToWriter::to_writer($input);)*
                writer
                    .run(move |$pool| {
                        $crate::storage::sql::body(async move {
                            $(let $input = &$input;)*
                            let $pool = &$pool;
                            $body
                        })
                    })
                    .await
            }
            $crate::storage::sql::Backend::Postgres { kept, .. } => {
                let $pool = kept.pool_for_write();
                $crate::storage::sql::body(async { $body }).await
            }
        }
    };
}

/// Which bound refused a bounded insert (`insert_pushed_request`, `insert_device_request`),
/// asked inside its transaction after the conditional INSERT stored nothing: the client's
/// count first (`$count_client`: client id, now), then the source's (`$count_source`:
/// client id, source digest, now) if one was given, else the total.
macro_rules! refused_bound {
    ($tx:ident, $count_client:expr, $count_source:expr, $client_id:expr, $now:expr, $limits:expr, $source_digest:expr, $max_per_source:expr) => {{
        use $crate::storage::client_requests::BoundRefused;
        let (of_client,): (i64,) =
            sqlx::query_as($count_client).bind($client_id).bind($now).fetch_one(&mut *$tx).await?;
        if of_client >= $limits.max_per_client {
            BoundRefused::ClientLimit
        } else if let Some(digest) = $source_digest {
            let (of_source,): (i64,) =
                sqlx::query_as($count_source).bind($client_id).bind(digest).bind($now).fetch_one(&mut *$tx).await?;
            if of_source >= $max_per_source {
                BoundRefused::SourceLimit
            } else {
                BoundRefused::TotalLimit
            }
        } else {
            BoundRefused::TotalLimit
        }
    }};
}

/// Fixes the output of a macro body to `Result<T, StorageError>`, so that `?` converts
/// driver errors and `return Err(StorageError::…)` needs no annotation.
fn body<T, F: Future<Output = Result<T, StorageError>>>(body: F) -> F {
    body
}

/// A new family and its first refresh token, for `insert_family!`.
const INSERT_FAMILY: &str = "INSERT INTO token_families \
     (id, client_id, user_id, sid, scope, auth_time, created_at, last_used_at, absolute_expires_at, dpop_jkt) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)";
const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_digest, family_id, created_at, idle_expires_at) VALUES ($1, $2, $3, $4)";

/// Inserts a new family and its first refresh token inside transaction `$tx`; both
/// `RefreshStore::create_family` and `GrantStore::create_family_for_code` start one.
macro_rules! insert_family {
    ($tx:expr, $family:expr, $token:expr, $idle_expires_at:expr) => {{
        let (family, token) = (&$family, &$token);
        sqlx::query($crate::storage::sql::INSERT_FAMILY)
            .bind(family.id.as_str())
            .bind(family.client_id.as_str())
            .bind(family.user_id.as_str())
            .bind(family.sid.as_str())
            .bind(family.scope.to_string())
            .bind($crate::storage::timestamp::Timestamp::from(family.auth_time))
            .bind($crate::storage::timestamp::Timestamp::from(family.created_at))
            .bind($crate::storage::timestamp::Timestamp::from(family.absolute_expires_at))
            .bind(family.dpop_jkt.as_deref())
            .execute(&mut *$tx)
            .await?;
        sqlx::query($crate::storage::sql::INSERT_REFRESH_TOKEN)
            .bind(token.as_str())
            .bind(family.id.as_str())
            .bind($crate::storage::timestamp::Timestamp::from(family.created_at))
            .bind($crate::storage::timestamp::Timestamp::from($idle_expires_at))
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Inserts `$events` (Shared Signals, `storage::signals`) and owes each to its streams
/// inside transaction `$tx`: the transaction of the change they report. Evaluates to the
/// number of deliveries owed (the caller wakes waiters after the commit when it is not 0).
macro_rules! owe_events {
    ($tx:expr, $events:expr) => {{
        let mut owed: u64 = 0;
        for event in $events.iter() {
            let event: &$crate::domain::signals::SecurityEvent = event;
            let subject = serde_json::to_string(&event.subject)
                .map_err(|e| $crate::storage::StorageError::Corrupt(e.to_string()))?;
            sqlx::query($crate::storage::sql::signals::INSERT_EVENT)
                .bind(&event.id)
                .bind(event.event_type.uri())
                .bind(event.event_type.mask_bit())
                .bind(subject)
                .bind(event.body.to_string())
                .bind(&event.txn)
                .bind($crate::storage::timestamp::Timestamp::from(event.occurred_at))
                .bind($crate::storage::timestamp::Timestamp::from(event.expires_at))
                .bind(event.stream_id.as_deref())
                .execute(&mut *$tx)
                .await?;
            let issued = $crate::storage::timestamp::Timestamp::from(event.occurred_at);
            let expires = $crate::storage::timestamp::Timestamp::from(event.expires_at);
            let done = match &event.stream_id {
                None => {
                    sqlx::query($crate::storage::sql::signals::OWE_TO_SUBSCRIBERS)
                        .bind(&event.id)
                        .bind(issued)
                        .bind(expires)
                        .bind(event.event_type.mask_bit())
                        .execute(&mut *$tx)
                        .await?
                }
                Some(stream) => {
                    sqlx::query($crate::storage::sql::signals::OWE_TO_STREAM)
                        .bind(&event.id)
                        .bind(issued)
                        .bind(expires)
                        .bind(stream)
                        .execute(&mut *$tx)
                        .await?
                }
            };
            owed += done.rows_affected();
        }
        if owed > 0 {
            $crate::storage::sql::signals::NotifyReplicas::notify_replicas(&mut $tx).await?;
        }
        owed
    }};
}

macro_rules! session_columns {
    () => {
        "sid, user_id, auth_time, created_at, last_seen_at, expires_at"
    };
}

mod access_tokens;
#[macro_use]
mod backchannel;
mod client_requests;
mod device;
mod dpop;
mod grants;
mod kept;
mod refresh;
mod revocations;
mod sessions;
mod signals;
mod sqlite_files;
mod standing;
mod writer;

/// The database, as one of its two kinds.
enum Backend {
    /// Reads go through `kept`, over a pool of `max_connections` (in WAL mode they never
    /// wait for the writer), some of whose connections it keeps between reads (see
    /// `kept`); every statement that writes goes through `writer`, which owns the one
    /// writer connection and the thread that drives it.
    /// Refresh rotations wait in `rotations` to go to the writer several at a time.
    /// Standing checks wait in `standing` to go to a reader several at a time.
    Sqlite {
        kept: kept::Kept<sqlx::Sqlite>,
        writer: writer::Writer,
        rotations: std::sync::Arc<refresh::RotationQueue>,
        standing: standing::StandingQueue,
    },
    /// One pool for everything (`kept.pool()`): PostgreSQL serves concurrent writers
    /// itself. Reads go through `kept`, which keeps some of its connections between reads;
    /// writes take the pool from it ([`kept::Kept::pool_for_write`]).
    /// Refresh rotations and standing checks wait in `rotations` and `standing` to go to
    /// PostgreSQL several at a time.
    Postgres {
        kept: kept::Kept<sqlx::Postgres>,
        rotations: std::sync::Arc<refresh::PostgresRotations>,
        standing: standing::StandingQueue,
    },
}

pub struct SqlStorage {
    backend: Backend,
    /// Wakes long polls and the push dispatcher when SETs are owed (`SignalStore`).
    events: signals::EventsSignal,
}

// Column lists are macros rather than `const`s because `concat!` takes only literals:
// each SQL text that uses one is then a constant too, built at compile time.
macro_rules! client_columns {
    () => {
        "id, name, token_endpoint_auth_method, secret_digest, grant_types, scopes, audiences, served_audiences, \
         may_introspect_any, redirect_uris, post_logout_redirect_uris, is_first_party, always_issue_refresh_token, \
         require_pushed_authorization_requests, jwks, jwks_uri, dpop_bound_access_tokens, backchannel_logout_uri, \
         backchannel_logout_session_required, web_origins, first_party_spa, created_at, disabled_at, \
         access_token_format"
    };
}
macro_rules! user_columns {
    () => {
        "id, username, email, email_verified, name, password_hash, created_at, updated_at, disabled_at"
    };
}
macro_rules! key_columns {
    () => {
        "kid, algorithm, state, encrypted_private_key, public_jwk, created_at, activated_at, retired_at"
    };
}

/// The `web_origins` column: the registered list, or NULL when they are derived from the
/// redirect URIs (and so follow them).
fn stored_web_origins(client: &Client) -> Option<Json<Vec<&str>>> {
    client.web_origins_explicit.then(|| Json(client.web_origins.iter().map(|o| o.as_str()).collect()))
}

fn conflict_as(error: StorageError, what: &'static str) -> StorageError {
    match &error {
        StorageError::Database(sqlx::Error::Database(db)) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => error,
    }
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(10);

/// `PRAGMA cache_size` of each SQLite read connection: 256 KiB (negative: KiB), against
/// SQLite's default of 2 MiB, which the writer keeps. Why: each connection's page cache
/// grows to its size and stays there, and with the default 32 readers that is up to 64 MiB
/// that fills slowly: under the soak's steady token load the process grew by 2 MiB a
/// minute for the whole half hour, all of it SQLite's page caches (heaptrack;
/// bench/README.md finding 14). A memory bound is what an operator plans for, and the
/// readers' point lookups need the upper levels of a few B-trees, not megabytes; the OS
/// caches the file. So: at most 2 MiB + 256 KiB × `database.max_connections` of SQLite
/// page cache.
const READ_CACHE_SIZE: &str = "-256";

/// Pool settings both backends share. sqlx pings every connection before handing it out
/// by default: a second round trip for every query, which on PostgreSQL doubled the
/// database work of a refresh-token rotation. Tessera pings only connections that sat
/// idle, where a restarted or failed-over server is most likely to have closed them.
fn pool_options<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new().test_before_acquire(false).before_acquire(|connection, meta| {
        Box::pin(async move {
            if meta.idle_for >= PING_AFTER_IDLE {
                sqlx::Connection::ping(connection).await?;
            }
            Ok(true)
        })
    })
}

impl SqlStorage {
    pub async fn connect(url: &DatabaseUrl, settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let backend = match url {
            DatabaseUrl::Sqlite { options, path } => {
                if let Some(path) = path {
                    sqlite_files::prepare(path)?;
                }
                let options = options.clone().busy_timeout(settings.sqlite_busy_timeout.0);
                let open = |max: u32, options: sqlx::sqlite::SqliteConnectOptions| {
                    pool_options::<sqlx::Sqlite>()
                        .max_connections(max)
                        .acquire_timeout(settings.acquire_timeout.0)
                        .connect_with(options)
                };
                let failed = || {
                    format!("cannot open the SQLite database {url}: check the setting `database_url` (TESSERA_DATABASE_URL) and the directory's permissions")
                };
                // The writer's pool has exactly one connection (see `writer`). An in-memory
                // database exists per connection, so there it is the only one, which then
                // also does the reads.
                let writes = open(1, options.clone()).await.with_context(failed)?;
                let kept = match path {
                    Some(_) => {
                        let options = options.clone().pragma("cache_size", READ_CACHE_SIZE);
                        let reads = open(settings.max_connections, options).await.with_context(failed)?;
                        kept::Kept::new(reads, settings.max_connections, false, PING_AFTER_IDLE)
                    }
                    None => kept::Kept::new(writes.clone(), 1, true, PING_AFTER_IDLE),
                };
                let writer = writer::Writer::start(writes).context("cannot start the SQLite writer thread")?;
                Backend::Sqlite { kept, writer, rotations: Default::default(), standing: Default::default() }
            }
            DatabaseUrl::Postgres { options, .. } => {
                // The driver's error chain, scrubbed of the URL's secrets: no driver
                // message is trusted not to echo a connection parameter.
                let scrubbed = |error: sqlx::Error| {
                    let mut text = error.to_string();
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        let cause_text = cause.to_string();
                        if !text.contains(&cause_text) {
                            text = format!("{text}: {cause_text}");
                        }
                        source = cause.source();
                    }
                    anyhow::anyhow!(url.scrub(&text))
                };
                let pool = pool_options::<sqlx::Postgres>()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(settings.acquire_timeout.0)
                    .connect_with(options.clone())
                    .await
                    .map_err(scrubbed)
                    .with_context(|| format!("cannot connect to PostgreSQL at {url}: check the setting `database_url` (TESSERA_DATABASE_URL) and that the server is running and reachable"))?;
                Backend::Postgres {
                    kept: kept::Kept::new(pool, settings.max_connections, false, PING_AFTER_IDLE),
                    rotations: Default::default(),
                    standing: Default::default(),
                }
            }
        };
        Ok(Self { backend, events: signals::EventsSignal::new() })
    }

    /// Applies pending migrations from `migrations/<backend>/` (embedded at build time).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Sqlite { kept, .. } => sqlx::migrate!("./migrations/sqlite").run(kept.pool()).await,
            Backend::Postgres { kept, .. } => sqlx::migrate!("./migrations/postgres").run(kept.pool()).await,
        }
        .context("running database migrations")
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { kept, writer, .. } => {
                writer.close().await;
                kept.close().await
            }
            Backend::Postgres { kept, .. } => kept.close().await,
        }
    }
}

#[async_trait]
impl ClientStore for SqlStorage {
    async fn insert_client(&self, client: &Client) -> Result<(), StorageError> {
        let sql = concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $22)"
        );
        on_writer!(self, [client], pool => {
            let grant_types: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
            sqlx::query(sql)
                .bind(client.id.as_str())
                .bind(&client.name)
                .bind(client.auth_method.as_str())
                .bind(client.secret_digest.as_ref().map(SecretDigest::as_str))
                .bind(Json(&grant_types))
                .bind(client.scopes.to_string())
                .bind(Json(&client.audiences))
                .bind(Json(&client.served_audiences))
                .bind(client.may_introspect_any)
                .bind(Json(&client.redirect_uris))
                .bind(Json(&client.post_logout_redirect_uris))
                .bind(client.is_first_party)
                .bind(client.always_issue_refresh_token)
                .bind(client.require_pushed_authorization_requests)
                .bind(match &client.keys {
                    Some(KeySource::Jwks(jwks)) => Some(jwks.as_str()),
                    _ => None,
                })
                .bind(match &client.keys {
                    Some(KeySource::Uri(uri)) => Some(uri.as_str()),
                    _ => None,
                })
                .bind(client.dpop_bound_access_tokens)
                .bind(client.backchannel_logout_uri.as_deref())
                .bind(client.backchannel_logout_session_required)
                .bind(stored_web_origins(client))
                .bind(client.first_party_spa)
                .bind(Timestamp::from(client.created_at))
                .bind(client.disabled_at.map(Timestamp::from))
                .bind(client.access_token_format.as_str())
                .execute(pool)
                .await?;
            Ok(())
        })
        .map_err(|e| conflict_as(e, "client id"))
    }

    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StorageError> {
        let sql = concat!("SELECT ", client_columns!(), " FROM clients WHERE id = $1");
        let row: Option<ClientRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(id.as_str()).fetch_optional(pool).await?))?;
        row.map(Client::try_from).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StorageError> {
        let sql = concat!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, id");
        let rows: Vec<ClientRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql).fetch_all(pool).await?))?;
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn list_clients_page(&self, after: Option<&ClientId>, limit: i64) -> Result<Vec<Client>, StorageError> {
        // Row values compare (created_at, id) as a pair, in both engines; the anchor's
        // values are read in the same statement, so no timestamp travels in a cursor.
        let first = concat!("SELECT ", client_columns!(), " FROM clients ORDER BY created_at, id LIMIT $1");
        let next = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE (created_at, id) > (SELECT created_at, id FROM clients WHERE id = $1) \
             ORDER BY created_at, id LIMIT $2"
        );
        let rows: Vec<ClientRow> = on_pool!(self, pool => Ok(match after {
            None => sqlx::query_as(first).bind(limit).fetch_all(pool).await?,
            Some(after) => sqlx::query_as(next).bind(after.as_str()).bind(limit).fetch_all(pool).await?,
        }))?;
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn client_revision(&self, id: &ClientId) -> Result<Option<i64>, StorageError> {
        let sql = "SELECT revision FROM clients WHERE id = $1";
        on_pool!(self, pool => Ok(sqlx::query_scalar(sql).bind(id.as_str()).fetch_optional(pool).await?))
    }

    async fn update_client(&self, client: &Client, revision: i64, now: DateTime<Utc>) -> Result<bool, StorageError> {
        let sql = "UPDATE clients SET name = $2, scopes = $3, audiences = $4, served_audiences = $5, \
                   may_introspect_any = $6, redirect_uris = $7, post_logout_redirect_uris = $8, is_first_party = $9, \
                   always_issue_refresh_token = $10, require_pushed_authorization_requests = $11, \
                   dpop_bound_access_tokens = $12, web_origins = $13, first_party_spa = $14, \
                   updated_at = $15, backchannel_logout_uri = $16, backchannel_logout_session_required = $17, \
                   access_token_format = $19, revision = revision + 1 WHERE id = $1 AND revision = $18";
        on_writer!(self, [client], pool => {
            let done = sqlx::query(sql)
                .bind(client.id.as_str())
                .bind(&client.name)
                .bind(client.scopes.to_string())
                .bind(Json(&client.audiences))
                .bind(Json(&client.served_audiences))
                .bind(client.may_introspect_any)
                .bind(Json(&client.redirect_uris))
                .bind(Json(&client.post_logout_redirect_uris))
                .bind(client.is_first_party)
                .bind(client.always_issue_refresh_token)
                .bind(client.require_pushed_authorization_requests)
                .bind(client.dpop_bound_access_tokens)
                .bind(stored_web_origins(client))
                .bind(client.first_party_spa)
                .bind(Timestamp::from(now))
                .bind(client.backchannel_logout_uri.as_deref())
                .bind(client.backchannel_logout_session_required)
                .bind(revision)
                .bind(client.access_token_format.as_str())
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn set_client_secret(
        &self,
        id: &ClientId,
        digest: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE clients SET secret_digest = $2, updated_at = $3 WHERE id = $1";
        on_writer!(self, [id, digest], pool => {
            let done = sqlx::query(sql)
                .bind(id.as_str()).bind(digest.as_str()).bind(Timestamp::from(now))
                .execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

#[async_trait]
impl UserStore for SqlStorage {
    async fn insert_user(&self, user: &User) -> Result<(), StorageError> {
        let sql = concat!("INSERT INTO users (", user_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        on_writer!(self, [user], pool => {
            sqlx::query(sql)
                .bind(user.id.as_str())
                .bind(user.username.as_str())
                .bind(&user.email)
                .bind(user.email_verified)
                .bind(&user.name)
                .bind(&user.password_hash)
                .bind(Timestamp::from(user.created_at))
                .bind(Timestamp::from(user.updated_at))
                .bind(user.disabled_at.map(Timestamp::from))
                .execute(pool)
                .await?;
            Ok(())
        })
        .map_err(|e| conflict_as(e, "username"))
    }

    async fn find_user_by_username(&self, username: &Username) -> Result<Option<User>, StorageError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(username.as_str()).fetch_optional(pool).await?))?;
        row.map(User::try_from).transpose()
    }

    async fn find_user_by_id(&self, id: &UserId) -> Result<Option<User>, StorageError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let row: Option<UserRow> =
            on_pool!(self, pool => Ok(sqlx::query_as(sql).bind(id.as_str()).fetch_optional(pool).await?))?;
        row.map(User::try_from).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>, StorageError> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users ORDER BY username");
        let rows: Vec<UserRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql).fetch_all(pool).await?))?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn list_users_page(&self, after: Option<&Username>, limit: i64) -> Result<Vec<User>, StorageError> {
        let first = concat!("SELECT ", user_columns!(), " FROM users ORDER BY username LIMIT $1");
        let next = concat!("SELECT ", user_columns!(), " FROM users WHERE username > $1 ORDER BY username LIMIT $2");
        let rows: Vec<UserRow> = on_pool!(self, pool => Ok(match after {
            None => sqlx::query_as(first).bind(limit).fetch_all(pool).await?,
            Some(after) => sqlx::query_as(next).bind(after.as_str()).bind(limit).fetch_all(pool).await?,
        }))?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn user_revision(&self, id: &UserId) -> Result<Option<i64>, StorageError> {
        let sql = "SELECT revision FROM users WHERE id = $1";
        on_pool!(self, pool => Ok(sqlx::query_scalar(sql).bind(id.as_str()).fetch_optional(pool).await?))
    }

    async fn update_user_profile(
        &self,
        id: &UserId,
        email: Option<&str>,
        name: Option<&str>,
        email_verified: bool,
        revision: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE users SET email = $2, name = $3, updated_at = $4, revision = revision + 1, \
                   email_verified = $6 WHERE id = $1 AND revision = $5";
        // Owned copies: `on_writer!` copies borrowed references, not options of them.
        let (email, name) = (email.map(str::to_owned), name.map(str::to_owned));
        on_writer!(self, [id], pool => {
            let done = sqlx::query(sql)
                .bind(id.as_str()).bind(email.as_deref()).bind(name.as_deref()).bind(Timestamp::from(now))
                .bind(revision)
                .bind(email_verified)
                .execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

#[async_trait]
impl KeyStore for SqlStorage {
    async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StorageError> {
        let sql = concat!("SELECT ", key_columns!(), " FROM signing_keys ORDER BY created_at, kid");
        let rows: Vec<SigningKeyRow> = on_pool!(self, pool => Ok(sqlx::query_as(sql).fetch_all(pool).await?))?;
        rows.into_iter().map(StoredKey::try_from).collect()
    }

    async fn insert_signing_key(&self, key: &StoredKey) -> Result<bool, StorageError> {
        // ON CONFLICT without a target covers both the kid and the one-current-key index.
        let sql = concat!(
            "INSERT INTO signing_keys (",
            key_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        );
        on_writer!(self, [key], pool => {
            let done = sqlx::query(sql)
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(key.state.as_str())
                .bind(&key.encrypted_private_key)
                .bind(Json(&key.public_jwk))
                .bind(Timestamp::from(key.created_at))
                .bind(key.activated_at.map(Timestamp::from))
                .bind(key.retired_at.map(Timestamp::from))
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn promote_next_key(
        &self,
        current_kid: &str,
        next_kid: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let now = Timestamp::from(now);
        on_writer!(self, [current_kid, next_kid], pool => {
            let mut tx = pool.begin().await?;
            let retired = sqlx::query("UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE kid = $1 AND state = 'current'")
                .bind(current_kid).bind(now).execute(&mut *tx).await?.rows_affected();
            let activated = sqlx::query("UPDATE signing_keys SET state = 'current', activated_at = $2 WHERE kid = $1 AND state = 'next'")
                .bind(next_kid).bind(now).execute(&mut *tx).await?.rows_affected();
            if retired != 1 || activated != 1 {
                return Ok(false); // the transaction is dropped: rolled back
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn delete_signing_key(&self, kid: &str, state: KeyState) -> Result<bool, StorageError> {
        let sql = "DELETE FROM signing_keys WHERE kid = $1 AND state = $2";
        on_writer!(self, [kid], pool => {
            let done = sqlx::query(sql).bind(kid).bind(state.as_str()).execute(pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

#[async_trait]
impl HealthCheck for SqlStorage {
    async fn ping(&self) -> Result<(), StorageError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    async fn close(&self) {
        SqlStorage::close(self).await
    }

    fn pool_state(&self) -> crate::storage::PoolState {
        match &self.backend {
            Backend::Sqlite { kept, writer, .. } => crate::storage::PoolState {
                open: kept.pool().size(),
                idle: kept.pool().num_idle(),
                kept: kept.count(),
                writes_queued: Some(writer.queued()),
            },
            Backend::Postgres { kept, .. } => crate::storage::PoolState {
                open: kept.pool().size(),
                idle: kept.pool().num_idle(),
                kept: kept.count(),
                writes_queued: None,
            },
        }
    }
}

#[cfg(test)]
pub(in crate::storage::sql) mod tests {
    use super::*;
    use crate::config::{Lifetime, Window};
    use sqlx::Connection;

    /// Settings for a test's own database.
    pub(in crate::storage::sql) fn settings(max_connections: u32) -> DatabaseSettings {
        DatabaseSettings {
            max_connections,
            acquire_timeout: Lifetime(std::time::Duration::from_secs(10)),
            sqlite_busy_timeout: Lifetime(std::time::Duration::from_secs(5)),
            client_cache_ttl: Window(std::time::Duration::ZERO),
            password: None,
            password_file: None,
        }
    }

    /// The test database's server, as in `tests/`: required in CI, else skipped (`None`).
    pub(in crate::storage::sql) fn postgres_url() -> Option<String> {
        match std::env::var("TESSERA_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var_os("CI").is_some() => panic!("TESSERA_TEST_POSTGRES_URL is not set in CI"),
            _ => {
                eprintln!("skipped: TESSERA_TEST_POSTGRES_URL is not set");
                None
            }
        }
    }

    /// A fresh, migrated PostgreSQL database named `prefix_<pid>_<uuid>`: the storage, its
    /// name and its URL; `None` where the tests skip PostgreSQL. [`drop_postgres`] drops it.
    pub(in crate::storage::sql) async fn fresh_postgres(prefix: &str) -> Option<(SqlStorage, String, String)> {
        let admin = postgres_url()?;
        let name = format!("{prefix}_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await.unwrap();
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), ""), |(base, query)| (base, query));
        let base = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        let raw_url = format!("{base}/{name}{query}");
        let url = DatabaseUrl::parse(&raw_url).unwrap();
        let storage = SqlStorage::connect(&url, &settings(8)).await.unwrap();
        storage.migrate().await.unwrap();
        Some((storage, name, raw_url))
    }

    /// Closes `storage` and drops its database, made by [`fresh_postgres`].
    pub(in crate::storage::sql) async fn drop_postgres(storage: SqlStorage, name: &str) {
        storage.close().await;
        let admin = postgres_url().expect("set");
        let mut connection = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut connection).await.unwrap();
    }

    /// A restart of PostgreSQL breaks every kept connection at once: the first read after
    /// it fails, and the ones after it get connections the pool tested or opened.
    #[tokio::test]
    async fn after_its_connections_are_cut_one_read_fails_and_the_next_ones_work() {
        let Some(admin) = postgres_url() else { return };
        let name = format!("tessera_kept_{}", std::process::id());
        let separator = if admin.contains('?') { '&' } else { '?' };
        let url = DatabaseUrl::parse(&format!("{admin}{separator}application_name={name}")).unwrap();
        let storage = SqlStorage::connect(&url, &settings(8)).await.unwrap();
        let Backend::Postgres { kept, .. } = &storage.backend else { panic!("a PostgreSQL URL") };
        kept::tests::keep(kept, 2).await;
        assert_eq!(kept.count(), 2);
        let mut other = sqlx::PgConnection::connect(&admin).await.unwrap();
        let cut: Vec<bool> =
            sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
                .bind(&name)
                .fetch_all(&mut other)
                .await
                .unwrap();
        assert_eq!(cut, [true, true]);
        assert!(storage.ping().await.is_err(), "the read on a cut connection fails");
        assert_eq!(kept.count(), 0, "and the other kept one goes back to be tested");
        for _ in 0..3 {
            storage.ping().await.expect("then reads get working connections");
        }
        storage.close().await;
    }

    #[tokio::test]
    async fn sqlite_readers_keep_a_small_page_cache_and_the_writer_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::parse(&format!("sqlite://{}/t.db?mode=rwc", dir.path().display())).unwrap();
        let settings = settings(2);
        let storage = SqlStorage::connect(&url, &settings).await.unwrap();
        let Backend::Sqlite { kept, writer, .. } = &storage.backend else { panic!("a SQLite URL") };
        let cache_size = "PRAGMA cache_size";
        let read: i64 = sqlx::query_scalar(cache_size).fetch_one(kept.pool()).await.unwrap();
        assert_eq!(read.to_string(), READ_CACHE_SIZE);
        let written: i64 = writer
            .run(move |pool| async move { Ok(sqlx::query_scalar(cache_size).fetch_one(&pool).await?) })
            .await
            .unwrap();
        assert_eq!(written, -2000, "SQLite's default: 2 MiB");
    }
}
