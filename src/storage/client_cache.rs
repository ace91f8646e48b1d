//! Client registrations as read from the database, reused for `database.client_cache_ttl`.
//!
//! Every `/token`, `/revoke` and `/introspect` request authenticates its client
//! (RFC 6749 §2.3.1, §3.2.1). Reading the registration each time cost one database round
//! trip per token, about a fifth of the server's CPU in `client_credentials` on SQLite and
//! more on PostgreSQL (bench/README.md, Findings 2); with the cache, issuing a
//! `client_credentials` token does no I/O at all.
//!
//! How stale an entry may be is the one trade-off, and it is bounded by the TTL:
//! - a change made elsewhere (the `tessera client …` CLI, another replica) reaches this
//!   replica when its entry expires, at most `ttl` later: a disabled client, or a
//!   rotated-out secret, keeps working for at most that long;
//! - a secret that does not match the cached digest is checked once more against the
//!   database before it is refused (see `oauth::client_auth`), so a newly rotated secret
//!   works at once;
//! - `ttl = 0` turns the cache off: every lookup reads the database.
//!
//! Entries are timed with the server's [`Clock`], so tests move time forward instead of
//! sleeping; a clock that steps backwards expires them rather than prolonging them.

use super::{Storage, StorageError};
use crate::clock::Clock;
use crate::domain::client::{Client, ClientId};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// More distinct clients than this in one TTL (a scan of made-up ids cannot fill it:
/// unknown ids are never cached) and the expired entries are dropped, or all of them.
const MAX_ENTRIES: usize = 10_000;

pub struct ClientCache {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    entries: RwLock<HashMap<ClientId, Entry>>,
}

#[derive(Clone)]
struct Entry {
    client: Arc<Client>,
    fetched_at: DateTime<Utc>,
}

/// A client and whether it came from the cache (and so may be up to a TTL old).
pub struct Lookup {
    pub client: Arc<Client>,
    pub from_cache: bool,
}

impl ClientCache {
    pub fn new(storage: Arc<dyn Storage>, clock: Arc<dyn Clock>, ttl: std::time::Duration) -> Self {
        let ttl = Duration::from_std(ttl).unwrap_or(Duration::MAX);
        Self { storage, clock, ttl, entries: RwLock::new(HashMap::new()) }
    }

    /// The client, from the cache while its entry is younger than the TTL.
    pub async fn get(&self, id: &ClientId) -> Result<Option<Lookup>, StorageError> {
        if let Some(client) = self.cached(id) {
            return Ok(Some(Lookup { client, from_cache: true }));
        }
        Ok(self.reload(id).await?.map(|client| Lookup { client, from_cache: false }))
    }

    /// Reads the client from the database and replaces its entry (or drops it, when the
    /// client no longer exists).
    pub async fn reload(&self, id: &ClientId) -> Result<Option<Arc<Client>>, StorageError> {
        let fetched_at = self.clock.now();
        let client = self.storage.find_client(id).await?.map(Arc::new);
        if self.ttl > Duration::zero() {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            match &client {
                Some(client) => {
                    if entries.len() >= MAX_ENTRIES && !entries.contains_key(id) {
                        let now = self.clock.now();
                        entries.retain(|_, entry| self.is_fresh(entry, now));
                        if entries.len() >= MAX_ENTRIES {
                            entries.clear();
                        }
                    }
                    entries.insert(id.clone(), Entry { client: client.clone(), fetched_at });
                }
                None => {
                    entries.remove(id);
                }
            }
        }
        Ok(client)
    }

    /// Drops the client's entry: the next lookup reads the database. The admin API calls
    /// it after every change it makes, so this replica sees the change at once.
    pub fn forget(&self, id: &ClientId) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    fn cached(&self, id: &ClientId) -> Option<Arc<Client>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(id)?;
        self.is_fresh(entry, self.clock.now()).then(|| entry.client.clone())
    }

    fn is_fresh(&self, entry: &Entry, now: DateTime<Utc>) -> bool {
        let age = now.signed_duration_since(entry.fetched_at);
        age >= Duration::zero() && age < self.ttl
    }
}

/// Each registered origin, and whether a first-party SPA registered it.
type OriginMap = HashMap<String, bool>;

/// How long the set of every active client's web origins is reused at most.
const ORIGINS_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The web origins of every active client, for CORS preflights (Fetch Standard §4.8).
///
/// A preflight carries no body, so no client is named: it is answered for an origin that
/// any active client registered. Anyone can send one, so each must cost little: the set
/// is read from the database at most once per [`ORIGINS_REFRESH`], by one request while
/// the others wait for it, whatever the number or the origins of the preflights. A new
/// client's origins are answered at most that long after it was registered (at once
/// for a change the admin API made here, which calls [`KnownOrigins::forget`]).
///
/// Timed with the monotonic clock rather than the server's [`Clock`]: a test that stops
/// the clock must not freeze the set.
pub struct KnownOrigins {
    storage: Arc<dyn Storage>,
    /// Each origin, and whether a first-party SPA registered it (its refresh cookie makes
    /// its calls credentialed).
    snapshot: tokio::sync::Mutex<Option<(std::time::Instant, Arc<OriginMap>)>>,
}

impl KnownOrigins {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage, snapshot: tokio::sync::Mutex::new(None) }
    }

    /// `None` when no active client registered `origin` (as a browser serialises it);
    /// else whether a first-party SPA did.
    pub async fn lookup(&self, origin: &str) -> Result<Option<bool>, StorageError> {
        let mut snapshot = self.snapshot.lock().await;
        let origins = match &*snapshot {
            Some((read_at, origins)) if read_at.elapsed() < ORIGINS_REFRESH => origins.clone(),
            _ => {
                let read_at = std::time::Instant::now();
                let mut origins: HashMap<String, bool> = HashMap::new();
                for client in self.storage.list_clients().await?.iter().filter(|c| !c.is_disabled()) {
                    for origin in &client.web_origins {
                        *origins.entry(origin.as_str().to_owned()).or_default() |= client.first_party_spa;
                    }
                }
                let origins = Arc::new(origins);
                *snapshot = Some((read_at, origins.clone()));
                origins
            }
        };
        Ok(origins.get(origin).copied())
    }

    /// Drops the set: the next preflight reads the database.
    pub async fn forget(&self) {
        *self.snapshot.lock().await = None;
    }
}
