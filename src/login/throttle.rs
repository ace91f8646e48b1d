//! Brute-force protection: password checks are counted per account and per client IP,
//! and past the limit refused for a delay that doubles with each further failure.
//!
//! An attempt is *reserved* before its password is checked, in one statement that counts
//! the failures and the checks still in flight (`SessionStore::reserve_attempt`), and
//! settled afterwards. Checking the count first and recording the failure after the
//! argon2 run let 40 parallel posts for one account all pass a check made before any of
//! them had failed; now at most `max_failures` checks run for one account in any burst,
//! and at most `IP_FACTOR` times that for one client IP.
//!
//! Reserving, checking and settling run in a task of their own ([`attempt`]), so an
//! attempt settles whatever happens to its request.

use super::LoginSettings;
use crate::domain::authorization::ThrottleSubject;
use crate::http::client_ip::ip_prefix;
use crate::storage::{Storage, StorageError};
use actix_web::web::Data;
use chrono::{DateTime, Duration, Utc};
use std::future::Future;
use std::net::IpAddr;
use tokio::sync::oneshot;
use tracing::Instrument;

/// The throttling subject of a client IP: its network ([`ip_prefix`], an IPv6 /64).
pub fn ip_subject(ip: Option<IpAddr>) -> ThrottleSubject {
    ThrottleSubject::ClientIp(ip_prefix(ip))
}

/// How an attempt's check ended, so how its reservation is settled.
pub enum Settle {
    /// The password was right: the account starts afresh; the IP keeps its failures (or an
    /// attacker could clear its IP's count by signing in to an account of its own).
    Success,
    /// Wrong: a failure for every subject, and a lock for those at their limit.
    Failure,
    /// Nothing was checked, or the check says nothing about a guess: the places go back.
    Release,
}

/// The most attempts running at once in one process, login and device forms together.
/// A client that hangs up no longer takes its attempt's work with it (see [`attempt`]),
/// so without a bound a stranger resetting connections as fast as it opens them would
/// pile up tasks, each with its throttle writes, on the database. Far above what the
/// password checks' own bound lets compute (`login.max_concurrent_password_checks`).
pub const MAX_ATTEMPTS_IN_FLIGHT: usize = 256;

/// How long an attempt waits for one of the [`MAX_ATTEMPTS_IN_FLIGHT`] places, first come
/// first served, before it is refused as busy. Waiting, not refusing at once: a stranger
/// keeping hundreds of quick attempts in flight (a locked IP's are refused after one
/// write) would otherwise have every other login refused; waiting, each gets its turn
/// among them. A request that waits holds its connection, and one whose client hangs up
/// stops waiting, so the waiting are bounded by the connections, as before the bound.
const PLACE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What became of an attempt.
pub enum Attempted<T> {
    /// Its places were reserved, `check` ran and they were settled: what it returned.
    Checked(T),
    /// A subject is locked or at its limit: nothing was checked.
    Locked,
    /// [`MAX_ATTEMPTS_IN_FLIGHT`] attempts ran for all of [`PLACE_PATIENCE`]: nothing was
    /// reserved or checked.
    Busy,
}

/// Reserves a place for every subject, runs `check`, and settles as it says.
///
/// All three run in a task of their own, so the reservation is settled even when the
/// request goes away: actix drops a handler whose client resets its connection, and a
/// reservation dropped with it kept its place until the failure window ran out, so
/// `max_failures` posts that hung up at once locked the account for that window without
/// a single failure (`tests/api/attacks/password_guessing.rs`). What the check records
/// (a failure's audit event) belongs in `check` for the same reason. A task does what its
/// request would have done had its client waited for the answer: one reservation, and at
/// most one password check under the bound of [`crate::password::PasswordChecks`].
///
/// What `check` returns reaches the request, or is dropped: when the request has gone
/// before taking it, or the settling failed (the request then gets the error). A check
/// whose answer must leave a trace however the attempt ends returns a value that records
/// itself when dropped unrecorded (`sign_in::Verified`, `device::FoundCode`): a right
/// password whose client hung up was still checked, and an attacker who hangs up after
/// each guess would otherwise learn from the throttle's counts which one was right.
pub async fn attempt<T, Checked>(
    storage: Data<dyn Storage>,
    settings: LoginSettings,
    subjects: Vec<ThrottleSubject>,
    now: DateTime<Utc>,
    check: impl FnOnce(Data<dyn Storage>) -> Checked + Send + 'static,
) -> anyhow::Result<Attempted<T>>
where
    T: Send + 'static,
    Checked: Future<Output = (Settle, T)> + Send,
{
    let places = settings.attempts_in_flight.clone();
    let Ok(Ok(slot)) = tokio::time::timeout(PLACE_PATIENCE, places.acquire_owned()).await else {
        return Ok(Attempted::Busy);
    };
    let (answer, answered) = oneshot::channel();
    tokio::spawn(
        async move {
            let _slot = slot; // held until the attempt is settled
            let settled = async {
                let Some(reservation) = reserve(storage.clone(), &settings, subjects, now).await? else {
                    return Ok(None);
                };
                let (settle, checked) = check(storage).await;
                reservation.settle(settle, &settings, now).await?; // `checked` is dropped on an error
                Ok::<_, StorageError>(Some(checked))
            }
            .await;
            // The request may have gone: then the answer is dropped here, and if the
            // request goes after this, with the channel.
            let _ = answer.send(settled);
        }
        // The request's span goes along: its audit events carry the request id.
        .instrument(tracing::Span::current()),
    );
    match answered.await {
        Ok(settled) => Ok(settled?.map_or(Attempted::Locked, Attempted::Checked)),
        // The task ended without an answer: it panicked (its reservation gave the places
        // back as it was dropped).
        Err(_) => Err(anyhow::anyhow!("a login attempt's task ended without settling")),
    }
}

