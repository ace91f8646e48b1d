//! The deny set: what the revocation feed has revoked, in hash tables that a verification
//! reads with a few lookups under a read lock.
//!
//! Five tables, one per kind of subject Tessera revokes (see `set.rs`): `jti`s, sessions
//! (`sid`), refresh-token families (`fid`), and users and clients with a cut-off time
//! (their tokens issued at or before it are revoked). Every entry expires when no token
//! it can match is still valid; a heap ordered by expiry lets pruning remove exactly the
//! expired entries without scanning the rest.
//!
//! The set is bounded. When it is full a new entry is not added at all, rather than
//! evicting another: forgetting a revocation early would let a revoked token through
//! without anyone noticing, while a revocation that does not fit stays unacknowledged at
//! the transmitter, marks the feed degraded, and is applied once pruning makes room. The
//! verifier's fail mode then decides, as for any other feed trouble.

use crate::Claims;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// One revocation, as the deny set keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Denial {
    /// The access token with this `jti`.
    Token(String),
    /// Every token with this `sid`.
    Session(String),
    /// Every token with this `fid`.
    Family(String),
    /// Every token of the user `sub` issued at or before `until_ms` (`iat`, in ms).
    User { sub: String, until_ms: i64 },
    /// Every token of the client `client_id` issued at or before `until_ms`.
    Client { client_id: String, until_ms: i64 },
}

/// What became of one entry given to [`DenySet::insert_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// Added, or merged into an entry for the same subject.
    Applied,
    /// Already expired: every token it could match has expired, so there is nothing to do.
    Expired,
    /// The set is full and the entry is new: not applied.
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Tokens,
    Sessions,
    Families,
    Users,
    Clients,
}

/// A user's or client's cut-off.
#[derive(Clone, Copy, Debug)]
struct Cutoff {
    until_ms: i64,
    expires_ms: i64,
}

#[derive(Default)]
struct Tables {
    tokens: HashMap<Arc<str>, i64>,
    sessions: HashMap<Arc<str>, i64>,
    families: HashMap<Arc<str>, i64>,
    users: HashMap<Arc<str>, Cutoff>,
    clients: HashMap<Arc<str>, Cutoff>,
    /// Every entry's expiry, soonest first. An item is stale when its table holds a later
    /// expiry for the key (the entry was extended) or no longer holds the key.
    expiries: BinaryHeap<Reverse<(i64, Table, Arc<str>)>>,
}

impl Tables {
    fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.families.len() + self.users.len() + self.clients.len()
    }

    /// The expiry the table holds for `key`.
    fn expiry_of(&self, table: Table, key: &str) -> Option<i64> {
        match table {
            Table::Tokens => self.tokens.get(key).copied(),
            Table::Sessions => self.sessions.get(key).copied(),
            Table::Families => self.families.get(key).copied(),
            Table::Users => self.users.get(key).map(|c| c.expires_ms),
            Table::Clients => self.clients.get(key).map(|c| c.expires_ms),
        }
    }

    fn remove(&mut self, table: Table, key: &str) {
        match table {
            Table::Tokens => self.tokens.remove(key).map(drop),
            Table::Sessions => self.sessions.remove(key).map(drop),
            Table::Families => self.families.remove(key).map(drop),
            Table::Users => self.users.remove(key).map(drop),
            Table::Clients => self.clients.remove(key).map(drop),
        };
    }

    fn insert(&mut self, denial: &Denial, expires_ms: i64, has_room: bool) -> Inserted {
        let (table, key) = match denial {
            Denial::Token(jti) => (Table::Tokens, jti),
            Denial::Session(sid) => (Table::Sessions, sid),
            Denial::Family(fid) => (Table::Families, fid),
            Denial::User { sub, .. } => (Table::Users, sub),
            Denial::Client { client_id, .. } => (Table::Clients, client_id),
        };
        let known = self.expiry_of(table, key);
        if known.is_none() && !has_room {
            return Inserted::Full;
        }
        let key: Arc<str> = Arc::from(key.as_str());
        match denial {
            Denial::Token(_) | Denial::Session(_) | Denial::Family(_) => {
                let map = match table {
                    Table::Tokens => &mut self.tokens,
                    Table::Sessions => &mut self.sessions,
                    _ => &mut self.families,
                };
                let slot = map.entry(Arc::clone(&key)).or_insert(i64::MIN);
                *slot = (*slot).max(expires_ms);
            }
            Denial::User { until_ms, .. } | Denial::Client { until_ms, .. } => {
                let map = if table == Table::Users { &mut self.users } else { &mut self.clients };
                let cutoff = map.entry(Arc::clone(&key)).or_insert(Cutoff { until_ms: i64::MIN, expires_ms: i64::MIN });
                // A later revocation of the same user covers everything an earlier one did.
                cutoff.until_ms = cutoff.until_ms.max(*until_ms);
                cutoff.expires_ms = cutoff.expires_ms.max(expires_ms);
            }
        }
        if known.is_none_or(|known| known < expires_ms) {
            self.expiries.push(Reverse((expires_ms, table, key)));
        }
        Inserted::Applied
    }
}

