//! Brute-force protection: failed logins are counted per account and per client IP;
//! past the limit, attempts are refused for a delay that doubles with each failure.

use super::LoginConfig;
use crate::storage::{Storage, StorageError};
use chrono::{DateTime, Utc};

/// A client IP may fail this many times more than one account, since one office or
/// carrier NAT can hide many honest users.
const IP_FACTOR: u32 = 4;

pub fn account_subject(username: &str) -> String {
    format!("account:{}", username.trim().to_lowercase())
}

pub fn ip_subject(ip: &str) -> String {
    format!("ip:{ip}")
}

/// The client's IP: the peer address, or the proxy-reported one when trusted.
pub fn client_ip(req: &actix_web::HttpRequest, trust_forwarded_headers: bool) -> String {
    if trust_forwarded_headers {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            return ip.to_owned();
        }
    }
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}

/// `Some(until)` when `subject` is locked out now.
pub async fn locked_until(
    storage: &dyn Storage,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    Ok(storage.find_throttle(subject).await?.and_then(|t| t.locked_until).filter(|until| *until > now))
}

/// Counts a failure and locks the subject once it is over its limit.
pub async fn record_failure(
    storage: &dyn Storage,
    config: &LoginConfig,
    subject: &str,
    is_ip: bool,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let throttle = storage.record_failure(subject, now, now - config.failure_window).await?;
    let limit = i64::from(config.max_failures * if is_ip { IP_FACTOR } else { 1 });
    if throttle.failures >= limit {
        let doublings = (throttle.failures - limit).min(20) as u32;
        let delay = (config.lockout * 2_i32.pow(doublings.min(30))).min(config.max_lockout);
        storage.lock(subject, now + delay).await?;
    }
    Ok(())
}