/// Reserves one password check for every subject, or none: `None` when any is locked or
/// at its limit (the ones already reserved are released).
async fn reserve(
    storage: Data<dyn Storage>,
    settings: &LoginSettings,
    subjects: Vec<ThrottleSubject>,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, StorageError> {
    let cutoff = now - settings.failure_window;
    let mut reservation = Reservation { storage, held: Vec::with_capacity(subjects.len()) };
    for subject in subjects {
        let limit = subject.limit(settings.max_failures);
        match reservation.storage.reserve_attempt(&subject.key(), limit, now, cutoff).await {
            Ok(true) => reservation.held.push(subject),
            Ok(false) => {
                reservation.settle(Settle::Release, settings, now).await?;
                return Ok(None);
            }
            Err(error) => {
                let _ = reservation.settle(Settle::Release, settings, now).await; // the first error is the one to tell
                return Err(error);
            }
        }
    }
    Ok(Some(reservation))
}

/// The places one attempt holds: the account's (when the username is well-formed) and the
/// client IP's, or the device flow's three. Dropped with places still held (a panic in the
/// check), it gives them back from a task of its own. A process that stops mid-attempt
/// cannot: its places stay held until the failure window starts afresh (at most
/// `login.failure_window`), the one case where a place outlives its attempt.
struct Reservation {
    storage: Data<dyn Storage>,
    /// The subjects whose places are still held; each leaves once it is settled.
    held: Vec<ThrottleSubject>,
}

impl Reservation {
    /// Settles every place held. An error on one subject does not keep the others' places:
    /// every subject is tried, and the first error is returned.
    async fn settle(
        mut self,
        settle: Settle,
        settings: &LoginSettings,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut first_error = None;
        while let Some(subject) = self.held.last() {
            let key = subject.key();
            let settled = match (&settle, subject) {
                (Settle::Failure, _) => match self.storage.settle_failure(&key).await {
                    Ok(failures) => {
                        let limit = subject.limit(settings.max_failures);
                        if failures >= limit {
                            self.storage.lock(&key, now + lockout_delay(settings, failures - limit)).await
                        } else {
                            Ok(())
                        }
                    }
                    Err(error) => Err(error),
                },
                (Settle::Success, ThrottleSubject::Account(_)) => self.storage.clear_throttle(&key).await,
                (Settle::Success | Settle::Release, _) => self.storage.release_attempt(&key).await,
            };
            self.held.pop();
            if let Err(error) = settled {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let (storage, held) = (self.storage.clone(), std::mem::take(&mut self.held));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for subject in held {
                    let _ = storage.release_attempt(&subject.key()).await; // nothing is left to tell
                }
            });
        }
    }
}

/// `lockout` doubled once per failure past the limit, at most `max_lockout`; saturating,
/// so no setting can make it overflow.
fn lockout_delay(settings: &LoginSettings, failures_past_limit: i64) -> Duration {
    let doublings = failures_past_limit.clamp(0, 20) as u32;
    settings.lockout.checked_mul(1 << doublings).map_or(settings.max_lockout, |delay| delay.min(settings.max_lockout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let other: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_subject(Some(a.into())), ip_subject(Some(b.into())));
        assert_ne!(ip_subject(Some(a.into())), ip_subject(Some(other.into())));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ip_subject(Some(mapped)), ip_subject(Some(Ipv4Addr::new(192, 0, 2, 1).into())));
    }
}
