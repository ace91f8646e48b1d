//! The cached JWK Set, kept current the way HTTP caching says, and refetched on an
//! unknown `kid` no more than once per interval.
//!
//! Reading a key is a read lock and an `Arc` clone. All fetches are serialised by one
//! async mutex, so concurrent requests never fetch the same thing twice, and a failed
//! fetch never removes keys: the old set stays until a fetch succeeds.

use crate::http::{Fetched, HttpFetcher};
use crate::jwk::{parse_jwk_set, KeyMap, VerifyingKey};
use crate::{Algorithm, VerifyError};
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
    current: RwLock<Arc<KeySet>>,
    /// Held for the duration of every fetch.
    fetch_lock: tokio::sync::Mutex<FetchState>,
    is_background_refresh_pending: AtomicBool,
}

/// One fetched JWK Set and its HTTP validators.
struct KeySet {
    /// Incremented by every fetch, successful or not.
    generation: u64,
    keys: Arc<KeyMap>,
    etag: Option<String>,
    /// When to revalidate: the end of `max-age`, or after a failed fetch, the end of
    /// the back-off.
    refresh_at: Instant,
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
    ) -> Result<Arc<Self>, VerifyError> {
        let (body, etag, fresh_for) = match fetcher.get(&jwks_uri, None).await {
            Ok(Fetched::Body { body, etag, fresh_for }) => (body, etag, fresh_for),
            // Only conditional requests accept 304, so this arm is an `Err` in practice.
            Ok(Fetched::NotModified { .. }) => {
                return Err(VerifyError::KeySetUnavailable(format!("{jwks_uri}: HTTP 304")))
            }
            Err(reason) => return Err(VerifyError::KeySetUnavailable(reason)),
        };
        let keys = parse_jwk_set(&body, &algorithms)
            .map_err(|e| VerifyError::KeySetUnavailable(format!("{jwks_uri}: {e}")))?;
        if keys.is_empty() {
            tracing::warn!(%jwks_uri, "the JWK Set has no key this verifier can use");
        }
        let set = KeySet {
            generation: 0,
            keys: Arc::new(keys),
            etag,
            refresh_at: refresh_at(fresh_for, min_refetch_interval),
        };
        Ok(Arc::new(Self {
            jwks_uri,
            fetcher,
            algorithms,
            min_refetch_interval,
            current: RwLock::new(Arc::new(set)),
            fetch_lock: tokio::sync::Mutex::new(FetchState { last_unknown_kid_fetch: None }),
            is_background_refresh_pending: AtomicBool::new(false),
        }))
    }

    /// The key published as `kid`. When the set is stale it is revalidated in the
    /// background while the current keys keep serving; an unknown `kid` waits for a
    /// refetch, unless one already ran within `min_refetch_interval`.
    pub async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<VerifyingKey>, VerifyError> {
        let set = self.snapshot();
        if set.refresh_at <= Instant::now() {
            self.refresh_in_background();
        }
        if let Some(key) = set.keys.get(kid) {
            return Ok(Arc::clone(key));
        }
        self.refetch_for_unknown_kid(kid, set.generation).await
    }

    /// The `kid`s currently known.
    pub fn key_ids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().keys.keys().cloned().collect();
        kids.sort_unstable();
        kids
    }

    fn snapshot(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a whole set: writers only swap the Arc.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn install(&self, set: KeySet) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// `seen` is the generation in which `kid` was not found.
    async fn refetch_for_unknown_kid(&self, kid: &str, seen: u64) -> Result<Arc<VerifyingKey>, VerifyError> {
        let mut state = self.fetch_lock.lock().await;
        // While we waited, another fetch (for another request, or the background
        // refresh) may have completed: its result is as recent as ours would be.
        let current = self.snapshot();
        if current.generation != seen {
            return current.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey);
        }
        // A token can name any kid it likes: without this limit, each forged one would
        // cost the issuer a request.
        if state.last_unknown_kid_fetch.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return Err(VerifyError::UnknownKey);
        }
        state.last_unknown_kid_fetch = Some(Instant::now());
        tracing::debug!(jwks_uri = %self.jwks_uri, "a token names an unknown kid; refetching the JWK Set");
        self.fetch_holding_lock().await;
        self.snapshot().keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
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
            Fetched::NotModified { fresh_for } => Ok(KeySet {
                generation,
                keys: Arc::clone(&old.keys),
                etag: old.etag.clone(),
                refresh_at: refresh_at(fresh_for, self.min_refetch_interval),
            }),
            Fetched::Body { body, etag, fresh_for } => Ok(KeySet {
                generation,
                keys: Arc::new(parse_jwk_set(&body, &self.algorithms)?),
                etag,
                refresh_at: refresh_at(fresh_for, self.min_refetch_interval),
            }),
        });
        match outcome {
            Ok(set) => self.install(set),
            Err(reason) => {
                tracing::warn!(jwks_uri = %self.jwks_uri, reason, "JWK Set refresh failed; keeping the known keys");
                // Retry no sooner than the refetch interval: a down issuer must not
                // turn every request into a fetch attempt.
                self.install(KeySet {
                    generation,
                    keys: Arc::clone(&old.keys),
                    etag: old.etag.clone(),
                    refresh_at: Instant::now() + self.min_refetch_interval,
                });
            }
        }
    }
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
