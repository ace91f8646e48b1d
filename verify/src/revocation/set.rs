//! Security Event Tokens (RFC 8417) as SSF 1.0 §4 profiles them, verified strictly before
//! anything in them is used, and read into what the deny set needs.
//!
//! The checks, in order: the JWS checks of access tokens (size, shape, no `crit`, one
//! `kid`) with `typ` exactly `secevent+jwt` (SSF §4.1.1) and RS256 only (the CAEP
//! interoperability profile §2.6), the signature with the issuer's JWK Set (the verifier's
//! own key cache); then `iss` (SSF §4.1.6), `aud` (§4.1.8), `iat` and `jti` (RFC 8417
//! §2.2), the `jti` the poll response filed the SET under, no `sub` (§4.1.2) and no `exp`
//! (§4.1.7), a `sub_id` (§3.1), and exactly one event (§4.2.1, interop §2.8.1). A SET that
//! fails is reported in `setErrs` with the RFC 8935 §2.4 code that fits and never applied.
//!
//! What each event means for the deny set (Tessera's mapping, `domain/signals.rs`):
//! CAEP `session-revoked` (CAEP §3.1) revokes what its subject names: a refresh-token
//! family (`token_family`, a Tessera member of the complex subject, SSF §3.3), else a
//! session (`session`), else every token of a user (`user`, `iss_sub`) or of a client
//! (`application`) issued until its `event_timestamp`; a `jwt_id` subject (SSF §3.5.1)
//! revokes one token. RISC `account-disabled` (RISC §2.3) revokes every token of the
//! user. `credential-change` and `account-enabled` revoke nothing (the first comes with a
//! `session-revoked` of the user; the second does not undo earlier revocations).

use super::deny::Denial;
use crate::claims::{Audience, NumericDate};
use crate::jws::{self, HeaderBuffer, TokenType, HEADER_BUFFER_LEN};
use crate::key_cache::KeyCache;
use crate::{Algorithm, VerifyError};
use serde::de::{Deserializer, IgnoredAny};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// CAEP 1.0 §3.1.
pub(crate) const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 §3.3.
pub(crate) const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// RISC 1.0 §2.3.
pub(crate) const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// RISC 1.0 §2.4.
pub(crate) const ACCOUNT_ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
/// SSF 1.0 §8.1.4.1.
pub(crate) const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// SSF 1.0 §8.1.5.
pub(crate) const STREAM_UPDATED: &str = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";

/// The event types a stream asks for (SSF §8.1.1 `events_requested`).
pub(crate) const REQUESTED: [&str; 4] = [SESSION_REVOKED, ACCOUNT_DISABLED, CREDENTIAL_CHANGE, ACCOUNT_ENABLED];

/// The complex-subject members this verifier acts on (SSF §3.3, and Tessera's
/// `token_family`); a critical member outside them makes an event unusable (§3.6).
const UNDERSTOOD_MEMBERS: [&str; 4] = ["user", "session", "application", "token_family"];

/// What a SET is checked against: the stream it came on.
#[derive(Clone, Debug)]
pub(crate) struct SetPolicy {
    pub issuer: String,
    /// The stream's `aud` (SSF §8.1.1): a SET's `aud` must hold exactly these values.
    pub audience: Vec<String>,
    pub stream_id: String,
    /// The transmitter's `critical_subject_members` (SSF §7.1).
    pub critical_members: Vec<String>,
}

/// A SET that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Set {
    pub jti: String,
    pub txn: Option<String>,
    /// `iat`, in milliseconds.
    pub issued_ms: i64,
    /// CAEP §2 `event_timestamp`, in milliseconds, when the event has one.
    pub event_ms: Option<i64>,
    /// The event type URI.
    pub event_type: String,
    pub event: Event,
}

/// What a SET asks of this verifier.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    /// `session-revoked`: revoke this. User and client cut-offs are still at 0 here; the
    /// feed sets them to the event's time.
    Revoke(Denial),
    /// `account-disabled` of the user `sub`: every token issued until the event. RISC
    /// defines no `event_timestamp`, so the feed finds the time (see `feed.rs`).
    AccountDisabled { sub: String },
    /// SSF §8.1.4.1: the echo of a verification request.
    Verification { state: Option<String> },
    /// SSF §8.1.5: the stream's status changed.
    StreamUpdated { status: String, reason: Option<String> },
    /// Nothing to revoke: `credential-change`, `account-enabled`, an event type this
    /// verifier did not ask for, or a subject it cannot match (another issuer's user, a
    /// critical member it does not understand). The reason is for the logs.
    Nothing(&'static str),
}

