//! Tessera's opaque access tokens, verified through the issuer's token introspection
//! endpoint (RFC 7662) with a short, bounded cache of active answers.
//!
//! An opaque token says nothing by itself: only the issuer can tell whether it is live, so
//! each new token costs one request. The cache keeps that to one request per token per
//! `cache_ttl`; the bound on requests in flight keeps a flood of made-up tokens (each of
//! which must be asked about, since an inactive answer is never cached) from opening
//! unbounded connections to the issuer.

use crate::claims::{Introspected, IntrospectionParseError};
use crate::http::{basic_credentials, read_body};
use crate::policy::{unix_seconds, AccessTokenPolicy};
use crate::{BuildError, Claims, Clock, FetchError, VerifyError};
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// What every Tessera opaque access token starts with.
const OPAQUE_PREFIX: &str = "tat_";
/// 32 random bytes in base64url without padding.
const OPAQUE_SECRET_LEN: usize = 43;
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);
/// A revoked token stays accepted for as long as its answer is cached: no longer than this.
const MAX_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_CACHE_CAPACITY: usize = 10_000;
const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// Largest introspection response read: a token's claims are a few hundred bytes.
const MAX_RESPONSE_LEN: usize = 64 * 1024;
/// The longest a verification waits for a free request slot: past it the token is answered
/// unavailable at once. Short, so that a flood of made-up opaque tokens holding every slot
/// costs real requests a quick 503 rather than a queue as long as the HTTP timeout.
const MAX_SLOT_WAIT: Duration = Duration::from_millis(250);
/// How often, at most, a full cache is swept for expired answers: a sweep walks every
/// entry under the lock, so it must not run on every insert.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Whether `token` has the shape of a Tessera opaque access token: `tat_` and the
/// base64url encoding, without padding, of exactly 32 bytes. Only such tokens are sent to
/// the introspection endpoint; anything else is never shown to it.
pub(crate) fn is_opaque_token(token: &str) -> bool {
    let Some(secret) = token.strip_prefix(OPAQUE_PREFIX) else { return false };
    // The length first, so that no long string is ever decoded; the decoder then refuses
    // other characters and a last character with stray bits (a non-canonical encoding).
    secret.len() == OPAQUE_SECRET_LEN && URL_SAFE_NO_PAD.decode(secret).is_ok_and(|bytes| bytes.len() == 32)
}

/// How a [`Verifier`](crate::Verifier) verifies Tessera's opaque access tokens: through
/// token introspection (RFC 7662) with the credentials of a confidential client, given to
/// [`VerifierBuilder::introspection`](crate::VerifierBuilder::introspection).
///
/// The client must be allowed to see the tokens: Tessera reveals a token only to its own
/// client, to a resource server one of whose registered audiences is in the token's `aud`,
/// or to a client registered to introspect any token. To any other it answers
/// `{"active":false}`, and the token is refused as [`VerifyError::Inactive`].
///
/// ```no_run
/// # async fn run() -> Result<(), tessera_verify::BuildError> {
/// use std::time::Duration;
/// use tessera_verify::{Introspection, Verifier};
///
/// let verifier = Verifier::builder("https://id.example.com")
///     .audience("https://invoices.example.com")
///     .introspection(Introspection::new("invoices-api", "its secret").cache_ttl(Duration::from_secs(5)))
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Introspection {
    client_id: String,
    client_secret: String,
    endpoint: Option<String>,
    cache_ttl: Duration,
    cache_capacity: usize,
    max_in_flight: usize,
}

