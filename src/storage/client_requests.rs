//! What clients leave on the server before a user or a token is involved: pushed
//! authorization requests (RFC 9126) and the `jti`s of the client assertions they
//! authenticated with (RFC 7523 §3). Both are bounded: a pushed request by counts per
//! client and in total, checked by the insert itself; an assertion's `jti` is recorded only
//! after its signature verified, and only until the assertion expires.

use super::StorageError;
use crate::domain::authorization::PendingAuthorization;
use crate::domain::client::ClientId;
use crate::domain::secret::SecretDigest;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Why a bounded request (a pushed authorization request, a device authorization request)
/// was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundRefused {
    /// The client has `max_per_client` unexpired requests already.
    ClientLimit,
    /// The server holds `max_total` unexpired requests already.
    TotalLimit,
    /// The client has `SourceBound::max` unexpired requests from this source already.
    SourceLimit,
}

/// The bound on what one source (a client IP's network, as a digest) may leave on the
/// server for one client: given for unauthenticated (public) clients, whose id alone lets a
/// stranger fill `max_per_client` for everyone else.
#[derive(Clone, Copy, Debug)]
pub struct SourceBound<'a> {
    pub digest: &'a SecretDigest,
    pub max: i64,
}

/// The bounds a pushed or device authorization request must fit in.
#[derive(Clone, Copy, Debug)]
pub struct RequestLimits {
    pub max_per_client: i64,
    pub max_total: i64,
}

#[async_trait]
pub trait ClientRequestStore: Send + Sync {
    /// Stores `request` (validated) under `id`, the digest of its `request_uri`'s random
    /// part, unless the client or the server is at its bound of unexpired pushed requests
    /// at `now`. Per client the bound is exact on both backends (the client's row is locked
    /// first); the total may be passed by as many as push at the same instant. With a
    /// `source`, also unless the client has `source.max` unexpired requests from it (exact
    /// too, under the same lock).
    async fn insert_pushed_request(
        &self,
        id: &SecretDigest,
        request: &PendingAuthorization,
        limits: RequestLimits,
        source: Option<SourceBound<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), BoundRefused>, StorageError>;

    /// Takes (deletes and returns, in one statement) the pushed request `id` of `client`, if
    /// unexpired at `now`: of concurrent uses exactly one gets it (RFC 9126 §4, single use).
    async fn claim_pushed_request(
        &self,
        id: &SecretDigest,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StorageError>;

    /// Records the `jti` of a client assertion (digest of client id and jti) until
    /// `expires_at`. False when it is recorded already and unexpired: a replay. Of
    /// concurrent uses exactly one gets true.
    async fn record_assertion_jti(
        &self,
        digest: &SecretDigest,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Deletes expired pushed requests, assertion `jti`s and device authorization requests
    /// (RFC 8628), at most `batch` rows per table; returns how many went.
    async fn purge_client_requests(&self, now: DateTime<Utc>, batch: i64) -> Result<u64, StorageError>;
}
