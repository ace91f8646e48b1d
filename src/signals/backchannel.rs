//! OpenID Connect Back-Channel Logout 1.0: the Logout Token (§2.4) and its delivery (§2.5)
//! from the outbox (`storage::BackchannelStore`).
//!
//! At least once, like the Shared Signals pusher (`push`): a token leaves the outbox only
//! when the RP answered 200 or 204 (§2.8), refused it with 400 (sending the same token
//! again cannot succeed), or it was given up (`give_up_after`). A crash between the
//! session's end and the POST only delays it. Failures are retried with a doubling wait
//! (1 s, 2 s, 4 s … up to `max_backoff`). Replicas share the work through leases on the
//! outbox rows. Requests go through the SSRF-guarded client (`http::outbound`): no
//! redirects, a time-out, and addresses checked at every resolution.

use crate::clock::Clock;
use crate::http::outbound::OutboundPolicy;
use crate::keys::jws;
use crate::keys::signing_keys::JwsType;
use crate::keys::{SigningKey, SigningKeys};
use crate::metrics::Metrics;
use crate::storage::{LogoutAttempt, LogoutOutcome, Storage};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::task::{JoinHandle, JoinSet};

/// The event member of every Logout Token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a Logout Token is valid: §2.4 recommends a short `exp` (at most two minutes).
const LIFETIME: Duration = Duration::minutes(2);
/// Attempts in flight at once, per replica.
const IN_FLIGHT: usize = 32;
/// Attempts in flight at once for one client, over all replicas (leased rows count): an
/// RP whose endpoint hangs until the timeout holds no more places than this.
const PER_CLIENT: i64 = 4;
/// How often due retries are looked for when nothing wakes the dispatcher.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// §2.4 claims: `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and `sid`; never a
/// `nonce` (§2.4: so a Logout Token cannot pass for an ID Token).
#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    sub: &'a str,
    sid: &'a str,
    events: Value,
}

/// The Logout Token of `attempt`, signed with `key` (the current signing key) at `now`.
/// Signed anew at each attempt: a retry after the token's `exp` must not be stale.
pub fn encode(key: &SigningKey, issuer: &str, attempt: &LogoutAttempt, now: DateTime<Utc>) -> anyhow::Result<String> {
    let claims = LogoutClaims {
        iss: issuer,
        aud: attempt.client_id.as_str(),
        iat: now.timestamp(),
        exp: (now + LIFETIME).timestamp(),
        jti: &attempt.jti,
        sub: attempt.user_id.as_str(),
        sid: attempt.sid.as_str(),
        events: json!({ LOGOUT_EVENT: {} }),
    };
    jws::sign(key, JwsType::LogoutToken, &claims)
}

/// Checks a `backchannel_logout_uri` a client registers (§2.2): an absolute https URL
/// without a fragment that the outbound policy allows (http only to loopback, when
/// `allow_loopback_uri` is on).
pub fn check_uri(raw: &str, policy: OutboundPolicy) -> Result<String, String> {
    if raw.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    policy.check_url(&url).map_err(|e| format!("`{raw}`: {e}"))?;
    Ok(url.to_string())
}

/// Where `backchannel_logout_uri`s may point (`[backchannel_logout]`).
pub fn outbound_policy(settings: &crate::config::Settings) -> OutboundPolicy {
    OutboundPolicy {
        allow_loopback: settings.backchannel_logout.allow_loopback_uri,
        allow_private: settings.backchannel_logout.allow_private_uri,
    }
}

/// What the dispatcher needs, cloned once into its task.
pub struct LogoutDispatcher {
    pub storage: Arc<dyn Storage>,
    pub keys: Arc<SigningKeys>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub issuer: String,
    pub timeout: std::time::Duration,
    pub max_backoff: Duration,
    pub give_up_after: Duration,
    pub policy: OutboundPolicy,
}