/// Why a SET was refused: the RFC 8935 §2.4 error code and a fixed description, sent
/// back in `setErrs` (RFC 8936 §2.4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SetError {
    pub err: &'static str,
    pub description: &'static str,
}

impl SetError {
    const fn invalid(description: &'static str) -> Self {
        Self { err: "invalid_request", description }
    }
}

/// The outcome of checking one SET.
#[derive(Debug)]
pub(crate) enum Checked {
    Valid(Box<Set>),
    /// Refused for good: reported in `setErrs`, never applied.
    Refused(SetError),
    /// Not checkable now, through no fault of the SET: its key is unknown (perhaps not
    /// fetched yet) or the JWK Set cannot be fetched. Left unacknowledged, so the
    /// transmitter sends it again.
    Retry(Retry),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    UnknownKey,
    KeysUnavailable,
}

/// Checks the SET `token`, which the poll response filed under `jti`.
pub(crate) async fn check(policy: &SetPolicy, keys: &Arc<KeyCache>, jti: &str, token: &str) -> Checked {
    let mut buffer: HeaderBuffer = [0; HEADER_BUFFER_LEN];
    let unverified = match jws::open(token, &mut buffer, &[Algorithm::RS256], TokenType::SecurityEvent) {
        Ok(unverified) => unverified,
        Err(error) => return refusal(&error),
    };
    let key_set = match keys.keys_for(unverified.kid()).await {
        Ok(key_set) => key_set,
        Err(VerifyError::UnknownKey) => return Checked::Retry(Retry::UnknownKey),
        Err(VerifyError::KeysUnavailable(_)) => return Checked::Retry(Retry::KeysUnavailable),
        Err(error) => return refusal(&error),
    };
    match unverified.verify(&key_set, RawSet::from_json) {
        Ok(raw) => match read(policy, jti, raw) {
            Ok(set) => Checked::Valid(Box::new(set)),
            Err(error) => Checked::Refused(error),
        },
        Err(error) => refusal(&error),
    }
}

/// RFC 8935 §2.4: a bad signature or an unacceptable key is `invalid_key`; anything else
/// wrong with the token is `invalid_request`.
fn refusal(error: &VerifyError) -> Checked {
    Checked::Refused(match error {
        VerifyError::UnsupportedAlgorithm => {
            SetError { err: "invalid_key", description: "the SET is not signed with RS256" }
        }
        VerifyError::UnknownKey => {
            SetError { err: "invalid_key", description: "the SET is signed with an unknown key" }
        }
        VerifyError::BadSignature => SetError { err: "invalid_key", description: "the SET signature is invalid" },
        VerifyError::WrongType => SetError::invalid("the SET's typ is not secevent+jwt"),
        _ => SetError::invalid("the SET is malformed"),
    })
}

/// RFC 8417 §2.2 claims, parsed only after the signature verified. A registered member
/// given twice fails, as in access tokens; `sub` and `exp` are read only to refuse them.
#[derive(Deserialize)]
struct RawSet {
    iss: String,
    aud: Audience,
    iat: NumericDate,
    jti: String,
    #[serde(default)]
    txn: Option<String>,
    #[serde(default)]
    sub_id: Option<Map<String, Value>>,
    events: Map<String, Value>,
    #[serde(default, deserialize_with = "present")]
    sub: bool,
    #[serde(default, deserialize_with = "present")]
    exp: bool,
}

/// True for any value, `null` included: the member is there.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl RawSet {
    fn from_json(json: &[u8]) -> Result<Self, VerifyError> {
        // Derived `Deserialize` also takes a struct written as an array: look first.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(VerifyError::Malformed("the SET claims are not a JSON object"));
        }
        serde_json::from_slice(json).map_err(|_| VerifyError::Malformed("the SET claims are not valid"))
    }
}

