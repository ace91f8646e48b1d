//! Human passwords: argon2id (RFC 9106), always on the blocking pool so a burst of
//! logins cannot stall the async workers that issue tokens, at most [`PasswordChecks`]
//! admitted and one per core computing, each in working memory it reuses, so a burst
//! cannot exhaust memory either (19 MiB each; the blocking pool has 512 threads).

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

/// The bound on password checks admitted at once. A check beyond it is refused at once
/// (the caller answers 429 with `Retry-After`): the only queue is the admitted checks'.
///
/// Of the admitted checks, at most one per core computes at a time; the others wait for a
/// core's slot, first come first served: at most `max` − cores of them, each for at most
/// (`max` − cores) ÷ cores hash times (one with the default of two per core). With
/// two admitted per core all computing at once, the kernel time-sliced four 15 ms hashes
/// on two cores: every hash paid context switches and refilled caches, and Tessera spent
/// about 4 ms per login beyond a raw check (bench/README.md, Findings 24). Admitting
/// fewer instead left cores idle between logins, since a refused one comes back only
/// after its `Retry-After`.
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    slots: Arc<Slots>,
    max: usize,
}

/// Where admitted checks compute: one slot per core, each with argon2's working memory.
struct Slots {
    cores: Arc<Semaphore>,
    /// Argon2's working memory, handed back by finished checks for the next ones: at most
    /// one buffer per slot. Reused rather than freed because glibc's malloc, once it has
    /// freed one 19 MiB block, serves the next ones from per-thread arenas that keep them:
    /// with argon2 allocating its own, 46 checks (at most 4 at once) left the server at
    /// 800 MiB (bench/README.md, `login-burst`).
    memory: Mutex<Vec<WorkingMemory>>,
}

/// Argon2's blocks (19 MiB with the default parameters).
type WorkingMemory = Vec<Block>;

/// One admitted check's place; given back when it ends.
pub struct CheckPermit {
    slots: Arc<Slots>,
    _held: OwnedSemaphorePermit,
}

/// A computing check's slot and working memory; both are given back when it ends.
struct Computing {
    memory: WorkingMemory,
    slots: Arc<Slots>,
    // A field, so dropped after `drop` has returned the memory: no other check can take
    // the slot (and allocate) while the memory is on its way back.
    _slot: OwnedSemaphorePermit,
}

impl Drop for Computing {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        if memory.capacity() > 0 {
            self.slots.memory.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        }
    }
}

impl CheckPermit {
    /// Waits for a core's slot (see [`PasswordChecks`]) and takes a working memory.
    async fn compute(&self) -> anyhow::Result<Computing> {
        let slot = self.slots.cores.clone().acquire_owned().await.context("the password check slots are closed")?;
        let memory = self.slots.memory.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        Ok(Computing { memory, slots: self.slots.clone(), _slot: slot })
    }
}

impl PasswordChecks {
    /// `max` checks admitted at once (0: two per core), one per core computing.
    pub fn new(max: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_cores(if max == 0 { 2 * cores } else { max }, cores)
    }

    fn with_cores(max: usize, cores: usize) -> Self {
        let slots = Slots { cores: Arc::new(Semaphore::new(cores.clamp(1, max.max(1)))), memory: Mutex::default() };
        Self { permits: Arc::new(Semaphore::new(max)), slots: Arc::new(slots), max }
    }

    /// Checks admitted now, computing or waiting for a slot (for the metrics).
    pub fn in_flight(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A place for one check, or `None` when all are taken.
    pub fn try_start(&self) -> Option<CheckPermit> {
        let held = self.permits.clone().try_acquire_owned().ok()?;
        Some(CheckPermit { slots: self.slots.clone(), _held: held })
    }
}

/// Verifies `candidate` against `stored` (or the dummy hash when `None`), once a core's
/// slot is free. The permit and the slot move into the blocking task, so both are held
/// until argon2 finishes even if the request that started it is dropped.
pub async fn verify(permit: CheckPermit, stored: Option<String>, candidate: String) -> anyhow::Result<bool> {
    let mut computing = permit.compute().await?;
    tokio::task::spawn_blocking(move || {
        let is_known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = match PasswordHash::new(&phc) {
            Ok(parsed) => Ok(verify_in(&mut computing.memory, &parsed, candidate.as_bytes())),
            Err(e) => Err(anyhow::anyhow!("stored password hash is invalid: {e}")),
        };
        // The slot and its memory first, then the admitted place: a check admitted next
        // finds the memory back.
        drop(computing);
        drop(permit);
        Ok(is_known && matches?)
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
    async fn working_memory_is_reused_and_kept_for_at_most_as_many_checks_as_compute() {
        let phc = hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        let checks = PasswordChecks::with_cores(2, 2);
        let kept = || checks.slots.memory.lock().unwrap().iter().map(|m| m.capacity()).collect::<Vec<_>>();
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
    }

    /// Admitted beyond the cores, checks wait for a slot rather than compute at once: eight
    /// admitted on two slots all finish, and no more than two working memories ever exist
    /// (each check that computed while two others did would have allocated a third).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn admitted_checks_beyond_the_cores_wait_for_a_slot() {
        let phc = hash(Password::parse("correct horse".into()).unwrap()).await.unwrap();
        let checks = PasswordChecks::with_cores(8, 2);
        let permits: Vec<_> = std::iter::from_fn(|| checks.try_start()).collect();
        assert_eq!(permits.len(), 8);
        assert!(checks.try_start().is_none(), "admission is still bounded");
        let results = futures_util::future::join_all(
            permits.into_iter().map(|permit| verify(permit, Some(phc.clone()), "correct horse".into())),
        )
        .await;
        assert!(results.into_iter().all(|r| r.unwrap()));
        assert_eq!(checks.slots.memory.lock().unwrap().len(), 2, "two slots, two buffers");
        assert_eq!(checks.in_flight(), 0);
    }

    /// A check waiting for a slot holds its admitted place (so it counts in `in_flight`)
    /// but no working memory; dropped while waiting, it gives the place back.
    #[tokio::test]
    async fn a_waiting_check_holds_its_place_and_no_memory_until_it_computes() {
        let checks = PasswordChecks::with_cores(3, 2);
        let stored = || checks.slots.memory.lock().unwrap().len();
        checks.slots.memory.lock().unwrap().extend((0..3).map(|_| vec![Block::default(); 8]));
        let (first, second, third) =
            (checks.try_start().unwrap(), checks.try_start().unwrap(), checks.try_start().unwrap());
        let (a, b) = (first.compute().await.unwrap(), second.compute().await.unwrap());
        assert_eq!(stored(), 1, "each computing check took a buffer");
        let mut waiting = Box::pin(third.compute());
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting).await;
        assert!(waited.is_err(), "both slots are taken: the third waits");
        assert_eq!((checks.in_flight(), stored()), (3, 1), "admitted, and holding no buffer");
        drop(waiting);
        drop(third);
        assert_eq!(checks.in_flight(), 2, "the waiting one gave its place back");
        drop((a, b));
        assert_eq!(checks.slots.cores.available_permits(), 2, "and the computing ones their slots");
        assert_eq!(stored(), 3, "and their buffers");
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
