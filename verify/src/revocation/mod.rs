//! Revocation through OpenID Shared Signals (the `revocations` feature): the verifier is an
//! SSF 1.0 receiver with poll delivery (RFC 8936), and refuses what the issuer revoked.
//!
//! At build time the verifier reads the transmitter's metadata (SSF §7), gets an access
//! token with its client credentials, creates its stream (§8.1.1.1) and polls once, so it
//! starts with the revocations the issuer still holds for new streams. A background task
//! then long-polls, verifies each Security Event Token, applies it to a bounded deny set,
//! and acknowledges only what it applied; it renews its token, creates a new stream when
//! the transmitter has deleted its own, backs off on errors, and asks for verification
//! events (§8.1.4) as a heartbeat. `Verifier::verify` looks the token up in the deny set
//! after every other check, and fails closed (or open) when the feed has been lost for too
//! long.

mod deny;
mod feed;
mod set;
mod transmitter;

use crate::clock::Clock;
use crate::discovery::Provider;
use crate::key_cache::KeyCache;
use crate::{BuildError, Claims, RevocationError, VerifyError};
use deny::DenySet;
use feed::Feed;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const DEFAULT_MAX_SILENCE: Duration = Duration::from_secs(60);
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Tessera's long polls last 30 s unless configured otherwise; the margin covers the rest.
const DEFAULT_LONG_POLL_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Longer than Tessera's default access-token lifetime (5 minutes) by far: an entry that
/// outlives its tokens only costs memory, one that dies first lets a revoked token through.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What [`Verifier::verify`](crate::Verifier::verify) does once the revocation feed has
/// been lost for longer than [`Revocations::max_silence`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailMode {
    /// Refuse every token with [`VerifyError::RevocationsUnavailable`] (503 in the
    /// actix-web extractor) until the feed is back: a revoked token is never accepted
    /// because the feed was down. The default.
    #[default]
    Closed,
    /// Keep verifying with the revocations already known: the service stays up while
    /// the issuer is unreachable, and a token revoked meanwhile is accepted until the feed
    /// is back (or the token expires).
    Open,
}

/// The revocation feed of a verifier (the `revocations` feature): OpenID Shared Signals
/// (SSF 1.0) with poll delivery (RFC 8936), as a receiver with its own client credentials.
/// Given to [`VerifierBuilder::revocations`](crate::VerifierBuilder::revocations).
///
/// The client must be registered at the issuer with the scopes `ssf.manage` and
/// `ssf.read` and the `client_credentials` grant. Each verifier (each process) has its own
/// stream.
///
/// ```no_run
/// # async fn run() -> Result<(), tessera_verify::BuildError> {
/// use std::time::Duration;
/// use tessera_verify::{FailMode, Revocations, Verifier};
///
/// let verifier = Verifier::builder("https://id.example.com")
///     .audience("https://invoices.example.com")
///     .revocations(
///         Revocations::poll("invoices-revocations", "client secret")
///             .fail_mode(FailMode::Closed)
///             .max_silence(Duration::from_secs(60)),
///     )
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "pass it to VerifierBuilder::revocations"]
pub struct Revocations {
    pub(crate) client_id: String,
    client_secret: String,
    pub(crate) fail_mode: FailMode,
    pub(crate) max_silence: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) long_poll_timeout: Duration,
    pub(crate) stream_id: Option<String>,
    pub(crate) max_entries: usize,
    pub(crate) token_lifetime: Duration,
    pub(crate) description: Option<String>,
}

