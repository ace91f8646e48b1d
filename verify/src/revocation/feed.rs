//! The feed task: long-poll (RFC 8936), verify, apply, acknowledge, repeat.
//!
//! A SET is acknowledged only once applied (or once it is known to need nothing), so a
//! crash or a lost response costs nothing: the transmitter sends again what was not
//! acknowledged. A SET that can never be used is reported in `setErrs` (RFC 8936
//! §2.4.4). One that cannot be used *now* (its key is not known yet, the JWK Set is
//! unreachable, the deny set is full) is left alone, so it comes again; the feed then
//! waits before polling, since the transmitter answers a poll at once while it owes SETs.
//!
//! Health: the feed is degraded while any of the problems below holds, since the moment
//! the first one began; `Shared` turns that into the fail mode's answer.

use super::deny::{Denial, Inserted};
use super::set::{self, Checked, Event, Retry, Set, SetError, SetPolicy};
use super::transmitter::{PollAnswer, StreamConfig, Transmitter, Verification};
use super::{FeedContext, Revocations, Shared};
use crate::key_cache::KeyCache;
use crate::{BuildError, RevocationError};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;

/// SETs asked for per poll (RFC 8936 §2.2 `maxEvents`).
const MAX_EVENTS: u32 = 100;
/// Polls at build time, at most, while the transmitter has more (10 000 SETs).
const MAX_INITIAL_POLLS: usize = 100;
/// Verification states awaited at once; older ones are forgotten.
const MAX_STATES: usize = 8;
/// `txn`s whose event time is remembered, for `account-disabled` (see `account_disabled_at`).
const MAX_TXNS: usize = 10_000;
/// The first wait after a failure; it doubles up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What can make the feed unhealthy, most telling first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    NoStream,
    PollFailing,
    StreamNotEnabled,
    DenySetFull,
    KeysUnavailable,
    VerificationOverdue,
}

impl Problem {
    const ALL: [Problem; 6] = [
        Self::NoStream,
        Self::PollFailing,
        Self::StreamNotEnabled,
        Self::DenySetFull,
        Self::KeysUnavailable,
        Self::VerificationOverdue,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn reason(self) -> &'static str {
        match self {
            Self::NoStream => "the stream cannot be created",
            Self::PollFailing => "polling the transmitter fails",
            Self::StreamNotEnabled => "the transmitter paused or disabled the stream",
            Self::DenySetFull => "the deny set is full",
            Self::KeysUnavailable => "SETs cannot be verified: their key is unavailable",
            Self::VerificationOverdue => "a verification event did not come back",
        }
    }
}