fn read(policy: &SetPolicy, jti: &str, raw: RawSet) -> Result<Set, SetError> {
    if raw.iss != policy.issuer {
        return Err(SetError { err: "invalid_issuer", description: "the SET was issued by another issuer" });
    }
    let mut audience = raw.aud.0;
    audience.sort_unstable();
    audience.dedup();
    if audience != policy.audience {
        return Err(SetError { err: "invalid_audience", description: "the SET is not meant for this receiver" });
    }
    if raw.jti != jti {
        return Err(SetError::invalid("the SET's jti is not the one it was delivered under"));
    }
    if raw.sub || raw.exp {
        return Err(SetError::invalid("a SET has neither sub nor exp"));
    }
    let sub_id = raw.sub_id.ok_or(SetError::invalid("the SET has no sub_id"))?;
    if raw.events.len() != 1 {
        return Err(SetError::invalid("a SET carries exactly one event"));
    }
    let Some((event_type, body)) = raw.events.into_iter().next() else {
        return Err(SetError::invalid("a SET carries exactly one event"));
    };
    let Value::Object(body) = body else { return Err(SetError::invalid("the event is not a JSON object")) };
    let event_ms = match body.get("event_timestamp") {
        None => None,
        Some(value) => Some(timestamp_ms(value).ok_or(SetError::invalid("event_timestamp is not a time"))?),
    };
    let event = match event_type.as_str() {
        SESSION_REVOKED => session_revoked(policy, &sub_id)?,
        ACCOUNT_DISABLED => match user_of(policy, &sub_id)? {
            Some(sub) => Event::AccountDisabled { sub },
            None => Event::Nothing("the disabled account is not one of this issuer's users"),
        },
        CREDENTIAL_CHANGE => Event::Nothing("a credential change revokes through its session-revoked event"),
        ACCOUNT_ENABLED => Event::Nothing("enabling an account does not undo revocations"),
        VERIFICATION => {
            check_stream_subject(policy, &sub_id)?;
            let state = match body.get("state") {
                None => None,
                Some(Value::String(state)) => Some(state.clone()),
                Some(_) => return Err(SetError::invalid("state is not a string")),
            };
            Event::Verification { state }
        }
        STREAM_UPDATED => {
            check_stream_subject(policy, &sub_id)?;
            let status = body.get("status").and_then(Value::as_str).ok_or(SetError::invalid("status is missing"))?;
            let reason = body.get("reason").and_then(Value::as_str).map(str::to_owned);
            Event::StreamUpdated { status: status.to_owned(), reason }
        }
        _ => Event::Nothing("an event type this verifier did not ask for"),
    };
    Ok(Set { jti: raw.jti, txn: raw.txn, issued_ms: raw.iat.0.saturating_mul(1000), event_ms, event_type, event })
}

/// A NumericDate (RFC 7519 §2), possibly fractional, in whole milliseconds (rounded down).
fn timestamp_ms(value: &Value) -> Option<i64> {
    if let Some(seconds) = value.as_i64() {
        return seconds.checked_mul(1000);
    }
    let seconds = value.as_f64()?;
    let ms = (seconds * 1000.0).floor();
    // Beyond ±2^53 ms a date is nonsense, and `as` would saturate silently.
    (ms.is_finite() && ms.abs() < 9_007_199_254_740_992.0).then_some(ms as i64)
}

/// What `session-revoked` revokes (CAEP §3.1), from its subject.
fn session_revoked(policy: &SetPolicy, sub_id: &Map<String, Value>) -> Result<Event, SetError> {
    match format_of(sub_id)? {
        // SSF §3.5.1: one token.
        "jwt_id" => {
            let iss = required(sub_id, "iss")?;
            let jti = required(sub_id, "jti")?;
            Ok(if iss == policy.issuer {
                Event::Revoke(Denial::Token(jti.to_owned()))
            } else {
                Event::Nothing("the token was issued by another issuer")
            })
        }
        // RFC 9493 §3.2.3: every session of the user.
        "iss_sub" => Ok(match user_of(policy, sub_id)? {
            Some(sub) => Event::Revoke(Denial::User { sub, until_ms: 0 }),
            None => Event::Nothing("the user is not one of this issuer's"),
        }),
        "complex" => complex(policy, sub_id),
        _ => Ok(Event::Nothing("a subject format this verifier cannot match")),
    }
}

