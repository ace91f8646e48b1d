//! Human passwords: argon2id (RFC 9106), always on the blocking pool so a burst of
//! logins cannot stall the async workers that issue tokens, and at most
//! [`PasswordChecks`] at a time, so a burst cannot exhaust memory either (19 MiB each;
//! the blocking pool has 512 threads).

use crate::domain::user::Password;
use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{Arc, LazyLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Argon2id with the crate defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password into a PHC string.
pub async fn hash(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// A hash of a password nobody knows, verified when the user does not exist so that
/// timing does not reveal which usernames exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(b"tessera-dummy-password", &salt).expect("hashing a constant").to_string()
});

/// Does `candidate` match the PHC string `stored`? Synchronous and unbounded: for the CLI
/// and tests; request paths use [`verify`], which runs under a [`CheckPermit`].
pub fn matches(stored: &str, candidate: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| hasher().verify_password(candidate.as_bytes(), &parsed).is_ok())
}

/// The bound on password checks running at once. A check beyond it is refused at once
/// (the caller answers 429 with `Retry-After`), not queued: a queue would only move the
/// memory and the wait elsewhere.
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
}

/// One running check's place; released when the check ends.
pub struct CheckPermit {
    _held: OwnedSemaphorePermit,
}

impl PasswordChecks {
    /// `max` checks at once; 0 means two per core.
    pub fn new(max: usize) -> Self {
        let max = if max == 0 { 2 * std::thread::available_parallelism().map_or(1, |n| n.get()) } else { max };
        Self { permits: Arc::new(Semaphore::new(max)) }
    }

    /// A place for one check, or `None` when all are taken.
    pub fn try_start(&self) -> Option<CheckPermit> {
        self.permits.clone().try_acquire_owned().ok().map(|held| CheckPermit { _held: held })
    }
}

/// Verifies `candidate` against `stored` (or the dummy hash when `None`). The permit moves
/// into the blocking task, so it is held until argon2 finishes even if the request that
/// started it is dropped.
pub async fn verify(permit: CheckPermit, stored: Option<String>, candidate: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let is_known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored password hash is invalid: {e}"))?;
        let matches = hasher().verify_password(candidate.as_bytes(), &parsed).is_ok();
        Ok(is_known && matches)
    })
    .await
    .context("password verification task")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let phc = hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        let checks = PasswordChecks::new(3);
        let permit = || checks.try_start().unwrap();
        assert!(verify(permit(), Some(phc.clone()), "correct horse".into()).await.unwrap());
        assert!(!verify(permit(), Some(phc), "wrong horse".into()).await.unwrap());
        assert!(!verify(permit(), None, "tessera-dummy-password".into()).await.unwrap());
    }

    #[test]
    fn checks_beyond_the_bound_are_refused_not_queued() {
        let checks = PasswordChecks::new(2);
        let first = checks.try_start().unwrap();
        let _second = checks.try_start().unwrap();
        assert!(checks.try_start().is_none());
        drop(first);
        assert!(checks.try_start().is_some(), "a finished check frees its place");
    }
}
