//! A bounded, in-memory record of the DPoP proofs a resource server has accepted, so that
//! none is accepted twice within its window (RFC 9449 §11.1).

use crate::dpop::{Proof, ProofPolicy};
use aws_lc_rs::digest::{Context, SHA256};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
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
    /// This proof's key holds its whole share of the cache ([`KEY_SHARE`]): one holder of
    /// a bound token cannot fill the cache and lock every other client out.
    KeyOverShare,
}

/// The part of the capacity one key may hold: a tenth. A client that sends more than
/// capacity / 10 proofs within the window with one key is refused (as a replay would be)
/// until its older proofs age out; the others are unaffected.
pub(crate) const KEY_SHARE: usize = 10;

/// The proofs seen within the acceptance window, by SHA-256 of (`jkt`, `jti`): 32 bytes
/// per proof whatever the `jti`, at most `capacity` proofs. Check and record are one step
/// under a lock, so of concurrent identical proofs exactly one is accepted.
pub(crate) struct ReplayCache {
    state: Mutex<State>,
    capacity: usize,
}

/// When an entry may be forgotten, the entry, and its key's digest.
type Expiry = (i64, [u8; 32], [u8; 32]);

#[derive(Default)]
struct State {
    seen: HashSet<[u8; 32]>,
    /// When each entry may be forgotten, soonest first, with its key's digest.
    expiries: BinaryHeap<Reverse<Expiry>>,
    /// Live entries per key (digest of `jkt`).
    per_key: HashMap<[u8; 32], usize>,
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
        let owner = Self::key(&proof.jkt, "");
        // A panic elsewhere while holding the lock leaves the sets consistent: each
        // mutation below is a single call.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(Reverse((expiry, old, old_owner))) = state.expiries.peek().copied() {
            if expiry > now {
                break;
            }
            state.expiries.pop();
            state.seen.remove(&old);
            if let Some(count) = state.per_key.get_mut(&old_owner) {
                *count -= 1;
                if *count == 0 {
                    state.per_key.remove(&old_owner);
                }
            }
        }
        if state.seen.contains(&key) {
            return Err(ReplayError::Replayed);
        }
        if state.per_key.get(&owner).copied().unwrap_or(0) >= (self.capacity / KEY_SHARE).max(1) {
            return Err(ReplayError::KeyOverShare);
        }
        if state.seen.len() >= self.capacity {
            return Err(ReplayError::Full);
        }
        state.seen.insert(key);
        *state.per_key.entry(owner).or_default() += 1;
        state.expiries.push(Reverse((forget_at, key, owner)));
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
        // Ten clients, each at its share of a cache of 20.
        let (policy, cache) = (ProofPolicy::new(), ReplayCache::new(20));
        let keys: Vec<DpopKey> = (0..11).map(|_| DpopKey::ed25519()).collect();
        for (i, key) in keys.iter().enumerate().take(10) {
            for j in 0..2 {
                assert_eq!(cache.first_use(&proof_at(key, &format!("{i}-{j}"), 1000), &policy, at(1000)), Ok(()));
            }
        }
        let last = &keys[10];
        assert_eq!(cache.first_use(&proof_at(last, "1", 1000), &policy, at(1000)), Err(ReplayError::Full));
        assert_eq!(cache.first_use(&proof_at(&keys[0], "0-0", 1000), &policy, at(1000)), Err(ReplayError::Replayed));
        assert_eq!(cache.first_use(&proof_at(last, "1", 1100), &policy, at(1100)), Ok(()));
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

    #[test]
    fn one_key_cannot_fill_the_cache() {
        let (policy, cache) = (ProofPolicy::new(), ReplayCache::new(20));
        let greedy = DpopKey::es256();
        for i in 0..2 {
            assert_eq!(cache.first_use(&proof_at(&greedy, &format!("g{i}"), 1000), &policy, at(1000)), Ok(()));
        }
        let over = proof_at(&greedy, "g-over", 1000);
        assert_eq!(cache.first_use(&over, &policy, at(1000)), Err(ReplayError::KeyOverShare));
        // Other keys still get in, and the greedy key again once its proofs age out.
        assert_eq!(cache.first_use(&proof_at(&DpopKey::es256(), "x", 1000), &policy, at(1000)), Ok(()));
        assert_eq!(cache.first_use(&proof_at(&greedy, "g-later", 2000), &policy, at(2000)), Ok(()));
    }
}
