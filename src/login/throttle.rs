//! Brute-force protection: password checks are counted per account and per client IP,
//! and past the limit refused for a delay that doubles with each further failure.
//!
//! An attempt is *reserved* before its password is checked, in one statement that counts
//! the failures and the checks still in flight (`SessionStore::reserve_attempt`), and
//! settled afterwards. Checking the count first and recording the failure after the
//! argon2 run let 40 parallel posts for one account all pass a check made before any of
//! them had failed; now at most `max_failures` checks run for one account in any burst,
//! and at most `IP_FACTOR` times that for one client IP.

use super::LoginSettings;
use crate::domain::authorization::ThrottleSubject;
use crate::http::client_ip::ip_prefix;
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Duration, Utc};
use std::net::IpAddr;

/// The throttling subject of a client IP: its network ([`ip_prefix`], an IPv6 /64).
pub fn ip_subject(ip: Option<IpAddr>) -> ThrottleSubject {
    ThrottleSubject::ClientIp(ip_prefix(ip))
}

/// Reserved attempts of one login: the account's (when the username is well-formed) and
/// the client IP's.
pub struct Reservation {
    subjects: Vec<ThrottleSubject>,
}

/// Reserves one password check for every subject, or none: `None` when any is locked or
/// at its limit (the ones already reserved are released).
pub async fn reserve(
    storage: &dyn Storage,
    settings: &LoginSettings,
    subjects: Vec<ThrottleSubject>,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, StorageError> {
    let cutoff = now - settings.failure_window;
    for (index, subject) in subjects.iter().enumerate() {
        let limit = subject.limit(settings.max_failures);
        if !storage.reserve_attempt(&subject.key(), limit, now, cutoff).await? {
            for reserved in &subjects[..index] {
                storage.release_attempt(&reserved.key()).await?;
            }
            return Ok(None);
        }
    }
    Ok(Some(Reservation { subjects }))
}

/// The password was wrong: count a failure for each subject, and lock those at the limit.
pub async fn settle_failure(
    storage: &dyn Storage,
    settings: &LoginSettings,
    reservation: Reservation,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for subject in &reservation.subjects {
        let failures = storage.settle_failure(&subject.key()).await?;
        let limit = subject.limit(settings.max_failures);
        if failures >= limit {
            storage.lock(&subject.key(), now + lockout_delay(settings, failures - limit)).await?;
        }
    }
    Ok(())
}

/// The password was right: the account starts afresh; the IP keeps its failures (or an
/// attacker could clear its IP's count by signing in to an account of its own).
pub async fn settle_success(storage: &dyn Storage, reservation: Reservation) -> Result<(), StorageError> {
    for subject in &reservation.subjects {
        match subject {
            ThrottleSubject::Account(_) => storage.clear_throttle(&subject.key()).await?,
            ThrottleSubject::ClientIp(_)
            | ThrottleSubject::DeviceSession(_)
            | ThrottleSubject::DeviceIp(_)
            | ThrottleSubject::DeviceAccount(_) => storage.release_attempt(&subject.key()).await?,
        }
    }
    Ok(())
}

/// Nothing was checked (an internal error): give the places back.
pub async fn release(storage: &dyn Storage, reservation: Reservation) -> Result<(), StorageError> {
    for subject in &reservation.subjects {
        storage.release_attempt(&subject.key()).await?;
    }
    Ok(())
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