/// SSF §3.3: the members together name what is revoked, a missing one matching anything.
/// The most specific member this verifier can match decides; the others only make the
/// subject narrower, so ignoring them revokes more, never less.
fn complex(policy: &SetPolicy, subject: &Map<String, Value>) -> Result<Event, SetError> {
    // §3.6: an event whose subject has a critical member the receiver cannot process is
    // discarded.
    if subject.keys().any(|name| policy.critical_members.contains(name) && !UNDERSTOOD_MEMBERS.contains(&name.as_str()))
    {
        return Ok(Event::Nothing("the subject has a critical member this verifier does not understand"));
    }
    let member = |name: &str| -> Result<Option<&Map<String, Value>>, SetError> {
        match subject.get(name) {
            None => Ok(None),
            Some(Value::Object(member)) => Ok(Some(member)),
            Some(_) => Err(SetError::invalid("a complex subject member is not an object")),
        }
    };
    let user = match member("user")? {
        None => None,
        Some(user) if format_of(user)? == "iss_sub" => match user_of(policy, user)? {
            Some(sub) => Some(sub),
            // Sessions and families are named by this issuer for its own users only.
            None => return Ok(Event::Nothing("the user is not one of this issuer's")),
        },
        Some(_) => None,
    };
    if let Some(fid) = opaque(member("token_family")?)? {
        return Ok(Event::Revoke(Denial::Family(fid)));
    }
    if let Some(sid) = opaque(member("session")?)? {
        return Ok(Event::Revoke(Denial::Session(sid)));
    }
    if let Some(sub) = user {
        return Ok(Event::Revoke(Denial::User { sub, until_ms: 0 }));
    }
    if let Some(client_id) = opaque(member("application")?)? {
        return Ok(Event::Revoke(Denial::Client { client_id, until_ms: 0 }));
    }
    Ok(Event::Nothing("no member of the subject names tokens this verifier can match"))
}

/// The `sub` of an `iss_sub` subject (RFC 9493 §3.2.3), or of a complex subject's `user`,
/// when its `iss` is this issuer.
fn user_of(policy: &SetPolicy, subject: &Map<String, Value>) -> Result<Option<String>, SetError> {
    let subject = match format_of(subject)? {
        "complex" => match subject.get("user") {
            Some(Value::Object(user)) if format_of(user)? == "iss_sub" => user,
            _ => return Ok(None),
        },
        "iss_sub" => subject,
        _ => return Ok(None),
    };
    let iss = required(subject, "iss")?;
    let sub = required(subject, "sub")?;
    Ok((iss == policy.issuer).then(|| sub.to_owned()))
}

/// The `id` of an `opaque` subject (RFC 9493 §3.2.4); `None` for another format.
fn opaque(subject: Option<&Map<String, Value>>) -> Result<Option<String>, SetError> {
    match subject {
        Some(subject) if format_of(subject)? == "opaque" => Ok(Some(required(subject, "id")?.to_owned())),
        _ => Ok(None),
    }
}

/// SSF §8.1.4.1, §8.1.5: stream events name the stream as an opaque subject.
fn check_stream_subject(policy: &SetPolicy, sub_id: &Map<String, Value>) -> Result<(), SetError> {
    match opaque(Some(sub_id))? {
        Some(id) if id == policy.stream_id => Ok(()),
        _ => Err(SetError::invalid("the event does not name this stream")),
    }
}

fn format_of(subject: &Map<String, Value>) -> Result<&str, SetError> {
    required(subject, "format")
}