/// How often the feed prunes, checks its heartbeat and tells `Shared` it is healthy: at
/// most a quarter of `max_silence`, so a healthy feed never looks silent.
pub(super) fn tick_for(max_silence: Duration) -> Duration {
    (max_silence / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

struct Settings {
    description: String,
    heartbeat_interval: Duration,
    long_poll_timeout: Duration,
    /// How long a deny-set entry lives after its event, in ms.
    retention_ms: i64,
    min_refetch_interval: Duration,
    tick: Duration,
    max_backoff: Duration,
}

pub(super) struct Feed {
    /// Shared with the poll in flight, so the feed can do other things meanwhile.
    transmitter: Arc<Transmitter>,
    keys: Arc<KeyCache>,
    shared: Arc<Shared>,
    settings: Settings,
    random: SystemRandom,
    stream: Option<(StreamConfig, SetPolicy)>,
    progress: Progress,
}

/// What the feed learns as it goes.
#[derive(Default)]
struct Progress {
    /// To acknowledge with the next poll.
    acks: Vec<String>,
    /// To report with the next poll: `jti → {err, description}`.
    errors: Map<String, Value>,
    /// SETs whose key was unknown, since when: refused once a refetch had its chance.
    unknown_key_since: HashMap<String, Instant>,
    /// `txn → event_timestamp` (ms) of recent events, oldest first.
    txn_times: HashMap<String, i64>,
    txn_order: VecDeque<String>,
    /// Verification states asked for and not yet echoed, oldest first.
    states: VecDeque<(String, Instant)>,
    next_heartbeat: Option<Instant>,
    problems: u8,
    /// Since when the feed has had a problem.
    troubled_since: Option<Instant>,
    /// Consecutive failed or retried polls, for the back-off.
    failures: u32,
}

impl Feed {
    /// The transmitter, a token, the stream, and a first poll.
    pub async fn start(
        config: Revocations,
        context: FeedContext<'_>,
        shared: Arc<Shared>,
        tick: Duration,
    ) -> Result<Self, BuildError> {
        let transmitter = Transmitter::discover(
            context.client,
            context.http_timeout,
            context.issuer,
            &context.provider.jwks_uri,
            context.provider.token_endpoint.as_deref(),
            &config.client_id,
            &config.client_secret,
        )
        .await?;
        // Wrong credentials stop the service at startup, with a clear error.
        transmitter.renew_token().await?;
        let settings = Settings {
            description: config
                .description
                .clone()
                .unwrap_or_else(|| format!("tessera-verify for {}", context.audience)),
            heartbeat_interval: config.heartbeat_interval,
            long_poll_timeout: config.long_poll_timeout,
            retention_ms: i64::try_from((config.token_lifetime + context.leeway).as_millis()).unwrap_or(i64::MAX),
            min_refetch_interval: context.min_refetch_interval,
            tick,
            max_backoff: (config.max_silence / 2).clamp(Duration::from_secs(1), MAX_BACKOFF),
        };
        let mut feed = Self {
            transmitter: Arc::new(transmitter),
            keys: context.keys,
            shared,
            settings,
            random: SystemRandom::new(),
            stream: None,
            progress: Progress::default(),
        };
        let reused = match &config.stream_id {
            Some(id) => feed.transmitter.read_stream(id).await?,
            None => None,
        };
        let stream = match reused {
            Some(stream) => stream,
            None => feed.transmitter.create_stream(&feed.settings.description).await?,
        };
        feed.use_stream(stream);
        feed.initial_poll().await?;
        feed.report();
        Ok(feed)
    }

    fn use_stream(&mut self, stream: StreamConfig) {
        tracing::info!(stream_id = %stream.stream_id, "polling the Shared Signals stream for revocations");
        let policy = SetPolicy {
            issuer: self.shared_issuer(),
            audience: stream.audience.clone(),
            stream_id: stream.stream_id.clone(),
            critical_members: self.transmitter.critical_members.clone(),
        };
        self.shared.set_stream(Some(stream.stream_id.clone()));
        // What was owed to acknowledge or report concerned the old stream.
        self.progress.acks.clear();
        self.progress.errors.clear();
        self.progress.states.clear();
        self.progress.unknown_key_since.clear();
        self.progress.next_heartbeat = self.transmitter.can_verify().then(Instant::now);
        self.stream = Some((stream, policy));
        // A new stream is enabled, whatever the old one was.
        self.set_problem(Problem::StreamNotEnabled, false, Instant::now());
    }

    fn shared_issuer(&self) -> String {
        self.transmitter.issuer.clone()
    }

    /// Short polls until the transmitter has nothing more: a verifier built now knows the
    /// revocations a new stream is owed.
    async fn initial_poll(&mut self) -> Result<(), RevocationError> {
        for _ in 0..MAX_INITIAL_POLLS {
            let Some((stream, _)) = &self.stream else { return Ok(()) };
            let url = stream.poll_url.clone();
            let request = self.poll_request(true);
            let timeout = self.settings.long_poll_timeout;
            let Some(answer) = self.transmitter.poll(&url, &request, timeout).await? else {
                return Err(RevocationError::Stream("the transmitter lost the stream it just created"));
            };
            self.shared.polled();
            self.progress.acks.clear();
            self.progress.errors.clear();
            let is_more = answer.more_available;
            self.process(answer).await;
            if !is_more {
                break;
            }
        }
        Ok(())
    }

    /// RFC 8936 §2.2: what to acknowledge, what to report, and how to wait.
    fn poll_request(&self, return_immediately: bool) -> Value {
        let mut request = json!({ "maxEvents": MAX_EVENTS, "returnImmediately": return_immediately });
        if !self.progress.acks.is_empty() {
            request["ack"] = json!(self.progress.acks);
        }
        if !self.progress.errors.is_empty() {
            request["setErrs"] = Value::Object(self.progress.errors.clone());
        }
        request
    }

    /// The feed's life, until `stop` is notified (then it deletes its stream) or the task
    /// is aborted.
    pub async fn run(mut self, stop: Arc<Notify>) -> Result<(), RevocationError> {
        let _stopped = StopGuard(Arc::clone(&self.shared));
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut wait_until: Option<tokio::time::Instant> = None;
        loop {
            if let Some(until) = wait_until.take() {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        _ = tick.tick() => self.on_tick(),
                        _ = stop.notified() => return self.close().await,
                    }
                }
            }
            if self.stream.is_none() {
                match self.transmitter.create_stream(&self.settings.description).await {
                    Ok(stream) => {
                        self.use_stream(stream);
                        self.set_problem(Problem::NoStream, false, Instant::now());
                    }
                    Err(error) => {
                        tracing::warn!(error = %crate::error::Chain(&error), "cannot create a Shared Signals stream");
                        self.set_problem(Problem::NoStream, true, Instant::now());
                        wait_until = Some(self.backoff());
                        continue;
                    }
                }
            }
            let Some((stream, _)) = &self.stream else { continue };
            let url = stream.poll_url.clone();
            let stream_id = stream.stream_id.clone();
            let request = self.poll_request(false);
            let sent_at = Instant::now();
            let outcome = {
                let (transmitter, timeout) = (Arc::clone(&self.transmitter), self.settings.long_poll_timeout);
                let poll = async move { transmitter.poll(&url, &request, timeout).await };
                tokio::pin!(poll);
                loop {
                    let heartbeat_at = self.progress.next_heartbeat.map(tokio::time::Instant::from_std);
                    tokio::select! {
                        outcome = &mut poll => break Some(outcome),
                        _ = tick.tick() => self.on_tick(),
                        _ = sleep_until_some(heartbeat_at) => self.heartbeat(&stream_id).await,
                        _ = stop.notified() => break None,
                    }
                }
            };
            let Some(outcome) = outcome else { return self.close().await };
            match outcome {
                Ok(Some(answer)) => {
                    self.shared.polled();
                    self.progress.acks.clear();
                    self.progress.errors.clear();
                    self.set_problem(Problem::PollFailing, false, sent_at);
                    // When more is available the next long poll answers at once.
                    if self.process(answer).await {
                        wait_until = Some(self.backoff());
                    } else {
                        self.progress.failures = 0;
                    }
                }
                Ok(None) => {
                    // The transmitter deleted the stream (inactivity, an operator): a new
                    // one is owed the revocations that still matter.
                    tracing::warn!(%stream_id, "the Shared Signals stream is gone; creating a new one");
                    self.stream = None;
                    self.shared.set_stream(None);
                }
                Err(error) => {
                    tracing::warn!(%stream_id, error = %crate::error::Chain(&error), "polling for revocations failed");
                    self.set_problem(Problem::PollFailing, true, sent_at);
                    wait_until = Some(self.backoff());
                }
            }
        }
    }

    /// Stops: deletes the stream, so it does not count against the receiver's bound.
    async fn close(&mut self) -> Result<(), RevocationError> {
        self.shared.mark_stopped();
        match self.stream.take() {
            Some((stream, _)) => self.transmitter.delete_stream(&stream.stream_id).await,
            None => Ok(()),
        }
    }

    /// When to poll again after a failure: exponential, capped, with jitter so that many
    /// verifiers do not come back all at once.
    fn backoff(&mut self) -> tokio::time::Instant {
        let exponent = self.progress.failures.min(16);
        self.progress.failures = self.progress.failures.saturating_add(1);
        let delay = FIRST_BACKOFF.saturating_mul(1 << exponent).min(self.settings.max_backoff);
        let mut byte = [0u8; 1];
        let jitter = if self.random.fill(&mut byte).is_ok() { f64::from(byte[0]) / 255.0 } else { 1.0 };
        tokio::time::Instant::now() + delay.mul_f64(0.5 + jitter / 2.0)
    }

    fn on_tick(&mut self) {
        let pruned = self.shared.deny.prune(self.now_ms());
        if pruned > 0 {
            tracing::debug!(pruned, "expired revocations pruned");
        }
        let timeout = self.heartbeat_interval();
        if let Some((_, asked_at)) = self.progress.states.front() {
            if asked_at.elapsed() > timeout {
                let asked_at = *asked_at;
                self.set_problem(Problem::VerificationOverdue, true, asked_at);
            }
        }
        if self.progress.problems == 0 {
            self.shared.mark_healthy();
        }
    }

    /// The heartbeat interval, never shorter than the stream allows.
    fn heartbeat_interval(&self) -> Duration {
        let minimum = self.stream.as_ref().map_or(Duration::ZERO, |(s, _)| s.min_verification_interval);
        self.settings.heartbeat_interval.max(minimum)
    }

    fn now_ms(&self) -> i64 {
        super::unix_ms(self.shared.clock.now())
    }

    fn set_problem(&mut self, problem: Problem, is_on: bool, since: Instant) {
        let before = self.progress.problems;
        if is_on {
            self.progress.problems |= problem.bit();
        } else {
            self.progress.problems &= !problem.bit();
        }
        match (before, self.progress.problems) {
            (0, 0) => {}
            (_, 0) => {
                tracing::info!("the revocation feed is healthy again");
                self.progress.troubled_since = None;
            }
            (0, _) => self.progress.troubled_since = Some(since),
            _ => {}
        }
        if before != self.progress.problems {
            self.report();
        }
    }

    fn report(&self) {
        let first = Problem::ALL.into_iter().find(|p| self.progress.problems & p.bit() != 0);
        match (first, self.progress.troubled_since) {
            (Some(problem), Some(since)) => {
                tracing::warn!(reason = problem.reason(), "the revocation feed is degraded");
                self.shared.mark_degraded(since, problem.reason());
            }
            _ => self.shared.mark_healthy(),
        }
    }

    /// Verifies and applies one poll's SETs, and notes what to acknowledge and report.
    /// True when some SETs are left for later.
    async fn process(&mut self, answer: PollAnswer) -> bool {
        let Some((_, policy)) = &self.stream else { return false };
        let policy = policy.clone();
        let mut valid: Vec<Set> = Vec::with_capacity(answer.sets.len());
        let mut is_waiting_for_keys = false;
        let mut is_key_unknown = false;
        for (jti, token) in answer.sets {
            let Value::String(token) = token else {
                self.refuse(jti, SetError { err: "invalid_request", description: "the SET is not a string" });
                continue;
            };
            match set::check(&policy, &self.keys, &jti, &token).await {
                Checked::Valid(set) => {
                    self.progress.unknown_key_since.remove(&jti);
                    valid.push(*set);
                }
                Checked::Refused(error) => self.refuse(jti, error),
                Checked::Retry(Retry::KeysUnavailable) => is_waiting_for_keys = true,
                Checked::Retry(Retry::UnknownKey) => {
                    // The key cache refetches an unknown kid at most once per interval:
                    // only after one has surely run is the key really unknown.
                    let since = *self.progress.unknown_key_since.entry(jti.clone()).or_insert_with(Instant::now);
                    if since.elapsed() > self.settings.min_refetch_interval + Duration::from_secs(1) {
                        self.progress.unknown_key_since.remove(&jti);
                        self.refuse(
                            jti,
                            SetError { err: "invalid_key", description: "the SET is signed with an unknown key" },
                        );
                    } else {
                        is_key_unknown = true;
                    }
                }
            }
        }
        for set in &valid {
            if let (Some(txn), Some(at)) = (&set.txn, set.event_ms) {
                self.remember_txn(txn, at);
            }
        }
        let mut denials = Vec::new();
        let mut owners = Vec::new();
        for (index, set) in valid.iter().enumerate() {
            let denial = match &set.event {
                Event::Revoke(denial) => with_cutoff(denial, set.event_ms.unwrap_or(set.issued_ms)),
                Event::AccountDisabled { sub } => {
                    Denial::User { sub: sub.clone(), until_ms: self.account_disabled_at(set) }
                }
                Event::Verification { state } => {
                    self.verified(set, state.as_deref());
                    continue;
                }
                Event::StreamUpdated { status, reason } => {
                    let is_enabled = status == "enabled";
                    tracing::info!(%status, reason = reason.as_deref().unwrap_or(""), "the transmitter updated the stream");
                    self.set_problem(Problem::StreamNotEnabled, !is_enabled, Instant::now());
                    self.progress.acks.push(set.jti.clone());
                    continue;
                }
                Event::Nothing(why) => {
                    tracing::debug!(jti = %set.jti, event_type = %set.event_type, why, "nothing to revoke");
                    self.progress.acks.push(set.jti.clone());
                    if set::REQUESTED.contains(&set.event_type.as_str()) {
                        self.shared.applied(&set.jti, &set.event_type);
                    }
                    continue;
                }
            };
            let at = set.event_ms.unwrap_or(set.issued_ms);
            denials.push((denial, at.saturating_add(self.settings.retention_ms)));
            owners.push(index);
        }
        let outcomes = self.shared.deny.insert_all(&denials, self.now_ms());
        let mut is_full = false;
        for (outcome, index) in outcomes.into_iter().zip(owners) {
            let set = &valid[index];
            match outcome {
                Inserted::Applied | Inserted::Expired => {
                    tracing::debug!(jti = %set.jti, event_type = %set.event_type, "revocation applied");
                    self.progress.acks.push(set.jti.clone());
                    self.shared.applied(&set.jti, &set.event_type);
                }
                Inserted::Full => is_full = true,
            }
        }
        if is_full {
            tracing::error!(
                capacity = self.shared.deny.capacity(),
                "the deny set is full: revocations wait at the transmitter until expired entries make room"
            );
        }
        let now = Instant::now();
        self.set_problem(Problem::DenySetFull, is_full, now);
        self.set_problem(Problem::KeysUnavailable, is_waiting_for_keys || is_key_unknown, now);
        is_full || is_waiting_for_keys || is_key_unknown
    }

    /// Asks for a verification event with a fresh `state`, which the next polls should
    /// bring back within the heartbeat interval.
    async fn heartbeat(&mut self, stream_id: &str) {
        self.progress.next_heartbeat = Some(Instant::now() + self.heartbeat_interval());
        let mut bytes = [0u8; 16];
        if self.random.fill(&mut bytes).is_err() {
            return;
        }
        let state = URL_SAFE_NO_PAD.encode(bytes);
        match self.transmitter.request_verification(stream_id, &state).await {
            Ok(Verification::Requested) => {
                self.progress.states.push_back((state, Instant::now()));
                while self.progress.states.len() > MAX_STATES {
                    self.progress.states.pop_front();
                }
            }
            Ok(Verification::TooSoon) => tracing::debug!("verification asked for too soon; waiting for the next one"),
            Ok(Verification::NoStream) => tracing::debug!("no stream to verify; the next poll will tell"),
            Err(error) => tracing::warn!(error = %crate::error::Chain(&error), "cannot ask for a verification event"),
        }
    }

    fn refuse(&mut self, jti: String, error: SetError) {
        tracing::warn!(%jti, err = error.err, description = error.description, "refused a SET");
        self.progress.errors.insert(jti, json!({ "err": error.err, "description": error.description }));
    }

    /// A verification event: one this verifier asked for proves the stream delivers; one
    /// with a state it never sent is reported (SSF §8.1.4.1 `invalid_state`).
    fn verified(&mut self, set: &Set, state: Option<&str>) {
        let Some(state) = state else {
            // Transmitter-initiated verification carries no state (§8.1.4.1).
            self.progress.acks.push(set.jti.clone());
            return;
        };
        match self.progress.states.iter().position(|(sent, _)| sent == state) {
            Some(index) => {
                self.progress.states.drain(..=index);
                self.progress.acks.push(set.jti.clone());
                self.set_problem(Problem::VerificationOverdue, false, Instant::now());
            }
            None => self.refuse(
                set.jti.clone(),
                SetError { err: "invalid_state", description: "the state is not one this receiver asked for" },
            ),
        }
    }

    /// RISC's `account-disabled` has no `event_timestamp`. Tessera sends it with a
    /// `session-revoked` of the same user sharing its `txn` (SSF §4.1.9), which has one:
    /// that time when known, else the SET's `iat`. `iat` is later than the event, and much
    /// later for a SET a new stream was seeded with, which only widens the revocation.
    fn account_disabled_at(&self, set: &Set) -> i64 {
        set.event_ms
            .or_else(|| set.txn.as_ref().and_then(|txn| self.progress.txn_times.get(txn).copied()))
            .unwrap_or(set.issued_ms)
    }

    fn remember_txn(&mut self, txn: &str, at: i64) {
        if self.progress.txn_times.insert(txn.to_owned(), at).is_none() {
            self.progress.txn_order.push_back(txn.to_owned());
        }
        while self.progress.txn_order.len() > MAX_TXNS {
            if let Some(oldest) = self.progress.txn_order.pop_front() {
                self.progress.txn_times.remove(&oldest);
            }
        }
    }
}

/// User and client cut-offs are the event's time.
fn with_cutoff(denial: &Denial, at: i64) -> Denial {
    match denial {
        Denial::User { sub, .. } => Denial::User { sub: sub.clone(), until_ms: at },
        Denial::Client { client_id, .. } => Denial::Client { client_id: client_id.clone(), until_ms: at },
        other => other.clone(),
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Marks the feed stopped however the task ends: returned, panicked, or aborted.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.mark_stopped();
    }
}