impl LogoutDispatcher {
    /// Runs the dispatcher until the task is aborted (the server stops).
    pub fn spawn(self) -> anyhow::Result<JoinHandle<()>> {
        let client = self.policy.client(self.timeout)?;
        let dispatcher = Arc::new(self);
        Ok(tokio::spawn(async move {
            let mut signal = dispatcher.storage.events_signal();
            let mut in_flight = JoinSet::new();
            loop {
                signal.borrow_and_update();
                let room = IN_FLIGHT - in_flight.len();
                let mut filled = false;
                if room > 0 {
                    match dispatcher.claim(room).await {
                        Ok(attempts) => {
                            filled = attempts.len() == room;
                            for attempt in attempts {
                                let (dispatcher, client) = (dispatcher.clone(), client.clone());
                                in_flight.spawn(async move { dispatcher.deliver(&client, attempt).await });
                            }
                        }
                        Err(error) => tracing::warn!(error = ?error, "claiming Logout Tokens failed; will retry"),
                    }
                }
                if filled {
                    continue; // more may be due
                }
                tokio::select! {
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = signal.changed() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }))
    }

    async fn claim(&self, room: usize) -> anyhow::Result<Vec<LogoutAttempt>> {
        let now = self.clock.now();
        let lease = Duration::from_std(self.timeout).unwrap_or(Duration::MAX) + Duration::seconds(5);
        let room = i64::try_from(room).unwrap_or(i64::MAX);
        Ok(self.storage.claim_logouts(now, now + lease, now - self.give_up_after, room, PER_CLIENT).await?)
    }

    /// One attempt and its settlement. A settlement that fails leaves the lease to expire:
    /// the token is then sent again (at least once).
    async fn deliver(&self, client: &reqwest::Client, attempt: LogoutAttempt) {
        let outcome = match self.send(client, &attempt).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let doublings = (attempt.attempts - 1).clamp(0, 20) as u32;
                let wait = Duration::seconds(1i64 << doublings).min(self.max_backoff);
                LogoutOutcome::Retry { at: self.clock.now() + wait, error }
            }
        };
        let (client_id, sid) = (attempt.client_id.as_str(), attempt.sid.as_str());
        match &outcome {
            LogoutOutcome::Delivered => {
                self.metrics.backchannel_logout_deliveries.with_label_values(&["delivered"]).inc();
                crate::audit!(
                    info,
                    "backchannel_logout",
                    "delivered",
                    client_id,
                    sid,
                    user_id = attempt.user_id.as_str()
                );
            }
            LogoutOutcome::Dropped { error } => {
                self.metrics.backchannel_logout_deliveries.with_label_values(&["dropped"]).inc();
                crate::audit!(warn, "backchannel_logout", "dropped", client_id, sid,
                    user_id = attempt.user_id.as_str(), error = %error);
            }
            LogoutOutcome::Retry { at, error } => {
                self.metrics.backchannel_logout_deliveries.with_label_values(&["retry"]).inc();
                tracing::info!(client_id, sid, attempts = attempt.attempts, retry_at = %at, error = %error,
                    "Logout Token not delivered; will retry");
            }
        }
        if let Err(error) = self.storage.settle_logout(&attempt.jti, &outcome).await {
            tracing::warn!(error = ?error, client_id, "settling a Logout Token delivery failed");
        }
    }

    /// `Err` is a failure worth retrying.
    async fn send(&self, client: &reqwest::Client, attempt: &LogoutAttempt) -> Result<LogoutOutcome, String> {
        let Some(raw) = &attempt.uri else {
            return Ok(LogoutOutcome::Dropped { error: "the client no longer has a backchannel_logout_uri".into() });
        };
        let url: url::Url = match raw.parse() {
            Ok(url) => url,
            Err(_) => return Ok(LogoutOutcome::Dropped { error: "the backchannel_logout_uri is not a URL".into() }),
        };
        // An IP-literal host never reaches the guarded resolver: checked here, every time.
        if let Err(refused) = self.policy.check_url(&url) {
            return Err(format!("backchannel_logout_uri refused: {refused}"));
        }
        let key = self.keys.snapshot().current.clone();
        let token = encode(&key, &self.issuer, attempt, self.clock.now()).map_err(|e| format!("signing: {e}"))?;
        // §2.5: a form-encoded POST with the token in `logout_token`.
        let body = url::form_urlencoded::Serializer::new(String::new()).append_pair("logout_token", &token).finish();
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            // reqwest errors name the URL, which an RP may have put a secret in.
            .map_err(|e| e.without_url().to_string())?;
        // The body is never read (§2.8 gives it no meaning to the OP); dropping the
        // response closes the connection without reading it.
        match response.status().as_u16() {
            200 | 204 => Ok(LogoutOutcome::Delivered),
            // §2.8: the RP rejected this token; the same token cannot succeed later.
            400 => Ok(LogoutOutcome::Dropped { error: "HTTP 400".into() }),
            status => Err(format!("HTTP {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::authorization::SessionId;
    use crate::domain::client::ClientId;
    use crate::domain::user::UserId;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn a_logout_token_has_the_section_2_4_claims_and_no_nonce() {
        let pem = include_str!("../../keys/test-signing-key.pem");
        let key = SigningKey::from_pkcs8(&crate::keys::signing_keys::pkcs8_from_pem(pem).unwrap()).unwrap();
        let attempt = LogoutAttempt {
            jti: "j1".into(),
            client_id: ClientId::parse("rp").unwrap(),
            uri: Some("https://rp.example/bcl".into()),
            user_id: UserId::from_stored("u1".into()),
            sid: SessionId::from_stored("s1".into()),
            attempts: 1,
        };
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let token = encode(&key, "https://id.example.com", &attempt, now).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], key.kid.as_str());
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"]);
        assert_eq!(claims["events"], json!({ LOGOUT_EVENT: {} }));
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    }

    #[test]
    fn the_uri_must_be_https_without_a_fragment() {
        let strict = OutboundPolicy::default();
        let dev = OutboundPolicy { allow_loopback: true, allow_private: false };
        assert!(check_uri("https://rp.example.com/logout?x=1", strict).is_ok());
        assert!(check_uri("http://rp.example.com/logout", strict).is_err());
        assert!(check_uri("http://rp.example.com/logout", dev).is_err());
        assert!(check_uri("https://rp.example.com/logout#f", strict).is_err());
        assert!(check_uri("https://10.0.0.5/logout", strict).is_err());
        assert!(check_uri("http://127.0.0.1:9000/logout", strict).is_err());
        assert!(check_uri("http://127.0.0.1:9000/logout", dev).is_ok());
    }
}
