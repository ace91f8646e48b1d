//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3; OpenID Connect Core §9):
//! the client posts `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! and a `client_assertion`, a JWT it signed with a private key whose public half it
//! registered (`oauth::client_keys`).
//!
//! Order matters: the assertion is bounded and parsed, the client looked up by its claimed
//! id, the signature verified with that client's keys, then the claims checked, and only
//! then is the `jti` recorded (single use): a stranger without the client's key cannot make
//! Tessera store anything.

use super::client_keys::ClientKeys;
use super::error::OAuthError;
use crate::clock::Clock;
use crate::config::Issuer;
use crate::domain::client::{AuthMethod, Client, ClientId};
use crate::domain::secret::SecretDigest;
use crate::storage::client_cache::ClientCache;
use crate::storage::Storage;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use std::sync::Arc;
use tessera_verify::VerifyError;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Largest `client_assertion` accepted: an RS4096 signature and generous claims fit.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Longest an assertion may be valid from now: it is a one-time credential, and its `jti`
/// is stored until it expires.
const MAX_LIFETIME: TimeDelta = TimeDelta::minutes(5);
/// Clock difference allowed between the client and Tessera, for `iat` and `nbf`.
const SKEW: TimeDelta = TimeDelta::seconds(30);
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// What the handlers of `/token`, `/par`, `/revoke` and `/introspect` need to check
/// assertions: the issuer (for `aud`), the keys, storage (for `jti`s) and the clock.
pub struct AssertionChecker {
    pub issuer: Issuer,
    pub keys: ClientKeys,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
}

/// The header member read before the signature is verified: which key to fetch.
#[derive(Deserialize)]
struct UnverifiedHeader {
    kid: Option<String>,
}

/// RFC 7523 §3 claims. `aud` is a string or an array of strings.
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Self::One(aud) => accepted.contains(&aud.as_str()),
            Self::Many(auds) => auds.iter().any(|aud| accepted.contains(&aud.as_str())),
        }
    }
}

fn malformed() -> OAuthError {
    OAuthError::invalid_client("client_assertion is not a signed JWT (JWS compact serialization)")
}

/// The header and claims of `assertion`, decoded but not verified: they name the client
/// whose keys will verify it, and the key.
fn peek(assertion: &str) -> Result<(UnverifiedHeader, AssertionClaims), OAuthError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "client_assertion is larger than {MAX_ASSERTION_BYTES} bytes"
        )));
    }
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed());
    let header = serde_json::from_slice(&decode(header)?).map_err(|_| malformed())?;
    let claims = serde_json::from_slice(&decode(payload)?).map_err(|_| malformed())?;
    Ok((header, claims))
}

impl AssertionChecker {
    /// Authenticates the client of `assertion`. `body_client_id` is the `client_id` of the
    /// body, if any (it must then name the assertion's client); `endpoint` the URL the
    /// request was sent to, one of the accepted audiences.
    pub async fn authenticate(
        &self,
        clients: &ClientCache,
        assertion: &str,
        body_client_id: Option<&ClientId>,
        endpoint: &str,
    ) -> Result<Arc<Client>, OAuthError> {
        let (header, unverified) = peek(assertion)?;
        // RFC 7523 §3: `iss` and `sub` are the client's id; the client is looked up by them
        // and everything is checked again on the verified claims.
        let sub = unverified.sub.as_deref().ok_or_else(|| OAuthError::invalid_client("client_assertion has no sub"))?;
        let id = ClientId::parse(sub).map_err(|_| OAuthError::invalid_client("client authentication failed"))?;
        if body_client_id.is_some_and(|body| *body != id) {
            return Err(OAuthError::invalid_client("client_id differs from the client_assertion's sub"));
        }
        let client = clients
            .get(&id)
            .await?
            .map(|lookup| lookup.client)
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        if client.is_disabled() {
            return Err(OAuthError::invalid_client("the client is disabled"));
        }
        if client.auth_method != AuthMethod::PrivateKeyJwt {
            return Err(OAuthError::invalid_client(format!(
                "the client is registered for token_endpoint_auth_method {}",
                client.auth_method.as_str()
            )));
        }
        let kid = header.kid.as_deref();
        let now = self.clock.now();
        let keys = self.keys.for_client(&client, kid, now).await.map_err(|error| {
            tracing::warn!(client_id = %client.id, error = %error, "client keys unavailable");
            OAuthError::invalid_client("the client's keys are unavailable")
        })?;
        // RFC 7515 §5.2 with the client's keys, and only RS256, ES256 or EdDSA: `none` and
        // HMAC are refused before any key is tried.
        let verified = keys.verify(assertion).map_err(|error| {
            OAuthError::invalid_client(match error {
                VerifyError::UnsupportedAlgorithm => "client_assertion must be signed with RS256, ES256 or EdDSA",
                _ => "client_assertion's signature does not verify with the client's keys",
            })
        })?;
        let claims: AssertionClaims = verified.claims().map_err(|_| malformed())?;
        if claims.iss.as_deref() != Some(client.id.as_str()) || claims.sub.as_deref() != Some(client.id.as_str()) {
            return Err(OAuthError::invalid_client("client_assertion's iss and sub must both be the client_id"));
        }
        let expires_at = check_claims(&claims, &self.issuer, endpoint, now)?;
        let jti = claims.jti.as_deref().unwrap_or_default();
        // Two clients may choose the same jti: the client id is part of what is recorded.
        let digest = SecretDigest::of(&format!("{}\n{jti}", client.id));
        if !self.storage.record_assertion_jti(&digest, expires_at, now).await? {
            return Err(OAuthError::invalid_client("client_assertion was used already (jti)"));
        }
        Ok(client)
    }
}