impl Revocations {
    /// Poll delivery (RFC 8936) with the client `client_id` and its secret, sent as
    /// `client_secret_basic` (RFC 6749 §2.3.1) to the issuer's token endpoint.
    pub fn poll(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            fail_mode: FailMode::Closed,
            max_silence: DEFAULT_MAX_SILENCE,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            long_poll_timeout: DEFAULT_LONG_POLL_TIMEOUT,
            stream_id: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            description: None,
        }
    }

    /// What `verify` does once the feed has been lost for longer than
    /// [`max_silence`](Self::max_silence): [`FailMode::Closed`] unless set.
    pub fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// How long the feed may be lost before [`FailMode`] applies: 60 seconds unless set.
    /// The feed is lost while polls fail (a poll that hangs fails at
    /// [`long_poll_timeout`](Self::long_poll_timeout)), while a verification event it
    /// asked for has not come back, while the transmitter has paused or disabled the
    /// stream, while revocations cannot be applied (the deny set is full, or their key is
    /// unavailable), and once the feed has stopped.
    pub fn max_silence(mut self, max_silence: Duration) -> Self {
        self.max_silence = max_silence;
        self
    }

    /// How often to ask for a verification event (SSF §8.1.4.2), whose `state` must come
    /// back on the stream within the same interval: 30 seconds unless set, and never
    /// more often than the stream's `min_verification_interval`. A transmitter without a
    /// `verification_endpoint` gets no heartbeat; then only failing polls make the feed
    /// lost.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// How long one long poll may take before it counts as failed: 60 seconds unless set.
    /// It must exceed the transmitter's long-poll wait (Tessera's `ssf.long_poll_timeout`,
    /// 30 seconds by default).
    pub fn long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.long_poll_timeout = timeout;
        self
    }

    /// Reuse this stream, if the transmitter still has it, rather than create one: for a
    /// service that keeps its stream id across restarts
    /// ([`RevocationStatus::stream_id`]). A stream the transmitter no longer knows is
    /// replaced by a new one.
    pub fn stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// The most entries the deny set holds: 100 000 unless set. A revocation that does not
    /// fit is left unacknowledged and the feed counts as lost until pruning makes room;
    /// no entry is ever evicted early.
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries;
        self
    }

    /// The longest lifetime of the issuer's access tokens: a deny-set entry is kept this
    /// long (plus the verifier's leeway) after its event, when every token it can match
    /// has expired. One hour unless set; Tessera's `tokens.access_token_ttl` is 5 minutes
    /// by default. Never set it below the issuer's.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The stream's `description` (SSF §8.1.1), for the issuer's operators:
    /// `tessera-verify for <first audience>` unless set.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    fn check(&self) -> Result<(), BuildError> {
        if self.client_id.is_empty() {
            return Err(BuildError::Configuration("the revocation feed needs a client id"));
        }
        let durations = [self.max_silence, self.heartbeat_interval, self.long_poll_timeout, self.token_lifetime];
        if durations.iter().any(Duration::is_zero) {
            return Err(BuildError::Configuration(
                "max_silence, heartbeat_interval, long_poll_timeout and token_lifetime must be positive",
            ));
        }
        if self.max_entries == 0 {
            return Err(BuildError::Configuration("the deny set needs room for at least one entry"));
        }
        Ok(())
    }
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("fail_mode", &self.fail_mode)
            .field("max_silence", &self.max_silence)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("long_poll_timeout", &self.long_poll_timeout)
            .field("stream_id", &self.stream_id)
            .field("max_entries", &self.max_entries)
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

/// The health of the revocation feed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedState {
    /// Polls succeed, verification events come back, and every revocation received has
    /// been applied.
    Healthy,
    /// Something is wrong since `since`; `reason` says what (fixed text, for logs and
    /// health endpoints). Past [`Revocations::max_silence`] the [`FailMode`] applies.
    Degraded {
        /// When the feed was last known to work.
        since: SystemTime,
        /// What is wrong.
        reason: &'static str,
    },
    /// The feed has stopped: [`Verifier::shutdown_revocations`](crate::Verifier::shutdown_revocations)
    /// was called, or the runtime that ran it shut down. It does not restart.
    Stopped {
        /// When it stopped.
        since: SystemTime,
    },
}

/// A report on the revocation feed, for a service's health endpoint:
/// [`Verifier::revocation_status`](crate::Verifier::revocation_status).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RevocationStatus {
    /// Whether the feed is healthy.
    pub state: FeedState,
    /// True while `verify` refuses every token with
    /// [`VerifyError::RevocationsUnavailable`]: the feed is lost for longer than allowed
    /// and the verifier fails closed. A service may report itself unready then.
    pub is_refusing: bool,
    /// The stream polled, when there is one. Pass it to [`Revocations::stream_id`] to
    /// reuse it after a restart.
    pub stream_id: Option<String>,
    /// Entries in the deny set.
    pub deny_entries: usize,
    /// The most entries the deny set holds ([`Revocations::max_entries`]).
    pub deny_capacity: usize,
    /// The last CAEP or RISC event applied.
    pub last_event: Option<AppliedEvent>,
    /// When the last poll succeeded.
    pub last_poll_at: Option<SystemTime>,
}

