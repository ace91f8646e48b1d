//! The Back-Channel Logout outbox (OpenID Connect Back-Channel Logout 1.0 §2.5): which RPs
//! took part in each SSO session (§2.3), and the Logout Tokens owed to them.
//!
//! Participation is recorded with each code issued under a session
//! (`GrantStore::insert_code`); the Logout Tokens are owed in the transaction that ends
//! the session (`RevocationStore`), one row per participating client with a
//! `backchannel_logout_uri`, so no logout is lost between a commit and its delivery. The
//! dispatcher (`signals::backchannel`) claims due rows with a lease, as the Shared Signals
//! pusher does, so replicas never send one token at once; it wakes on
//! `SignalStore::events_signal`.

use super::StorageError;
use crate::domain::authorization::SessionId;
use crate::domain::client::ClientId;
use crate::domain::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What the Logout Token outbox holds, for the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogoutStats {
    /// Logout Tokens owed and neither delivered nor given up.
    pub backlog: i64,
    /// When the oldest of them was created: the delivery lag.
    pub oldest_owed: Option<DateTime<Utc>>,
}

/// A Logout Token owed to one client, claimed for one attempt.
#[derive(Clone, Debug)]
pub struct LogoutAttempt {
    /// The token's `jti`: the same on every attempt.
    pub jti: String,
    pub client_id: ClientId,
    /// The client's `backchannel_logout_uri` as registered now; `None` when it was removed
    /// since (the token is then dropped).
    pub uri: Option<String>,
    pub user_id: UserId,
    pub sid: SessionId,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// How an attempt ended (§2.8).
#[derive(Clone, Debug)]
pub enum LogoutOutcome {
    /// 200 or 204: the RP logged the user out.
    Delivered,
    /// Refused for good (400: the RP rejected the token), or no URI any more: forgotten.
    Dropped { error: String },
    /// Try again at `at` (5xx, timeout, connection refused).
    Retry { at: DateTime<Utc>, error: String },
}

#[async_trait]
pub trait BackchannelStore: Send + Sync {
    /// Claims up to `limit` due Logout Tokens of enabled clients, created after
    /// `created_after` (older ones are given up), leased until `lease_until`; at most
    /// `per_client` of one client in flight at once, counting those already leased.
    async fn claim_logouts(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        created_after: DateTime<Utc>,
        limit: i64,
        per_client: i64,
    ) -> Result<Vec<LogoutAttempt>, StorageError>;

    /// Settles a claimed attempt: deleted when delivered or dropped, rescheduled otherwise.
    async fn settle_logout(&self, jti: &str, outcome: &LogoutOutcome) -> Result<(), StorageError>;

    /// The Logout Tokens owed to `client` (not yet delivered), for operators and tests.
    async fn count_pending_logouts(&self, client: &ClientId) -> Result<i64, StorageError>;

    /// The Logout Tokens that will still be sent, for the metrics: of enabled clients, and
    /// created after `created_after` (those before are given up, as `claim_logouts`
    /// skips them). One aggregate query over a table housekeeping keeps bounded
    /// (`backchannel_logout.max_pending_per_client` per client).
    async fn logout_stats(&self, created_after: DateTime<Utc>) -> Result<LogoutStats, StorageError>;

    /// Deletes, at most `batch` rows per statement: Logout Tokens created before
    /// `give_up_before`, those beyond the newest `max_per_client` of a client, and the
    /// participation rows of sessions that no longer exist.
    async fn purge_logouts(
        &self,
        give_up_before: DateTime<Utc>,
        max_per_client: i64,
        batch: i64,
    ) -> Result<u64, StorageError>;
}
