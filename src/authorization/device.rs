//! What the device authorization grant's endpoints share (RFC 8628): its settings, and the
//! keyed digest user codes are stored under.
//!
//! Why a keyed digest: a user code has about 34 bits (§6.1), so a plain SHA-256 of it is
//! reversed by trying every code. Under an HMAC key derived from the key-encryption key
//! (as the DPoP nonces' key is), a copy of the database alone gives none of them away.

use crate::config::Settings;
use crate::domain::device::UserCode;
use crate::domain::secret::SecretDigest;
use crate::keys::kek::KeyEncryptionKey;
use crate::storage::client_requests::RequestLimits;
use aws_lc_rs::hmac;
use chrono::Duration;

/// The `[device]` settings and the user-code key, derived once at startup.
pub struct DevicePolicy {
    /// §3.2 `expires_in`.
    pub lifetime: Duration,
    /// §3.2 `interval`.
    pub interval: Duration,
    pub limits: RequestLimits,
    /// Unexpired requests one public client may have from one client IP network.
    pub max_per_ip: i64,
    /// Take the client IP from `Forwarded` / `X-Forwarded-For` (behind a proxy only).
    pub trust_forwarded_headers: bool,
    /// Keys the digest of a public client's network (`oauth::client_auth::public_source`).
    pub source_key: hmac::Key,
    /// Wrong user codes an account may enter per `login.failure_window` (§5.1).
    pub max_user_code_failures: u32,
    /// §3.2 `verification_uri`: `{issuer}/device`.
    pub verification_uri: String,
    user_code_key: hmac::Key,
}

impl DevicePolicy {
    pub fn new(settings: &Settings, kek: &KeyEncryptionKey) -> Self {
        Self {
            lifetime: settings.device.lifetime.chrono(),
            interval: settings.device.interval.chrono(),
            limits: RequestLimits {
                max_per_client: i64::from(settings.device.max_per_client),
                max_total: i64::from(settings.device.max_total),
            },
            max_per_ip: i64::from(settings.device.max_per_ip),
            trust_forwarded_headers: settings.http.trust_forwarded_headers,
            max_user_code_failures: settings.device.max_user_code_failures,
            verification_uri: settings.issuer.endpoint("/device"),
            user_code_key: kek.derive_hmac_key(b"tessera device user codes v1"),
            source_key: kek.derive_hmac_key(b"tessera device request sources v1"),
        }
    }

    /// The digest `code` is stored and looked up under: HMAC-SHA256, hex.
    pub fn user_code_digest(&self, code: &UserCode) -> SecretDigest {
        SecretDigest::keyed(&self.user_code_key, code.as_str().as_bytes())
    }
}
