//! The time tokens are checked against, injectable so that tests and offline tools can
//! pick it.

use std::time::SystemTime;

/// Where a [`Verifier`](crate::Verifier) reads the current time for `exp`, `nbf` and
/// `iat` (RFC 7519 §4.1.4–4.1.6). [`SystemClock`] unless
/// [`VerifierBuilder::clock`](crate::VerifierBuilder::clock) says otherwise.
///
/// Any `Fn() -> SystemTime + Send + Sync` is a clock, so a closure will do:
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tessera_verify::Clock;
///
/// let an_hour_ahead = || SystemTime::now() + Duration::from_secs(3600);
/// assert!(an_hour_ahead.now() > SystemTime::now());
/// ```
///
/// The clock only decides whether a token is valid *now*. How long the cached JWK Set
/// stays fresh is measured with the monotonic [`Instant`](std::time::Instant) instead,
/// so that a clock moved in a test does not make the verifier fetch keys.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

impl<F: Fn() -> SystemTime + Send + Sync> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// [`SystemTime::now`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
