//! The cached JWK Set, kept current the way HTTP caching says, and refetched on an
//! unknown `kid` no more than once per interval.
//!
//! Reading a key is a read lock and an `Arc` clone. All fetches are serialised by one
//! async mutex, so concurrent requests never fetch the same thing twice, and a failed
//! fetch never removes keys: the old set stays until a fetch succeeds.

use crate::http::{Fetched, HttpFetcher};
use crate::{Algorithm, FetchError, KeySet, VerifyError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use url::Url;

/// Used when the JWKS response has no `max-age`.
const DEFAULT_FRESHNESS: Duration = Duration::from_secs(5 * 60);
/// Refresh at least daily, whatever `max-age` says, so removed keys do not linger.
const MAX_FRESHNESS: Duration = Duration::from_secs(24 * 60 * 60);

pub(crate) struct KeyCache {
    jwks_uri: Url,
    fetcher: HttpFetcher,
    algorithms: Vec<Algorithm>,
    min_refetch_interval: Duration,
    current: RwLock<Arc<Snapshot>>,
    /// Held for the duration of every fetch.
    fetch_lock: tokio::sync::Mutex<FetchState>,
    is_background_refresh_pending: AtomicBool,
}

/// The keys of the last successful fetch, and what the last fetch attempt said.
struct Snapshot {
    /// Incremented by every fetch, successful or not.
    generation: u64,
    keys: Arc<KeySet>,
    etag: Option<String>,
    /// When to revalidate: the end of `max-age`, or after a failed fetch, the end of
    /// the back-off.
    refresh_at: Instant,
    /// Why the last fetch failed; `None` after a success. While set, a `kid` missing from
    /// `keys` may well be a new key that could not be fetched, not a forged one.
    failure: Option<FetchError>,
}

impl Snapshot {
    /// The keys when they have `kid`; otherwise why not.
    fn keys_with(&self, kid: &str) -> Result<Arc<KeySet>, VerifyError> {
        if self.keys.contains(kid) {
            return Ok(Arc::clone(&self.keys));
        }
        match &self.failure {
            Some(failure) => Err(VerifyError::KeysUnavailable(failure.clone())),
            None => Err(VerifyError::UnknownKey),
        }
    }
}

struct FetchState {
    last_unknown_kid_fetch: Option<Instant>,
}

impl KeyCache {
    /// Fetches the JWK Set once; fails when it cannot.
    pub async fn load(
        jwks_uri: Url,
        fetcher: HttpFetcher,
        algorithms: Vec<Algorithm>,
        min_refetch_interval: Duration,
    ) -> Result<Arc<Self>, FetchError> {
        let (body, etag, fresh_for) = match fetcher.get(&jwks_uri, None).await? {
            Fetched::Body { body, etag, fresh_for } => (body, etag, fresh_for),
            // Only conditional requests accept 304, so this arm is an `Err` in practice.
            Fetched::NotModified { .. } => return Err(FetchError::status(&jwks_uri, 304)),
        };
        let keys = parse(&jwks_uri, &body, &algorithms)?;
        if keys.is_empty() {
            tracing::warn!(%jwks_uri, "the JWK Set has no key this verifier can use");
        }
        let snapshot = Snapshot {
            generation: 0,
            keys: Arc::new(keys),
            etag,
            refresh_at: refresh_at(fresh_for, min_refetch_interval),
            failure: None,
        };
        Ok(Arc::new(Self {
            jwks_uri,
            fetcher,
            algorithms,
            min_refetch_interval,
            current: RwLock::new(Arc::new(snapshot)),
            fetch_lock: tokio::sync::Mutex::new(FetchState { last_unknown_kid_fetch: None }),
            is_background_refresh_pending: AtomicBool::new(false),
        }))
    }

    /// The current keys, which hold `kid`. When the set is stale it is revalidated in
    /// the background while the current keys keep serving; an unknown `kid` waits for a
    /// refetch, unless one already ran within `min_refetch_interval`.
    pub async fn keys_for(self: &Arc<Self>, kid: &str) -> Result<Arc<KeySet>, VerifyError> {
        let snapshot = self.snapshot();
        if snapshot.refresh_at <= Instant::now() {
            self.refresh_in_background();
        }
        if snapshot.keys.contains(kid) {
            return Ok(Arc::clone(&snapshot.keys));
        }
        self.refetch_for_unknown_kid(kid, snapshot.generation).await
    }

    /// The `kid`s currently known.
    pub fn key_ids(&self) -> Vec<String> {
        self.snapshot().keys.key_ids().into_iter().map(str::to_owned).collect()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a whole snapshot: writers only swap the Arc.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn install(&self, snapshot: Snapshot) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }

    /// `seen` is the generation in which `kid` was not found.
    async fn refetch_for_unknown_kid(&self, kid: &str, seen: u64) -> Result<Arc<KeySet>, VerifyError> {
        let mut state = self.fetch_lock.lock().await;
        // While we waited, another fetch (for another request, or the background
        // refresh) may have completed: its result is as recent as ours would be.
        let current = self.snapshot();
        if current.generation != seen {
            return current.keys_with(kid);
        }
        // A token can name any kid it likes: without this limit, each forged one would
        // cost the issuer a request.
        if state.last_unknown_kid_fetch.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return current.keys_with(kid);
        }
        state.last_unknown_kid_fetch = Some(Instant::now());
        tracing::debug!(jwks_uri = %self.jwks_uri, "a token names an unknown kid; refetching the JWK Set");
        self.fetch_holding_lock().await;
        self.snapshot().keys_with(kid)
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.is_background_refresh_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        // Without a Tokio runtime (the caller polls us some other way) the stale set
        // keeps serving; unknown kids still refetch inline.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.is_background_refresh_pending.store(false, Ordering::Release);
            return;
        };
        let cache = Arc::clone(self);
        runtime.spawn(async move {
            let _pending = ClearOnDrop(&cache.is_background_refresh_pending);
            let _state = cache.fetch_lock.lock().await;
            // An unknown kid's refetch may have renewed the set while we waited.
            if cache.snapshot().refresh_at <= Instant::now() {
                cache.fetch_holding_lock().await;
            }
        });
    }

    /// Revalidates the set (conditionally, with its ETag). The caller holds `fetch_lock`.
    async fn fetch_holding_lock(&self) {
        let old = self.snapshot();
        let generation = old.generation.wrapping_add(1);
        let fetched = self.fetcher.get(&self.jwks_uri, old.etag.as_deref()).await;
        let outcome = fetched.and_then(|fetched| match fetched {
            Fetched::NotModified { fresh_for } => Ok(Snapshot {
                generation,
                keys: Arc::clone(&old.keys),
                etag: old.etag.clone(),
                refresh_at: refresh_at(fresh_for, self.min_refetch_interval),
                failure: None,
            }),
            Fetched::Body { body, etag, fresh_for } => Ok(Snapshot {
                generation,
                keys: Arc::new(parse(&self.jwks_uri, &body, &self.algorithms)?),
                etag,
                refresh_at: refresh_at(fresh_for, self.min_refetch_interval),
                failure: None,
            }),
        });
        match outcome {
            Ok(snapshot) => self.install(snapshot),
            Err(failure) => {
                tracing::warn!(
                    jwks_uri = %self.jwks_uri,
                    error = %crate::error::Chain(&failure),
                    "JWK Set refresh failed; keeping the known keys"
                );
                // Retry no sooner than the refetch interval: a down issuer must not
                // turn every request into a fetch attempt.
                self.install(Snapshot {
                    generation,
                    keys: Arc::clone(&old.keys),
                    etag: old.etag.clone(),
                    refresh_at: Instant::now() + self.min_refetch_interval,
                    failure: Some(failure),
                });
            }
        }
    }
}

fn parse(jwks_uri: &Url, body: &[u8], algorithms: &[Algorithm]) -> Result<KeySet, FetchError> {
    KeySet::from_jwks_for(body, algorithms).map_err(|e| FetchError::invalid(jwks_uri, e.0))
}

/// `max-age` bounded below by the refetch interval (so `no-cache` cannot make every
/// request a fetch) and above by a day.
fn refresh_at(fresh_for: Option<Duration>, min_refetch_interval: Duration) -> Instant {
    let fresh_for = fresh_for.unwrap_or(DEFAULT_FRESHNESS).max(min_refetch_interval).min(MAX_FRESHNESS);
    Instant::now() + fresh_for
}

/// Clears the pending flag even if the refresh task panics.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
