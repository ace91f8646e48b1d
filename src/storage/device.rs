//! Device authorization requests (RFC 8628): stored by the device authorization endpoint,
//! decided at the verification page, polled and redeemed at the token endpoint. Bounded
//! per client and in total by the insert itself, like pushed requests; the device code is
//! stored as its SHA-256 digest, the user code as an HMAC (see `authorization::device`).

use super::client_requests::{BoundRefused, RequestLimits, SourceBound};
use super::StorageError;
use crate::domain::client::ClientId;
use crate::domain::device::{DeviceApproval, DevicePoll, DeviceRequest};
use crate::domain::refresh::TokenFamily;
use crate::domain::secret::SecretDigest;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Stores a pending `request` under the digests of its device code and user code,
    /// unless the client or the server is at its bound of unexpired requests at `now`
    /// (exact per client: the client's row is locked first), or, with a `source`, the
    /// client has `source.max` unexpired requests from it (exact too). `Err(Conflict)` when
    /// the user code's digest is taken (the caller draws another code).
    async fn insert_device_request(
        &self,
        device_code: &SecretDigest,
        user_code: &SecretDigest,
        request: &DeviceRequest,
        limits: RequestLimits,
        source: Option<SourceBound<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Result<(), BoundRefused>, StorageError>;

    /// The pending, unexpired request of `user_code`, for the verification page.
    async fn find_device_request(
        &self,
        user_code: &SecretDigest,
        now: DateTime<Utc>,
    ) -> Result<Option<DeviceRequest>, StorageError>;

    /// Approves (`Some`) or denies (`None`) the pending, unexpired request of `user_code`
    /// in one statement; returns its client. `None`, nothing changed, when it is no longer
    /// pending (decided in another tab, expired).
    async fn decide_device_request(
        &self,
        user_code: &SecretDigest,
        approval: Option<&DeviceApproval>,
        now: DateTime<Utc>,
    ) -> Result<Option<ClientId>, StorageError>;

    /// One poll of `device_code` by `client` (RFC 8628 §3.4–3.5), in one transaction. An
    /// approved request whose session is still live is deleted and returned in one
    /// statement (`Redeemed`): of concurrent polls exactly one gets it. Otherwise the
    /// answer says why, and a pending request records the poll (`domain::device::next_poll`;
    /// of two polls racing for one interval, one is answered `SlowDown`).
    async fn poll_device_code(
        &self,
        device_code: &SecretDigest,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<DevicePoll, StorageError>;

    /// Creates the refresh-token family of a redeemed device code, in one transaction that
    /// first locks the row of the session that approved it (`family.sid`) and checks it is
    /// live at `family.created_at`: false, nothing created, when it ended meanwhile. A
    /// logout racing it either comes after (and revokes the family) or before (and
    /// prevents it).
    async fn create_family_for_session(
        &self,
        family: &TokenFamily,
        token: &SecretDigest,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
}
