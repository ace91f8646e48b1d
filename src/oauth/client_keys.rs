//! The public keys of `private_key_jwt` clients (RFC 7523 §2.2, OpenID Connect Core §9):
//! checked when a client is registered, and at authentication read from the registration
//! (`jwks`) or fetched from the client's `jwks_uri`, cached, with refetches rate-limited
//! so that a stranger sending assertions with unknown `kid`s cannot make Tessera fetch
//! again and again.

use crate::domain::client::{Client, ClientId, KeySource};
use crate::http::outbound::OutboundPolicy;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_verify::{Algorithm, KeySet, VerifiedJws, VerifyError};
use url::Url;

/// Largest JWK Set accepted, registered or fetched.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Keys a registered set may have.
const MAX_KEYS: usize = 10;
/// How long a fetched set is used when its response says nothing (`Cache-Control: max-age`).
const DEFAULT_CACHE: Duration = Duration::from_secs(5 * 60);
/// The bounds put on a response's `max-age`.
const MIN_CACHE: Duration = Duration::from_secs(60);
const MAX_CACHE: Duration = Duration::from_secs(60 * 60);
/// The shortest time between two fetches of one client's set, whatever the assertions say.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Time limit of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Members that only private keys have (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The signature algorithms of client assertions (RFC 7518 §3.3, §3.4; RFC 8037 §3.1).
/// `none` and the HMAC algorithms are no [`Algorithm`]: they cannot be accepted.
pub const ASSERTION_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// A client's usable public keys, parsed once (tessera-verify's client key set: keys
/// without `kid` are kept and tried, at most `MAX_KEYS_TRIED` per assertion).
#[derive(Debug)]
pub struct ClientKeySet(KeySet);

