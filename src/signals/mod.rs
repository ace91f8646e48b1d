//! The Shared Signals transmitter's machinery below the HTTP endpoints (`ssf`): which
//! events a revocation records (`Emitter`), Security Event Tokens (`set`), and push
//! delivery (`push`); and Back-Channel Logout delivery from its outbox (`backchannel`).

pub mod backchannel;
pub mod push;
pub mod set;

use crate::config::Settings;
use crate::domain::signals::{Cause, EventSource, Reason, Revocation};
use chrono::{DateTime, Duration, Utc};

/// How long after a revocation a verifier may still accept a token it affects, beyond the
/// token's lifetime: the largest clock leeway `tessera-verify` allows (5 minutes).
const VERIFIER_LEEWAY: Duration = Duration::minutes(5);

/// Whether revocations record events, and what they say: the issuer their subjects name
/// and how long they matter (every access token issued before the revocation has expired
/// after the longest access-token lifetime, plus verifiers' leeway).
#[derive(Clone, Debug)]
pub struct Emitter {
    source: EventSource,
    is_enabled: bool,
}

impl Emitter {
    pub fn from_settings(settings: &Settings) -> Self {
        let source = EventSource {
            issuer: settings.issuer.as_str().into(),
            relevance: settings.tokens.access_token_ttl.chrono() + VERIFIER_LEEWAY,
        };
        Self { source, is_enabled: settings.ssf.enabled }
    }

    /// A revocation at `at` for `why`, which records its events when the transmitter is on.
    pub fn revocation(&self, why: Reason, at: DateTime<Utc>) -> Revocation {
        Revocation::new(why, at, self.is_enabled.then(|| self.source.clone()))
    }

    /// The cause of stream-management events (verification, stream updates).
    pub fn stream_cause(&self, now: DateTime<Utc>) -> Cause {
        self.source.cause(now)
    }

    /// How far back a new stream is owed events: those that may still matter.
    pub fn seed_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.source.relevance
    }

    pub fn is_enabled(&self) -> bool {
        self.is_enabled
    }

    pub fn issuer(&self) -> &str {
        &self.source.issuer
    }
}