/// A Security Event Token the feed applied and acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedEvent {
    /// The SET's `jti`.
    pub jti: String,
    /// The event type URI, such as
    /// `https://schemas.openid.net/secevent/caep/event-type/session-revoked`.
    pub event_type: String,
    /// When it was applied.
    pub applied_at: SystemTime,
}

/// What `verify` and the feed task share: the deny set and the feed's health.
pub(crate) struct Shared {
    pub deny: DenySet,
    clock: Arc<dyn Clock>,
    fail_mode: FailMode,
    /// `max_silence` plus one tick of the feed, in milliseconds: while healthy the feed
    /// advances `healthy_through_ms` once per tick, so it may lag that much.
    refuse_after_ms: u64,
    base: Instant,
    /// Milliseconds since `base` until which the feed was known to be healthy. Advanced by
    /// the feed task while healthy; so a task that stops or stalls stops advancing it too.
    healthy_through_ms: AtomicU64,
    status: Mutex<StatusState>,
}

#[derive(Default)]
struct StatusState {
    degraded: Option<(Instant, &'static str)>,
    stopped_at: Option<Instant>,
    stream_id: Option<String>,
    last_event: Option<(String, String, Instant)>,
    last_poll_at: Option<Instant>,
}

impl Shared {
    fn new(config: &Revocations, clock: Arc<dyn Clock>, tick: Duration) -> Self {
        Self {
            deny: DenySet::new(config.max_entries),
            clock,
            fail_mode: config.fail_mode,
            refuse_after_ms: millis(config.max_silence + tick),
            base: Instant::now(),
            healthy_through_ms: AtomicU64::new(0),
            status: Mutex::new(StatusState::default()),
        }
    }

    /// After the token's other checks: revoked, or not checkable while failing closed.
    pub fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        if self.deny.denies(claims) {
            return Err(VerifyError::Revoked);
        }
        if self.is_refusing() {
            return Err(VerifyError::RevocationsUnavailable);
        }
        Ok(())
    }

    fn is_refusing(&self) -> bool {
        self.fail_mode == FailMode::Closed
            && self.now_ms().saturating_sub(self.healthy_through_ms.load(Ordering::Acquire)) > self.refuse_after_ms
    }

    fn now_ms(&self) -> u64 {
        millis(self.base.elapsed())
    }

