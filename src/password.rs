//! Human passwords: argon2id (RFC 9106), always on the blocking pool so a burst of
//! logins cannot stall the async workers that issue tokens, and at most
//! [`PasswordChecks`] at a time, each in working memory it reuses, so a burst cannot
//! exhaust memory either (19 MiB each; the blocking pool has 512 threads).

use crate::domain::user::Password;
use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
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
    /// Argon2's working memory, handed back by finished checks for the next ones: at most
    /// one buffer per permit. Reused rather than freed because glibc's malloc, once it has
    /// freed one 19 MiB block, serves the next ones from per-thread arenas that keep them:
    /// with argon2 allocating its own, 46 checks (at most 4 at once) left the server at
    /// 800 MiB (bench/README.md, `login-burst`).
    memory: Arc<Mutex<Vec<WorkingMemory>>>,
    max: usize,
}

/// Argon2's blocks (19 MiB with the default parameters).
type WorkingMemory = Vec<Block>;

/// One running check's place and working memory; both are given back when it ends.
pub struct CheckPermit {
    memory: WorkingMemory,
    returned_to: Arc<Mutex<Vec<WorkingMemory>>>,
    // A field, so dropped after `drop` has returned the memory: no new check can start
    // (and allocate) while the memory is on its way back.
    _held: OwnedSemaphorePermit,
}

impl Drop for CheckPermit {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        if memory.capacity() > 0 {
            self.returned_to.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        }
    }
}

impl PasswordChecks {
    /// `max` checks at once; 0 means two per core.
    pub fn new(max: usize) -> Self {
        let max = if max == 0 { 2 * std::thread::available_parallelism().map_or(1, |n| n.get()) } else { max };
        Self { permits: Arc::new(Semaphore::new(max)), memory: Arc::default(), max }
    }

    /// Checks running now (for the metrics).
    pub fn in_flight(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A place for one check, or `None` when all are taken.
    pub fn try_start(&self) -> Option<CheckPermit> {
        let held = self.permits.clone().try_acquire_owned().ok()?;
        let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        Some(CheckPermit { memory, returned_to: self.memory.clone(), _held: held })
    }
}

/// Verifies `candidate` against `stored` (or the dummy hash when `None`). The permit moves
/// into the blocking task, so it is held until argon2 finishes even if the request that
/// started it is dropped.
pub async fn verify(mut permit: CheckPermit, stored: Option<String>, candidate: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let is_known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&phc).map_err(|e| anyhow::anyhow!("stored password hash is invalid: {e}"))?;
        let matches = verify_in(&mut permit.memory, &parsed, candidate.as_bytes());
        Ok(is_known && matches)
    })
    .await
    .context("password verification task")?
}

/// What `PasswordVerifier::verify_password` answers for argon2 (any error is a mismatch),
/// computed in `memory`, grown to the hash's memory cost, instead of a fresh allocation.
/// Hand-written because the argon2 crate's verifier allocates its own blocks.
fn verify_in(memory: &mut WorkingMemory, hash: &PasswordHash, candidate: &[u8]) -> bool {
    let mut compute = || -> argon2::password_hash::Result<bool> {
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return Ok(false) };
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = hash.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let params = Params::try_from(hash)?;
        let mut salt_bytes = [0; argon2::password_hash::Salt::MAX_LENGTH];
        let salt = salt.decode_b64(&mut salt_bytes)?;
        memory.resize(params.block_count(), Block::default());
        let mut computed = [0; Output::MAX_LENGTH];
        let computed = &mut computed[..expected.len()];
        let argon2 = Argon2::new(algorithm, version, params);
        argon2.hash_password_into_with_memory(candidate, salt, computed, &mut **memory)?;
        // `Output` compares in constant time.
        Ok(Output::new(computed)? == *expected)
    };
    compute().unwrap_or(false)
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

    /// PHC strings with other algorithms, versions and costs than the defaults, and broken ones.
    fn sample_hashes() -> Vec<String> {
        let salt = SaltString::encode_b64(b"a salt of sixteen").unwrap();
        let mut hashes = Vec::new();
        for (algorithm, version, params) in [
            (Algorithm::Argon2id, Version::V0x13, Params::default()),
            (Algorithm::Argon2id, Version::V0x13, Params::new(64, 1, 2, Some(16)).unwrap()),
            (Algorithm::Argon2i, Version::V0x13, Params::new(32, 3, 1, None).unwrap()),
            (Algorithm::Argon2d, Version::V0x10, Params::new(16, 2, 1, Some(64)).unwrap()),
        ] {
            let phc = Argon2::new(algorithm, version, params).hash_password(b"correct horse", &salt).unwrap();
            hashes.push(phc.to_string());
        }
        let default = hashes[0].clone();
        hashes.push(default.rsplit_once('$').unwrap().0.to_owned()); // no hash
        hashes.push(default.replace("m=19456", "m=1")); // a memory cost argon2 refuses
        hashes.push(default.replace("argon2id", "scrypt")); // not argon2
        hashes
    }

    #[test]
    fn verifying_in_reused_memory_answers_as_the_argon2_verifier() {
        // One buffer for every check, grown and shrunk between costs, never cleared.
        let mut memory = WorkingMemory::new();
        for phc in sample_hashes() {
            let parsed = PasswordHash::new(&phc).unwrap();
            for candidate in ["correct horse", "wrong horse", ""] {
                let expected = hasher().verify_password(candidate.as_bytes(), &parsed).is_ok();
                assert_eq!(verify_in(&mut memory, &parsed, candidate.as_bytes()), expected, "{phc} {candidate:?}");
            }
        }
        assert!(verify_in(&mut memory, &PasswordHash::new(&sample_hashes()[0]).unwrap(), b"correct horse"));
    }

    #[tokio::test]
    async fn working_memory_is_reused_and_kept_for_at_most_as_many_checks_as_may_run() {
        let phc = hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        let checks = PasswordChecks::new(2);
        let kept = || checks.memory.lock().unwrap().iter().map(|m| m.capacity()).collect::<Vec<_>>();
        let (first, second) = (checks.try_start().unwrap(), checks.try_start().unwrap());
        let (a, b) = tokio::join!(
            verify(first, Some(phc.clone()), "wrong horse".into()),
            verify(second, Some(phc.clone()), "correct horse".into()),
        );
        assert!(!a.unwrap() && b.unwrap());
        let blocks = Params::default().block_count();
        assert_eq!(kept().len(), 2, "both buffers are kept");
        assert!(kept().iter().all(|&capacity| capacity >= blocks));
        for _ in 0..5 {
            assert!(verify(checks.try_start().unwrap(), None, "guess".into()).await.is_ok_and(|ok| !ok));
        }
        assert_eq!(kept().len(), 2, "sequential checks reuse a kept buffer rather than add one");
        let held: Vec<_> = std::iter::from_fn(|| checks.try_start()).collect();
        assert_eq!((held.len(), kept().len()), (2, 0), "each running check holds one buffer");
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