/// RFC 9493 §3: a member the format requires, a non-empty string.
fn required<'a>(subject: &'a Map<String, Value>, name: &str) -> Result<&'a str, SetError> {
    match subject.get(name) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value),
        _ => Err(SetError::invalid("a subject identifier lacks a member its format requires")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://id.example.com";

    fn policy() -> SetPolicy {
        SetPolicy {
            issuer: ISSUER.into(),
            audience: vec!["receiver".into()],
            stream_id: "stream-1".into(),
            critical_members: vec!["session".into(), "device".into()],
        }
    }

    fn raw(claims: Value) -> Result<RawSet, VerifyError> {
        RawSet::from_json(&serde_json::to_vec(&claims).unwrap())
    }

    fn set(event_type: &str, sub_id: Value, event: Value) -> Value {
        json!({
            "iss": ISSUER, "aud": "receiver", "iat": 1_767_225_600, "jti": "j1", "txn": "t1",
            "sub_id": sub_id, "events": { event_type: event }
        })
    }

    fn read_set(claims: Value) -> Result<Set, SetError> {
        read(&policy(), "j1", raw(claims).expect("parses"))
    }

    fn event_of(event_type: &str, sub_id: Value) -> Event {
        read_set(set(event_type, sub_id, json!({ "event_timestamp": 1_767_225_599.25 }))).unwrap().event
    }

    fn user() -> Value {
        json!({ "format": "iss_sub", "iss": ISSUER, "sub": "u1" })
    }

    #[test]
    fn each_subject_of_session_revoked_names_its_denial() {
        let session = json!({ "format": "opaque", "id": "s1" });
        let family = json!({ "format": "opaque", "id": "f1" });
        let application = json!({ "format": "opaque", "id": "c1" });
        let cases = [
            (json!({ "format": "complex", "user": user(), "session": session }), Denial::Session("s1".into())),
            (
                json!({ "format": "complex", "user": user(), "session": session, "token_family": family }),
                Denial::Family("f1".into()),
            ),
            (json!({ "format": "complex", "user": user() }), Denial::User { sub: "u1".into(), until_ms: 0 }),
            (user(), Denial::User { sub: "u1".into(), until_ms: 0 }),
            (
                json!({ "format": "complex", "application": application }),
                Denial::Client { client_id: "c1".into(), until_ms: 0 },
            ),
            (json!({ "format": "jwt_id", "iss": ISSUER, "jti": "at-1" }), Denial::Token("at-1".into())),
        ];
        for (sub_id, denial) in cases {
            assert_eq!(event_of(SESSION_REVOKED, sub_id.clone()), Event::Revoke(denial), "{sub_id}");
        }
    }

    #[test]
    fn the_event_time_is_read_to_the_millisecond() {
        let read = read_set(set(SESSION_REVOKED, user(), json!({ "event_timestamp": 1_767_225_599.25 }))).unwrap();
        assert_eq!((read.issued_ms, read.event_ms), (1_767_225_600_000, Some(1_767_225_599_250)));
        assert_eq!((read.txn.as_deref(), read.event_type.as_str()), (Some("t1"), SESSION_REVOKED));
        let whole = read_set(set(SESSION_REVOKED, user(), json!({ "event_timestamp": 1_767_225_599 }))).unwrap();
        assert_eq!(whole.event_ms, Some(1_767_225_599_000));
        let error = read_set(set(SESSION_REVOKED, user(), json!({ "event_timestamp": "yesterday" }))).unwrap_err();
        assert_eq!(error.err, "invalid_request");
        assert_eq!(read_set(set(ACCOUNT_DISABLED, user(), json!({}))).unwrap().event_ms, None);
    }

    #[test]
    fn subjects_of_other_issuers_revoke_nothing() {
        let foreign = json!({ "format": "iss_sub", "iss": "https://other.example", "sub": "u1" });
        for sub_id in [
            foreign.clone(),
            json!({ "format": "complex", "user": foreign, "session": { "format": "opaque", "id": "s1" } }),
            json!({ "format": "jwt_id", "iss": "https://other.example", "jti": "at-1" }),
            json!({ "format": "email", "email": "u1@example.com" }),
            json!({ "format": "complex", "tenant": { "format": "opaque", "id": "t" } }),
            // A critical member this verifier does not understand (SSF §3.6).
            json!({ "format": "complex", "user": user(), "device": { "format": "opaque", "id": "d" } }),
        ] {
            assert!(matches!(event_of(SESSION_REVOKED, sub_id.clone()), Event::Nothing(_)), "{sub_id}");
        }
        // A member nobody marked critical is ignored, which only widens the revocation.
        let with_tenant = json!({ "format": "complex", "user": user(), "tenant": { "format": "opaque", "id": "t" } });
        assert_eq!(
            event_of(SESSION_REVOKED, with_tenant),
            Event::Revoke(Denial::User { sub: "u1".into(), until_ms: 0 })
        );
    }

    #[test]
    fn risc_caep_and_ssf_events_are_read() {
        assert_eq!(event_of(ACCOUNT_DISABLED, user()), Event::AccountDisabled { sub: "u1".into() });
        assert!(matches!(event_of(CREDENTIAL_CHANGE, user()), Event::Nothing(_)));
        assert!(matches!(event_of(ACCOUNT_ENABLED, user()), Event::Nothing(_)));
        assert!(matches!(event_of("https://example.com/unknown", user()), Event::Nothing(_)));
        let stream = json!({ "format": "opaque", "id": "stream-1" });
        let verification = read_set(set(VERIFICATION, stream.clone(), json!({ "state": "abc" }))).unwrap();
        assert_eq!(verification.event, Event::Verification { state: Some("abc".into()) });
        let updated = read_set(set(STREAM_UPDATED, stream, json!({ "status": "paused", "reason": "admin" }))).unwrap();
        assert_eq!(updated.event, Event::StreamUpdated { status: "paused".into(), reason: Some("admin".into()) });
        let other_stream = json!({ "format": "opaque", "id": "stream-2" });
        assert!(read_set(set(VERIFICATION, other_stream, json!({ "state": "abc" }))).is_err());
    }

    #[test]
    fn sets_breaking_the_ssf_profile_are_refused_with_their_code() {
        let good = set(SESSION_REVOKED, user(), json!({}));
        let with = |name: &str, value: Value| {
            let mut claims = good.clone();
            claims[name] = value;
            claims
        };
        let cases = [
            (with("iss", json!("https://other.example")), "invalid_issuer"),
            (with("aud", json!("someone-else")), "invalid_audience"),
            (with("aud", json!(["receiver", "someone-else"])), "invalid_audience"),
            (with("jti", json!("j2")), "invalid_request"),
            (with("sub", json!("u1")), "invalid_request"),
            (with("sub", Value::Null), "invalid_request"),
            (with("exp", json!(1_767_229_200)), "invalid_request"),
            (with("events", json!({})), "invalid_request"),
            (with("events", json!({ SESSION_REVOKED: {}, ACCOUNT_DISABLED: {} })), "invalid_request"),
            (with("events", json!({ SESSION_REVOKED: "revoked" })), "invalid_request"),
            (with("sub_id", json!({ "format": "iss_sub", "iss": ISSUER })), "invalid_request"),
            (with("sub_id", json!({ "format": "iss_sub", "iss": ISSUER, "sub": "" })), "invalid_request"),
            (
                with("sub_id", json!({ "format": "complex", "session": { "format": "opaque", "id": "" } })),
                "invalid_request",
            ),
            (with("sub_id", json!({ "format": "complex", "user": "u1" })), "invalid_request"),
        ];
        for (claims, code) in cases {
            let parsed = raw(claims.clone()).unwrap();
            let result = read(&policy(), "j1", parsed).map(|set| set.event);
            assert_eq!(result.map_err(|e| e.err), Err(code), "{claims}");
        }
        let mut no_sub_id = good.clone();
        no_sub_id.as_object_mut().unwrap().remove("sub_id");
        assert!(read(&policy(), "j1", raw(no_sub_id).unwrap()).is_err());
        assert!(read(&policy(), "j1", raw(good.clone()).unwrap()).is_ok());
        assert!(read(&policy(), "j1", raw(with("aud", json!(["receiver", "receiver"]))).unwrap()).is_ok());
    }

    #[test]
    fn claims_that_do_not_parse_are_malformed() {
        let good = serde_json::to_string(&set(SESSION_REVOKED, user(), json!({}))).unwrap();
        assert!(RawSet::from_json(good.as_bytes()).is_ok());
        let twice = good.replacen("{", r#"{"iss":"https://other.example","#, 1);
        assert!(RawSet::from_json(twice.as_bytes()).is_err(), "a duplicated claim");
        assert!(RawSet::from_json(b"[]").is_err());
        let mut no_iat = set(SESSION_REVOKED, user(), json!({}));
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(raw(no_iat).is_err());
    }
}
