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