/// The revoked subjects, bounded to `max_entries` entries in all.
pub(crate) struct DenySet {
    tables: RwLock<Tables>,
    /// The number of entries, for the lock-free check of an empty set and for the status.
    len: AtomicUsize,
    max_entries: usize,
}

impl DenySet {
    pub fn new(max_entries: usize) -> Self {
        Self { tables: RwLock::new(Tables::default()), len: AtomicUsize::new(0), max_entries }
    }

    /// Whether a verified token's claims match an entry. A few hash lookups under a read
    /// lock; none at all while the set is empty.
    pub fn denies(&self, claims: &Claims) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        // A poisoned lock still holds whole tables: writers only insert and remove.
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let issued_ms = claims.iat.saturating_mul(1000);
        tables.tokens.contains_key(claims.jti.as_str())
            || claims.sid.as_deref().is_some_and(|sid| tables.sessions.contains_key(sid))
            || claims.fid.as_deref().is_some_and(|fid| tables.families.contains_key(fid))
            || tables.users.get(claims.sub.as_str()).is_some_and(|c| issued_ms <= c.until_ms)
            || tables.clients.get(claims.client_id.as_str()).is_some_and(|c| issued_ms <= c.until_ms)
    }

    /// Inserts every `(denial, expires_ms)` under one write lock; an entry that expired by
    /// `now_ms` is not kept. Returns what became of each, in order.
    pub fn insert_all(&self, entries: &[(Denial, i64)], now_ms: i64) -> Vec<Inserted> {
        if entries.is_empty() {
            return Vec::new();
        }
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let outcomes = entries
            .iter()
            .map(|(denial, expires_ms)| {
                if *expires_ms <= now_ms {
                    return Inserted::Expired;
                }
                let has_room = tables.len() < self.max_entries;
                tables.insert(denial, *expires_ms, has_room)
            })
            .collect();
        self.len.store(tables.len(), Ordering::Release);
        outcomes
    }

    /// Removes the entries that expired by `now_ms`; returns how many.
    pub fn prune(&self, now_ms: i64) -> usize {
        let is_due = |tables: &Tables| tables.expiries.peek().is_some_and(|Reverse((at, _, _))| *at <= now_ms);
        // The write lock only when something is due: pruning runs every second.
        if !is_due(&self.tables.read().unwrap_or_else(PoisonError::into_inner)) {
            return 0;
        }
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let before = tables.len();
        while is_due(&tables) {
            let Some(Reverse((at, table, key))) = tables.expiries.pop() else { break };
            if tables.expiry_of(table, &key) == Some(at) {
                tables.remove(table, &key);
            }
        }
        let after = tables.len();
        self.len.store(after, Ordering::Release);
        before - after
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The most entries the set holds.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(jti: &str, sid: Option<&str>, fid: Option<&str>, sub: &str, client_id: &str, iat: i64) -> Claims {
        let mut value = json!({
            "iss": "i", "sub": sub, "aud": "a", "client_id": client_id, "iat": iat, "exp": iat + 300, "jti": jti
        });
        if let Some(sid) = sid {
            value["sid"] = json!(sid);
        }
        if let Some(fid) = fid {
            value["fid"] = json!(fid);
        }
        Claims::from_json(&serde_json::to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn each_table_matches_its_claim_only() {
        let set = DenySet::new(100);
        let applied = set.insert_all(
            &[
                (Denial::Token("j1".into()), 10_000),
                (Denial::Session("s1".into()), 10_000),
                (Denial::Family("f1".into()), 10_000),
            ],
            0,
        );
        assert_eq!(applied, [Inserted::Applied; 3]);
        assert!(set.denies(&claims("j1", None, None, "u", "c", 1)));
        assert!(set.denies(&claims("j2", Some("s1"), None, "u", "c", 1)));
        assert!(set.denies(&claims("j2", Some("s2"), Some("f1"), "u", "c", 1)));
        assert!(!set.denies(&claims("j2", Some("s2"), Some("f2"), "u", "c", 1)));
        // Each value is matched against its own claim only.
        assert!(!set.denies(&claims("s1", None, Some("s1"), "u", "c", 1)), "a sid is neither a jti nor a fid");
        assert!(!set.denies(&claims("j2", Some("f1"), None, "u", "c", 1)), "a fid is not a sid");
        assert!(!set.denies(&claims("j2", Some("j1"), Some("j1"), "j1", "j1", 1)), "a jti is nothing else");
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn users_and_clients_are_cut_off_at_a_time_inclusive() {
        let set = DenySet::new(100);
        set.insert_all(
            &[
                (Denial::User { sub: "u1".into(), until_ms: 100_500 }, 1_000_000),
                (Denial::Client { client_id: "c1".into(), until_ms: 200_000 }, 1_000_000),
            ],
            0,
        );
        assert!(set.denies(&claims("j", None, None, "u1", "c", 100)));
        // iat is whole seconds: 100 s is before 100.5 s, 101 s is after.
        assert!(!set.denies(&claims("j", None, None, "u1", "c", 101)));
        assert!(set.denies(&claims("j", None, None, "u", "c1", 200)), "at the cut-off itself");
        assert!(!set.denies(&claims("j", None, None, "u", "c1", 201)));
        assert!(!set.denies(&claims("j", None, None, "u2", "c2", 1)));
    }

    #[test]
    fn a_later_cut_off_wins_and_an_earlier_one_never_undoes_it() {
        let set = DenySet::new(100);
        set.insert_all(&[(Denial::User { sub: "u".into(), until_ms: 200_000 }, 1_000_000)], 0);
        set.insert_all(&[(Denial::User { sub: "u".into(), until_ms: 100_000 }, 900_000)], 0);
        assert!(set.denies(&claims("j", None, None, "u", "c", 150)));
        assert_eq!(set.len(), 1);
        // The entry keeps its later expiry too.
        assert_eq!(set.prune(950_000), 0);
        assert!(set.denies(&claims("j", None, None, "u", "c", 150)));
    }

    #[test]
    fn a_full_set_refuses_new_entries_but_merges_known_ones() {
        let set = DenySet::new(2);
        let outcomes = set.insert_all(
            &[
                (Denial::Token("a".into()), 100),
                (Denial::Token("b".into()), 100),
                (Denial::Token("c".into()), 100),
                (Denial::Token("a".into()), 200),
                (Denial::Session("old".into()), 5),
            ],
            10,
        );
        assert_eq!(
            outcomes,
            [Inserted::Applied, Inserted::Applied, Inserted::Full, Inserted::Applied, Inserted::Expired]
        );
        assert_eq!(set.len(), 2);
        assert!(!set.denies(&claims("c", None, None, "u", "c", 1)));
        assert_eq!(set.prune(150), 1, "b expires; a was extended to 200");
        assert!(set.denies(&claims("a", None, None, "u", "c", 1)));
        assert_eq!(set.insert_all(&[(Denial::Token("c".into()), 300)], 150), [Inserted::Applied]);
    }

    #[test]
    fn pruning_removes_exactly_the_expired_entries() {
        let set = DenySet::new(100);
        let entries: Vec<_> = (0..10).map(|i| (Denial::Token(format!("j{i}")), 100 + i)).collect();
        set.insert_all(&entries, 0);
        assert_eq!(set.prune(99), 0);
        assert_eq!(set.prune(104), 5);
        assert_eq!(set.len(), 5);
        assert!(!set.denies(&claims("j4", None, None, "u", "c", 1)));
        assert!(set.denies(&claims("j5", None, None, "u", "c", 1)));
        assert_eq!(set.prune(1000), 5);
        assert_eq!(set.len(), 0);
        assert_eq!(set.capacity(), 100);
    }
}