impl Introspection {
    /// Introspects with the client `client_id` and its secret, sent as HTTP Basic
    /// credentials (`client_secret_basic`, RFC 6749 §2.3.1: each form-urlencoded first).
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            endpoint: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// The introspection endpoint: the discovery document's `introspection_endpoint`
    /// (RFC 8414 §2) unless set. Must be an `https` (or `http`) URL.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// How long an active answer is reused: 10 seconds unless set, at most five minutes (a
    /// longer time counts as five minutes), and never past the token's `exp`. A token
    /// revoked at the issuer stays accepted here for up to this long; zero turns the cache
    /// off. Inactive answers are never cached.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl.min(MAX_CACHE_TTL);
        self
    }

    /// How many active answers are kept at most: 10 000 unless set (a few MB). When the
    /// cache is full, expired answers are dropped; if none has expired, the new answer is
    /// not cached (its token is introspected again next time) rather than the cache grow.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// How many introspection requests may be in flight at once: 16 unless set; at least
    /// one. A verification that needs one more waits for a free slot at most 250 ms (or
    /// the HTTP timeout, if shorter), then fails with
    /// [`VerifyError::IntrospectionUnavailable`]: never a long queue.
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max;
        self
    }
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("endpoint", &self.endpoint)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// The introspection client of a verifier: endpoint, credentials, cache and request bound.
pub(crate) struct Introspector {
    client: reqwest::Client,
    timeout: Duration,
    endpoint: Url,
    /// `Basic …`, marked sensitive.
    credentials: HeaderValue,
    cache: Cache,
    in_flight: tokio::sync::Semaphore,
    max_in_flight: usize,
    /// Set when the endpoint refused our credentials, so that it is logged once and not
    /// per request; cleared by the next answer that is not a 401.
    is_refused: AtomicBool,
}

impl Introspector {
    /// Checks `settings`; `published` is the discovery document's `introspection_endpoint`.
    pub fn new(
        settings: Introspection,
        published: Option<&str>,
        client: reqwest::Client,
        timeout: Duration,
        issuer_is_https: bool,
    ) -> Result<Self, BuildError> {
        if settings.client_id.is_empty() {
            return Err(BuildError::Configuration("introspection needs a client id"));
        }
        if settings.max_in_flight == 0 {
            return Err(BuildError::Configuration("introspection needs at least one request in flight"));
        }
        let endpoint = settings.endpoint.as_deref().or(published).ok_or(BuildError::IntrospectionEndpoint(
            "the discovery document has no introspection_endpoint: set Introspection::endpoint",
        ))?;
        let endpoint = Url::parse(endpoint)
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http"))
            .ok_or(BuildError::IntrospectionEndpoint("the introspection endpoint is not an http(s) URL"))?;
        // Our client secret and every token travel to it: never in clear text from an
        // issuer that is itself served over https (a development issuer on http may).
        if issuer_is_https && endpoint.scheme() != "https" {
            return Err(BuildError::IntrospectionEndpoint(
                "the issuer is https, so the introspection endpoint must be",
            ));
        }
        let credentials = basic_credentials(&settings.client_id, &settings.client_secret)
            .ok_or(BuildError::Configuration("the introspection credentials cannot be sent"))?;
        Ok(Self {
            client,
            timeout,
            endpoint,
            credentials,
            cache: Cache::new(settings.cache_ttl, settings.cache_capacity),
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight),
            max_in_flight: settings.max_in_flight,
            is_refused: AtomicBool::new(false),
        })
    }

    /// The claims of the opaque `token`, from the cache or the endpoint, checked by
    /// `policy` (issuer, audience, times) as of `clock`, which also decides when a cached
    /// answer passes the token's `exp`.
    ///
    /// Concurrent requests with the same uncached token each introspect it (within the
    /// bound on requests in flight): no single-flight, which would make every request with
    /// that token wait on the slowest answer, for a saving only a burst of one token gets.
    pub async fn verify(
        &self,
        token: &str,
        policy: &AccessTokenPolicy,
        clock: &dyn Clock,
    ) -> Result<Claims, VerifyError> {
        let key = CacheKey::of(token);
        if let Some(claims) = self.cache.get(&key, clock.now()) {
            policy.check_claims(&claims, clock.now())?;
            return Ok(claims);
        }
        let claims = self.introspect(token).await?;
        let now = clock.now();
        // RFC 7662 §4 leaves the audience to the resource server; the issuer and the times
        // are checked as for a JWT, so an answer is never trusted further than a token.
        policy.check_claims(&claims, now)?;
        self.cache.insert(key, &claims, now);
        Ok(claims)
    }

    /// One introspection request (RFC 7662 §2.1), once a slot is free.
    async fn introspect(&self, token: &str) -> Result<Claims, VerifyError> {
        let endpoint = &self.endpoint;
        let unavailable = |error: FetchError| VerifyError::IntrospectionUnavailable(error.with_method("POST"));
        let wait = self.timeout.min(MAX_SLOT_WAIT);
        let Ok(Ok(_permit)) = tokio::time::timeout(wait, self.in_flight.acquire()).await else {
            return Err(unavailable(FetchError::busy(endpoint, self.max_in_flight)));
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let mut response = self
            .client
            .post(endpoint.clone())
            .timeout(self.timeout)
            .header(AUTHORIZATION, self.credentials.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| unavailable(FetchError::request(endpoint, e)))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            // §2.1: our credentials are refused. Not the token's fault, and the same for
            // every request until someone fixes the configuration: say it once.
            if !self.is_refused.swap(true, Ordering::Relaxed) {
                tracing::warn!(%endpoint, "the introspection endpoint refuses this verifier's client credentials");
            }
            return Err(unavailable(FetchError::status(endpoint, status.as_u16())));
        }
        self.is_refused.store(false, Ordering::Relaxed);
        if !status.is_success() {
            return Err(unavailable(FetchError::status(endpoint, status.as_u16())));
        }
        let body = read_body(&mut response, endpoint, MAX_RESPONSE_LEN).await.map_err(unavailable)?;
        match Claims::from_introspection(&body) {
            Ok(Introspected::Active(claims)) => Ok(*claims),
            Ok(Introspected::Inactive) => Err(VerifyError::Inactive),
            Err(IntrospectionParseError::NotJson(error)) => Err(unavailable(FetchError::invalid(endpoint, error))),
            Err(IntrospectionParseError::Token(error)) => Err(error),
        }
    }

    /// The endpoint in use, for `Debug`.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }
}

