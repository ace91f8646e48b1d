//! Security Event Tokens (RFC 8417) as SSF §4 profiles them: `typ` `secevent+jwt`, RS256
//! with the keys of the JWKS (the CAEP interoperability profile §2.6), `iss`, `aud` of the
//! stream, `iat`, `jti`, `txn`, the subject in `sub_id` (SSF §3.1), and exactly one event;
//! never `sub` or `exp` (SSF §4.1.2, §4.1.7), so a SET cannot pass for an ID or access
//! token.

use crate::domain::signals::{SecurityEvent, Subject};
use crate::keys::jws;
use crate::keys::signing_keys::JwsType;
use crate::keys::SigningKey;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// RFC 8417 §2.2 claims, borrowed from the event and its delivery.
#[derive(Serialize)]
struct SetClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    jti: &'a str,
    txn: &'a str,
    sub_id: &'a Subject,
    events: Map<String, Value>,
}

/// One SET as delivered to one stream.
pub struct Delivered<'a> {
    pub event: &'a SecurityEvent,
    /// The stream's receiver (`aud`, SSF §4.1.8).
    pub audience: &'a str,
    /// Unique per event and stream (RFC 8417 §2.2).
    pub jti: &'a str,
    /// When the SET was made for the stream; kept with the delivery, so that a SET sent
    /// again is the same SET (RS256 signatures are deterministic).
    pub issued_at: DateTime<Utc>,
}

/// Signs `set` with `key` (the current signing key).
pub fn encode(key: &SigningKey, issuer: &str, set: &Delivered<'_>) -> anyhow::Result<String> {
    let mut events = Map::with_capacity(1);
    events.insert(set.event.event_type.uri().to_owned(), set.event.body.clone());
    let claims = SetClaims {
        iss: issuer,
        aud: set.audience,
        iat: set.issued_at.timestamp(),
        jti: set.jti,
        txn: &set.event.txn,
        sub_id: &set.event.subject,
        events,
    };
    jws::sign(key, JwsType::SecurityEvent, &claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::signals::{Cause, Initiator};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    #[test]
    fn a_set_has_the_ssf_claims_and_nothing_else() {
        let pem = include_str!("../../keys/test-signing-key.pem");
        let key = SigningKey::from_pkcs8(&crate::keys::signing_keys::pkcs8_from_pem(pem).unwrap()).unwrap();
        let at = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let cause = Cause::new("https://id.example.com", at, chrono::Duration::minutes(5));
        let event =
            cause.session_revoked(Subject::session("https://id.example.com", "u1", "s1"), Initiator::User, "logout");
        let set = Delivered { event: &event, audience: "receiver", jti: "j1", issued_at: at };
        let token = encode(&key, "https://id.example.com", &set).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["typ"], "secevent+jwt");
        assert_eq!(header["alg"], "RS256");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["aud", "events", "iat", "iss", "jti", "sub_id", "txn"], "no sub, no exp");
        assert_eq!(claims["events"].as_object().unwrap().len(), 1);
        assert_eq!(claims["sub_id"]["session"]["id"], "s1");
        assert_eq!(claims["txn"], event.txn.as_str());
        assert_eq!(token, encode(&key, "https://id.example.com", &set).unwrap(), "the same SET twice");
    }
}