    fn ms_of(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.base))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusState> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the feed every tick and whenever it recovers.
    fn mark_healthy(&self) {
        let mut status = self.lock();
        if status.stopped_at.is_some() {
            return;
        }
        status.degraded = None;
        self.healthy_through_ms.store(self.now_ms(), Ordering::Release);
    }

    /// The feed has been unhealthy since `since`, for `reason`.
    fn mark_degraded(&self, since: Instant, reason: &'static str) {
        let mut status = self.lock();
        let since = match status.degraded {
            Some((earlier, _)) => earlier.min(since),
            None => since,
        };
        status.degraded = Some((since, reason));
        self.healthy_through_ms.fetch_min(self.ms_of(since), Ordering::AcqRel);
    }

    fn mark_stopped(&self) {
        let mut status = self.lock();
        if status.stopped_at.is_none() {
            status.stopped_at = Some(Instant::now());
        }
        self.healthy_through_ms.fetch_min(self.now_ms(), Ordering::AcqRel);
    }

    fn set_stream(&self, stream_id: Option<String>) {
        self.lock().stream_id = stream_id;
    }

    fn polled(&self) {
        self.lock().last_poll_at = Some(Instant::now());
    }

    fn applied(&self, jti: &str, event_type: &str) {
        self.lock().last_event = Some((jti.to_owned(), event_type.to_owned(), Instant::now()));
    }

    /// The report of [`Verifier::revocation_status`](crate::Verifier::revocation_status).
    pub fn status(&self) -> RevocationStatus {
        let now = Instant::now();
        let wall_now = self.clock.now();
        let wall = |at: Instant| wall_now.checked_sub(now.saturating_duration_since(at)).unwrap_or(wall_now);
        let status = self.lock();
        let state = match (status.stopped_at, status.degraded) {
            (Some(at), _) => FeedState::Stopped { since: wall(at) },
            (None, Some((since, reason))) => FeedState::Degraded { since: wall(since), reason },
            (None, None) => FeedState::Healthy,
        };
        RevocationStatus {
            state,
            is_refusing: self.is_refusing(),
            stream_id: status.stream_id.clone(),
            deny_entries: self.deny.len(),
            deny_capacity: self.deny.capacity(),
            last_event: status.last_event.as_ref().map(|(jti, event_type, at)| AppliedEvent {
                jti: jti.clone(),
                event_type: event_type.clone(),
                applied_at: wall(*at),
            }),
            last_poll_at: status.last_poll_at.map(wall),
        }
    }

    /// `count` synthetic entries for `test_util::fill_deny_set`, a day from expiry.
    #[cfg(feature = "test-util")]
    pub fn fill_for_tests(&self, count: usize) -> usize {
        use deny::{Denial, Inserted};
        use std::sync::atomic::AtomicUsize;
        // Fresh names on every call, so that each call adds entries.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let first = NEXT.fetch_add(count, Ordering::Relaxed);
        let now_ms = unix_ms(self.clock.now());
        let entries: Vec<(Denial, i64)> = (first..first + count)
            .map(|i| {
                let denial = match i % 5 {
                    0 => Denial::Token(format!("synthetic-jti-{i}")),
                    1 => Denial::Session(format!("synthetic-sid-{i}")),
                    2 => Denial::Family(format!("synthetic-fid-{i}")),
                    3 => Denial::User { sub: format!("synthetic-user-{i}"), until_ms: now_ms },
                    _ => Denial::Client { client_id: format!("synthetic-client-{i}"), until_ms: now_ms },
                };
                (denial, now_ms + 24 * 3600 * 1000)
            })
            .collect();
        self.deny.insert_all(&entries, now_ms).into_iter().filter(|outcome| *outcome == Inserted::Applied).count()
    }
}

/// A time as milliseconds since the Unix epoch (negative before it).
pub(crate) fn unix_ms(at: SystemTime) -> i64 {
    match at.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The running feed, owned by the verifier: dropping the last clone of the verifier
/// stops it.
pub(crate) struct Handle {
    pub shared: Arc<Shared>,
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<Result<(), RevocationError>>>>,
}

impl Handle {
    /// Stops the feed and deletes its stream at the transmitter.
    pub async fn shutdown(&self) -> Result<(), RevocationError> {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(task) = task else { return Ok(()) };
        self.stop.notify_one();
        match task.await {
            Ok(result) => result,
            // It panicked; its guard marked the feed stopped.
            Err(_) => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
    }
}

/// What the feed needs from the verifier being built.
pub(crate) struct FeedContext<'a> {
    pub client: reqwest::Client,
    pub http_timeout: Duration,
    pub issuer: &'a str,
    pub audience: &'a str,
    pub provider: &'a Provider,
    pub keys: Arc<KeyCache>,
    pub clock: Arc<dyn Clock>,
    pub leeway: Duration,
    pub min_refetch_interval: Duration,
}

/// Sets the feed up (metadata, token, stream, a first poll) and starts its task on the
/// current Tokio runtime.
pub(crate) async fn start(config: Revocations, context: FeedContext<'_>) -> Result<Handle, BuildError> {
    config.check()?;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Err(BuildError::Configuration("the revocation feed needs a Tokio runtime"));
    };
    let tick = feed::tick_for(config.max_silence);
    let shared = Arc::new(Shared::new(&config, Arc::clone(&context.clock), tick));
    let feed = Feed::start(config, context, Arc::clone(&shared), tick).await?;
    let stop = Arc::new(Notify::new());
    let task = runtime.spawn(feed.run(Arc::clone(&stop)));
    Ok(Handle { shared, stop, task: Mutex::new(Some(task)) })
}
