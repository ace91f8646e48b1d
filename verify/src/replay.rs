//! A bounded, in-memory record of the DPoP proofs a resource server has accepted, so that
//! none is accepted twice within its window (RFC 9449 §11.1).

use crate::dpop::{Proof, ProofPolicy};
use aws_lc_rs::digest::{Context, SHA256};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a proof could not be recorded as used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplayError {
    /// The proof was seen before, within its window.
    Replayed,
    /// The cache holds as many live proofs as it may: whether this one is a replay cannot
    /// be told without forgetting one that is still live, so it is refused.
    Full,
}

/// The proofs seen within the acceptance window, by SHA-256 of (`jkt`, `jti`): 32 bytes
/// per proof whatever the `jti`, at most `capacity` proofs. Check and record are one step
/// under a lock, so of concurrent identical proofs exactly one is accepted.
pub(crate) struct ReplayCache {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    seen: HashSet<[u8; 32]>,
    /// When each entry may be forgotten, soonest first.
    expiries: BinaryHeap<Reverse<(i64, [u8; 32])>>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self { state: Mutex::new(State::default()), capacity }
    }

    /// Records `proof` as used, unless it was already. It is remembered for as long as
    /// `policy` would still accept it: until `iat` (or `now`, if later) plus the window.
    pub fn first_use(&self, proof: &Proof, policy: &ProofPolicy, now: SystemTime) -> Result<(), ReplayError> {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let window = i64::try_from(policy.replay_window().as_secs()).unwrap_or(i64::MAX);
        let forget_at = proof.iat.max(now).saturating_add(window).saturating_add(1);
        let key = Self::key(&proof.jkt, &proof.jti);
        // A panic elsewhere while holding the lock leaves the sets consistent: each
        // mutation below is a single call.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(Reverse((expiry, old))) = state.expiries.peek().copied() {
            if expiry > now {
                break;
            }
            state.expiries.pop();
            state.seen.remove(&old);
        }
        if state.seen.contains(&key) {
            return Err(ReplayError::Replayed);
        }
        if state.seen.len() >= self.capacity {
            return Err(ReplayError::Full);
        }
        state.seen.insert(key);
        state.expiries.push(Reverse((forget_at, key)));
        Ok(())
    }

    /// How many proofs are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).seen.len()
    }

    fn key(jkt: &str, jti: &str) -> [u8; 32] {
        let mut context = Context::new(&SHA256);
        // Length-prefixed, so that no two (jkt, jti) pairs hash the same input.
        context.update(&(jkt.len() as u64).to_be_bytes());
        context.update(jkt.as_bytes());
        context.update(jti.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::DpopKey;
    use std::sync::Arc;
    use std::time::Duration;
    use url::Url;

    fn proof_at(key: &DpopKey, jti: &str, iat: i64) -> Proof {
        let claims = serde_json::json!({ "jti": jti, "htm": "GET", "htu": "https://a.example/", "iat": iat });
        let url = Url::parse("https://a.example/").unwrap();
        let request = crate::dpop::ProofRequest::new("GET", &url, at(iat));
        ProofPolicy::new().verify(&key.sign(&key.proof_header(), &claims), &request).unwrap()
    }

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    }

    #[test]
    fn a_proof_is_accepted_once_within_its_window_and_forgotten_after() {
        let (key, policy, cache) = (DpopKey::es256(), ProofPolicy::new(), ReplayCache::new(10));
        let proof = proof_at(&key, "a", 1000);
        assert_eq!(cache.first_use(&proof, &policy, at(1000)), Ok(()));
        assert_eq!(cache.first_use(&proof, &policy, at(1000)), Err(ReplayError::Replayed));
        // Still remembered at the end of the window (60 s + 5 s ahead).
        assert_eq!(cache.first_use(&proof, &policy, at(1065)), Err(ReplayError::Replayed));
        // The same jti from another key is another proof.
        assert_eq!(cache.first_use(&proof_at(&DpopKey::es256(), "a", 1000), &policy, at(1000)), Ok(()));
        // Forgotten once no policy check would accept it anyway.
        let later = proof_at(&key, "b", 2000);
        assert_eq!(cache.first_use(&later, &policy, at(2000)), Ok(()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let (key, policy, cache) = (DpopKey::ed25519(), ProofPolicy::new(), ReplayCache::new(2));
        assert_eq!(cache.first_use(&proof_at(&key, "1", 1000), &policy, at(1000)), Ok(()));
        assert_eq!(cache.first_use(&proof_at(&key, "2", 1000), &policy, at(1000)), Ok(()));
        assert_eq!(cache.first_use(&proof_at(&key, "3", 1000), &policy, at(1000)), Err(ReplayError::Full));
        assert_eq!(cache.first_use(&proof_at(&key, "1", 1000), &policy, at(1000)), Err(ReplayError::Replayed));
        assert_eq!(cache.first_use(&proof_at(&key, "3", 1100), &policy, at(1100)), Ok(()));
    }

    #[test]
    fn of_concurrent_identical_proofs_exactly_one_is_accepted() {
        let (key, policy, cache) = (DpopKey::es256(), Arc::new(ProofPolicy::new()), Arc::new(ReplayCache::new(100)));
        let proof = Arc::new(proof_at(&key, "same", 1000));
        let threads: Vec<_> = (0..48)
            .map(|_| {
                let (proof, policy, cache) = (Arc::clone(&proof), Arc::clone(&policy), Arc::clone(&cache));
                std::thread::spawn(move || cache.first_use(&proof, &policy, at(1000)).is_ok())
            })
            .collect();
        let accepted = threads.into_iter().map(|t| t.join().unwrap()).filter(|&ok| ok).count();
        assert_eq!(accepted, 1);
    }
}