/// SHA-256 of a token: the cache never holds a token, which would be a bearer credential
/// in memory dumps for as long as it is cached.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CacheKey([u8; 32]);

impl CacheKey {
    fn of(token: &str) -> Self {
        let mut key = [0; 32];
        key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
        Self(key)
    }
}

/// Active answers, each for `ttl` and never past its token's `exp`, at most `capacity`.
struct Cache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<CacheKey, Entry>>,
    /// When a full cache was last swept (under the `entries` lock).
    last_sweep: Mutex<Option<Instant>>,
}

struct Entry {
    claims: Claims,
    /// Monotonic, so that a clock moved in a test or by NTP does not stretch the TTL.
    cached_at: Instant,
}

impl Entry {
    /// `now` is the verifier's clock, which `exp` is measured against.
    fn is_alive(&self, ttl: Duration, now: SystemTime) -> bool {
        self.cached_at.elapsed() < ttl && unix_seconds(now) < self.claims.exp
    }
}

impl Cache {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()), last_sweep: Mutex::new(None) }
    }

    fn get(&self, key: &CacheKey, now: SystemTime) -> Option<Claims> {
        // A poisoned lock still holds whole entries: each is inserted or removed at once.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        if entry.is_alive(self.ttl, now) {
            return Some(entry.claims.clone());
        }
        entries.remove(key);
        None
    }

    fn insert(&self, key: CacheKey, claims: &Claims, now: SystemTime) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        let entry = Entry { claims: claims.clone(), cached_at: Instant::now() };
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let mut last_sweep = self.last_sweep.lock().unwrap_or_else(PoisonError::into_inner);
            if last_sweep.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
                return;
            }
            *last_sweep = Some(Instant::now());
            entries.retain(|_, entry| entry.is_alive(self.ttl, now));
            // Refusing to cache costs this token a request next time; growing would let a
            // holder of many live tokens take the memory.
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(key, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn token(fill: char) -> String {
        format!("tat_{}", fill.to_string().repeat(42) + "A")
    }

    #[test]
    fn an_https_issuer_introspects_over_https_only() {
        let build = |endpoint: &str, issuer_is_https: bool| {
            let settings = Introspection::new("api", "secret").endpoint(endpoint);
            Introspector::new(settings, None, reqwest::Client::new(), Duration::from_secs(1), issuer_is_https)
        };
        assert!(matches!(build("http://id.example.com/introspect", true), Err(BuildError::IntrospectionEndpoint(_))));
        assert!(build("https://id.example.com/introspect", true).is_ok());
        assert!(build("http://127.0.0.1:8080/introspect", false).is_ok(), "a development issuer on http");
    }

    #[test]
    fn only_the_exact_opaque_shape_is_opaque() {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let real = format!("tat_{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(real.len(), 47);
        assert!(is_opaque_token(&real));
        assert!(is_opaque_token(&token('-')) && is_opaque_token(&token('_')));
        for not in [
            String::new(),
            "tat_".into(),
            real[..46].to_owned(),
            format!("{real}A"),
            format!("{real}="),
            real.replacen("tat_", "TAT_", 1),
            real.replacen("tat_", "trt_", 1),
            format!("tat_{}", "A".repeat(42) + "B"), // stray bits in the last character
            format!("tat_{}", "+".repeat(43)),       // base64, not base64url
            format!("tat_{}", "A".repeat(42) + "é"),
            "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
        ] {
            assert!(!is_opaque_token(&not), "{not}");
        }
    }

    fn claims(exp: i64) -> Claims {
        let json = json!({ "iss": "i", "sub": "s", "aud": "a", "client_id": "c", "iat": 1, "exp": exp, "jti": "j" });
        Claims::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn the_cache_key_is_a_digest_of_the_token() {
        let key = CacheKey::of("tat_x");
        assert_eq!(key.0.as_slice(), digest(&SHA256, b"tat_x").as_ref());
        assert!(key != CacheKey::of("tat_y"));
    }

    #[test]
    fn an_entry_dies_at_exp_whatever_the_ttl() {
        let cache = Cache::new(MAX_CACHE_TTL, 10);
        let key = CacheKey::of("t");
        cache.insert(key, &claims(1000), at(900));
        assert!(cache.get(&key, at(999)).is_some());
        assert!(cache.get(&key, at(1000)).is_none(), "dead at exp");
        assert_eq!(cache.len(), 0, "and dropped");
    }

    #[test]
    fn an_entry_dies_after_the_ttl() {
        let cache = Cache::new(Duration::from_millis(30), 10);
        let key = CacheKey::of("t");
        cache.insert(key, &claims(1000), at(900));
        assert!(cache.get(&key, at(900)).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&key, at(900)).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_refuses_to_grow() {
        let cache = Cache::new(MAX_CACHE_TTL, 2);
        cache.insert(CacheKey::of("old"), &claims(100), at(50));
        cache.insert(CacheKey::of("live"), &claims(1000), at(50));
        // Full; "old" has expired by 200, so it makes room.
        cache.insert(CacheKey::of("new"), &claims(1000), at(200));
        assert!(cache.get(&CacheKey::of("new"), at(200)).is_some());
        assert_eq!(cache.len(), 2);
        // Full of live entries: the newcomer is not cached, and nothing is evicted.
        cache.insert(CacheKey::of("more"), &claims(1000), at(200));
        assert!(cache.get(&CacheKey::of("more"), at(200)).is_none());
        assert!(cache.get(&CacheKey::of("live"), at(200)).is_some());
        assert_eq!(cache.len(), 2);
        // A token already cached may be refreshed even when full.
        cache.insert(CacheKey::of("live"), &claims(1000), at(300));
        assert!(cache.get(&CacheKey::of("live"), at(300)).is_some());
    }

    #[test]
    fn a_zero_ttl_or_capacity_caches_nothing() {
        for cache in [Cache::new(Duration::ZERO, 10), Cache::new(MAX_CACHE_TTL, 0)] {
            cache.insert(CacheKey::of("t"), &claims(1000), at(1));
            assert_eq!(cache.len(), 0);
        }
    }

    #[test]
    fn the_ttl_is_capped_and_the_secret_never_printed() {
        let settings = Introspection::new("rs", "hunter2").cache_ttl(Duration::from_secs(3600));
        assert_eq!(settings.cache_ttl, MAX_CACHE_TTL);
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