/// RFC 7523 §3 and OpenID Connect Core §9, after the signature verified: `aud`, `exp`,
/// a bounded lifetime, `iat` and `nbf` not in the future, `jti` present. Returns the expiry.
fn check_claims(
    claims: &AssertionClaims,
    issuer: &Issuer,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, OAuthError> {
    let invalid = |why: &'static str| OAuthError::invalid_client(why);
    let token_endpoint = issuer.endpoint("/token");
    let accepted = [issuer.as_str(), token_endpoint.as_str(), endpoint];
    let aud = claims.aud.as_ref().ok_or_else(|| invalid("client_assertion has no aud"))?;
    if !aud.contains_any(&accepted) {
        return Err(invalid("client_assertion's aud must name the issuer or the endpoint it is sent to"));
    }
    let exp = claims.exp.ok_or_else(|| invalid("client_assertion has no exp"))?;
    let expires_at = DateTime::from_timestamp(exp, 0).ok_or_else(|| invalid("client_assertion's exp is invalid"))?;
    if expires_at <= now {
        return Err(invalid("client_assertion has expired"));
    }
    if expires_at - now > MAX_LIFETIME + SKEW {
        return Err(invalid("client_assertion's exp is more than 5 minutes ahead"));
    }
    let in_future = |t: i64| DateTime::from_timestamp(t, 0).is_none_or(|t| t > now + SKEW);
    if claims.iat.is_some_and(in_future) {
        return Err(invalid("client_assertion's iat is in the future"));
    }
    if claims.nbf.is_some_and(in_future) {
        return Err(invalid("client_assertion is not valid yet (nbf)"));
    }
    match claims.jti.as_deref() {
        Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => Ok(expires_at),
        Some(_) => Err(invalid("client_assertion's jti must be 1 to 256 characters")),
        None => Err(invalid("client_assertion has no jti")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: serde_json::Value) -> AssertionClaims {
        serde_json::from_value(value).unwrap()
    }

    fn issuer() -> Issuer {
        serde_json::from_value(json!("https://login.example.com")).unwrap()
    }

    #[test]
    fn claims_are_checked() {
        let now = Utc::now();
        let t = now.timestamp();
        let ok = json!({"iss":"c","sub":"c","aud":"https://login.example.com/token","exp":t+60,"iat":t,"jti":"1"});
        let check =
            |value: serde_json::Value| check_claims(&claims(value), &issuer(), "https://login.example.com/par", now);
        assert!(check(ok.clone()).is_ok());
        let with = |key: &str, value: serde_json::Value| {
            let mut v = ok.clone();
            v[key] = value;
            v
        };
        let without = |key: &str| {
            let mut v = ok.clone();
            v.as_object_mut().unwrap().remove(key);
            v
        };
        assert!(check(with("aud", json!(["https://login.example.com"]))).is_ok(), "the issuer");
        assert!(check(with("aud", json!("https://login.example.com/par"))).is_ok(), "the endpoint it was sent to");
        assert!(check(with("aud", json!("https://other.example.com/token"))).is_err(), "wrong aud");
        assert!(check(without("aud")).is_err());
        assert!(check(with("exp", json!(t - 1))).is_err(), "expired");
        assert!(check(with("exp", json!(t + 3600))).is_err(), "too long");
        assert!(check(without("exp")).is_err());
        assert!(check(with("iat", json!(t + 600))).is_err(), "iat in the future");
        assert!(check(with("nbf", json!(t + 600))).is_err(), "not yet valid");
        assert!(check(without("jti")).is_err());
        assert!(check(with("jti", json!(""))).is_err());
    }

    #[test]
    fn malformed_assertions_are_refused_before_anything_else() {
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"a".repeat(MAX_ASSERTION_BYTES + 1)] {
            assert!(peek(bad).is_err(), "{bad}");
        }
    }
}