impl Default for ClientKeySet {
    fn default() -> Self {
        Self(KeySet::from_client_jwks(br#"{"keys":[]}"#, ASSERTION_ALGORITHMS).expect("an empty JWK Set"))
    }
}

impl ClientKeySet {
    /// Parses a JWK Set, keeping the public signature keys usable with
    /// [`ASSERTION_ALGORITHMS`]. Keys with private members are skipped; [`check_jwks`]
    /// refuses them at registration.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(format!("is larger than {MAX_JWKS_BYTES} bytes"));
        }
        KeySet::from_client_jwks(text.as_bytes(), ASSERTION_ALGORITHMS)
            .map(Self)
            .map_err(|e| format!("is not a JWK Set (an object with a keys array): {e}"))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a key is published as `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.0.contains(kid)
    }

    /// Verifies the compact JWS `token` with these keys (RFC 7515 §5.2): the key it names,
    /// or without one each key that fits its `alg`; the alg must be one of
    /// [`ASSERTION_ALGORITHMS`] and fit the key.
    pub fn verify(&self, token: &str) -> Result<VerifiedJws, VerifyError> {
        self.0.verify_jws(token, ASSERTION_ALGORITHMS)
    }
}

/// Checks a JWK Set a client registers (`--jwks-file`): at most [`MAX_JWKS_BYTES`], no
/// private key members anywhere, at least one usable key. Returns it as compact JSON.
pub fn check_jwks(text: &str) -> Result<String, String> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let set: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    let keys = set.get("keys").and_then(Value::as_array).ok_or("is not a JWK Set (an object with a keys array)")?;
    if keys.iter().any(|k| k.as_object().is_some_and(|k| PRIVATE_MEMBERS.iter().any(|m| k.contains_key(*m)))) {
        return Err("holds a private key: register the public keys only".into());
    }
    if keys.len() > MAX_KEYS {
        return Err(format!("has more than {MAX_KEYS} keys"));
    }
    let compact = set.to_string();
    if ClientKeySet::parse(&compact)?.is_empty() {
        return Err("has no usable public key (RSA of 2048 bits or more, EC P-256 or Ed25519, for signing)".into());
    }
    Ok(compact)
}

/// Checks a `jwks_uri` a client registers: an https URL the outbound policy allows.
pub fn check_jwks_uri(raw: &str, policy: OutboundPolicy) -> Result<String, String> {
    if raw.len() > 2048 {
        return Err("is longer than 2048 characters".into());
    }
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    policy.check_url(&url).map_err(|e| format!("`{raw}`: {e}"))?;
    Ok(url.to_string())
}

/// Where `jwks_uri`s may point (`[private_key_jwt]`).
pub fn outbound_policy(settings: &crate::config::Settings) -> OutboundPolicy {
    OutboundPolicy {
        allow_loopback: settings.private_key_jwt.allow_loopback_jwks_uri,
        allow_private: settings.private_key_jwt.allow_private_jwks_uri,
    }
}

/// Why a client's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysUnavailable {
    #[error("the client has no registered keys")]
    NotRegistered,
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(String),
    #[error("the client's registered JWK Set is invalid: {0}")]
    Invalid(String),
}

/// A fetched set and when it was fetched.
struct Fetched {
    keys: Arc<ClientKeySet>,
    at: DateTime<Utc>,
    fresh_for: Duration,
}

/// One client's fetched set, and when an unknown `kid` last made Tessera fetch it.
#[derive(Default)]
struct Slot {
    fetched: Option<Fetched>,
    kid_refetch_at: Option<DateTime<Utc>>,
}

/// The keys of each client with a `jwks_uri`, as last fetched. One slot per client (the
/// clients are registered, so the map is bounded by the registrations); its async lock
/// makes concurrent authentications of one client wait for one fetch rather than each
/// fetching.
pub struct ClientKeys {
    http: reqwest::Client,
    policy: OutboundPolicy,
    slots: Mutex<HashMap<ClientId, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Registered sets, parsed once (parsing a key costs about a verification), with the
    /// text they were parsed from: a changed registration is parsed again.
    registered: Mutex<HashMap<ClientId, (String, Arc<ClientKeySet>)>>,
}

impl ClientKeys {
    pub fn new(policy: OutboundPolicy) -> reqwest::Result<Self> {
        Ok(Self {
            http: policy.client(FETCH_TIMEOUT)?,
            policy,
            slots: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
        })
    }

    fn registered(&self, client: &Client, text: &str) -> Result<Arc<ClientKeySet>, KeysUnavailable> {
        let mut registered = self.registered.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((parsed_from, keys)) = registered.get(&client.id) {
            if parsed_from == text {
                return Ok(keys.clone());
            }
        }
        let keys = Arc::new(ClientKeySet::parse(text).map_err(KeysUnavailable::Invalid)?);
        registered.insert(client.id.clone(), (text.to_owned(), keys.clone()));
        Ok(keys)
    }

    /// The keys to verify an assertion of `client` that names `kid` with. A fetched set is
    /// reused while fresh (its `Cache-Control: max-age`, bounded); it is fetched again when
    /// stale, or when `kid` is not in it, at most once per [`REFETCH_INTERVAL`].
    pub async fn for_client(
        &self,
        client: &Client,
        kid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Arc<ClientKeySet>, KeysUnavailable> {
        let uri = match &client.keys {
            Some(KeySource::Jwks(text)) => return self.registered(client, text),
            Some(KeySource::Uri(uri)) => uri,
            None => return Err(KeysUnavailable::NotRegistered),
        };
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.entry(client.id.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(fetched) = &slot.fetched {
            // A clock set back counts as no time passed.
            let age = (now - fetched.at).to_std().unwrap_or_default();
            let is_fresh = age < fetched.fresh_for;
            let knows_kid = kid.is_none_or(|kid| fetched.keys.has_kid(kid));
            if is_fresh && knows_kid {
                return Ok(fetched.keys.clone());
            }
            if is_fresh {
                // An unknown kid: the client may have rotated its keys, or a stranger is
                // guessing. Fetched again at most once per interval, whoever asks.
                let may_refetch =
                    slot.kid_refetch_at.is_none_or(|at| (now - at).to_std().unwrap_or_default() >= REFETCH_INTERVAL);
                if !may_refetch {
                    return Ok(fetched.keys.clone());
                }
                slot.kid_refetch_at = Some(now);
            }
        }
        match self.fetch(uri, now).await {
            Ok(fetched) => {
                let keys = fetched.keys.clone();
                slot.fetched = Some(fetched);
                Ok(keys)
            }
            Err(error) => {
                // A failed fetch is not retried sooner than a refetch would be; meanwhile the
                // previous set stands (the client's keys server being down does not lock the
                // client out), stale again after that interval.
                tracing::warn!(client_id = %client.id, error = %error, "fetching the client's jwks_uri failed");
                slot.kid_refetch_at = Some(now);
                match &mut slot.fetched {
                    Some(previous) => {
                        let retry_at = now + chrono::Duration::from_std(REFETCH_INTERVAL).unwrap_or_default();
                        previous.at = retry_at - chrono::Duration::from_std(previous.fresh_for).unwrap_or_default();
                        return Ok(previous.keys.clone());
                    }
                    None => {
                        slot.fetched = Some(Fetched {
                            keys: Arc::new(ClientKeySet::default()),
                            at: now,
                            fresh_for: REFETCH_INTERVAL,
                        })
                    }
                }
                Err(error)
            }
        }
    }

    async fn fetch(&self, uri: &str, now: DateTime<Utc>) -> Result<Fetched, KeysUnavailable> {
        let failed = |e: &dyn std::fmt::Display| KeysUnavailable::Fetch(e.to_string());
        // Checked again before each fetch: the policy may have changed since registration,
        // and the guarded resolver never sees an IP-literal host.
        let url = Url::parse(uri).map_err(|e| failed(&e))?;
        self.policy.check_url(&url).map_err(|e| failed(&e))?;
        let mut response =
            self.http.get(url).header("Accept", "application/json").send().await.map_err(|e| failed(&e))?;
        if !response.status().is_success() {
            return Err(failed(&format!("status {}", response.status())));
        }
        let fresh_for = max_age(response.headers()).unwrap_or(DEFAULT_CACHE).clamp(MIN_CACHE, MAX_CACHE);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(failed(&format!("the response is larger than {MAX_JWKS_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).map_err(|_| failed(&"the response is not UTF-8"))?;
        let keys = ClientKeySet::parse(&text).map_err(|e| failed(&format!("the response {e}")))?;
        Ok(Fetched { keys: Arc::new(keys), at: now, fresh_for })
    }
}

/// `Cache-Control: max-age` of a response (`no-store`/`no-cache` count as 0, which the
/// caller raises to [`MIN_CACHE`]).
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        lower.strip_prefix("max-age=").and_then(|v| v.trim_matches('"').parse::<u64>().ok()).map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_jwk() -> Value {
        // RFC 7517 Appendix A.1's RSA public key (2048 bits).
        json!({"kty":"RSA","kid":"2011-04-29","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"})
    }

    #[test]
    fn registration_refuses_private_keys_empty_sets_and_junk() {
        let public = json!({"keys": [rsa_jwk()]}).to_string();
        assert!(check_jwks(&public).is_ok());
        let mut private = rsa_jwk();
        private["d"] = json!("AQAB");
        let error = check_jwks(&json!({"keys": [private]}).to_string()).unwrap_err();
        assert!(error.contains("private"), "{error}");
        assert!(check_jwks(r#"{"keys": []}"#).unwrap_err().contains("no usable"));
        assert!(check_jwks(r#"{"keys": [{"kty":"oct","k":"c2VjcmV0"}]}"#).is_err());
        assert!(check_jwks("[]").is_err());
        assert!(check_jwks(&" ".repeat(MAX_JWKS_BYTES + 1)).unwrap_err().contains("larger"));
    }

    #[test]
    fn keys_published_for_another_alg_or_use_are_not_used() {
        let mut enc = rsa_jwk();
        enc["use"] = json!("enc");
        let mut hs = rsa_jwk();
        hs["alg"] = json!("HS256");
        let set = ClientKeySet::parse(&json!({"keys": [enc, hs]}).to_string()).unwrap();
        assert!(set.is_empty());
    }

    #[test]
    fn jwks_uri_must_be_https_and_public() {
        let strict = OutboundPolicy::default();
        assert!(check_jwks_uri("https://client.example.com/jwks.json", strict).is_ok());
        assert!(check_jwks_uri("http://client.example.com/jwks.json", strict).is_err());
        assert!(check_jwks_uri("https://127.0.0.1/jwks.json", strict).is_err());
        assert!(check_jwks_uri("https://169.254.169.254/jwks.json", strict).is_err());
        let dev = OutboundPolicy { allow_loopback: true, allow_private: false };
        assert!(check_jwks_uri("http://127.0.0.1:9000/jwks.json", dev).is_ok());
    }

    #[test]
    fn cache_control_max_age_is_read() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::CACHE_CONTROL, "public, max-age=600".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert(reqwest::header::CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
    }
}
