//! OpenID Shared Signals (SSF 1.0, CAEP 1.0, RISC 1.0): the security events Tessera
//! transmits when access ends, the subjects they name, and the receivers' streams. Pure
//! types and rules; the transmitter (`signals`, `ssf`) signs and delivers them.
//!
//! What each revocation path sends, and why (the specs leave the mapping to Tessera):
//! - an SSO session ends (logout, sign-in as someone else): CAEP `session-revoked` with the
//!   complex subject `{user, session}` (SSF §3.3, CAEP §3.1);
//! - one refresh-token family ends (reuse detection, RFC 7009, an operator, a replayed
//!   code): `session-revoked` with `{user, session, token_family}`. `token_family` is a
//!   Tessera member (SSF §3.3 allows other names): a receiver that does not know it reads
//!   the subject as the whole session, which over-revokes, the safe direction;
//! - everything of a user (disable, password change, `session revoke --user`):
//!   `session-revoked` with `{user}`, which CAEP applies to every session of the user; with
//!   RISC `account-disabled` or CAEP `credential-change` beside it, sharing its `txn`;
//! - every token of a client (`client disable`): `session-revoked` with `{application}`;
//! - one access token (RFC 7009): `session-revoked` with the `jwt_id` subject (SSF §3.5.1);
//! - `account-enabled` when a disabled user is enabled again.
//!
//! Access tokens carry what a verifier matches against: `sid`, `fid` (the family), `sub`,
//! `client_id`, `jti` and `iat` (a user- or client-wide revocation refuses tokens issued
//! at or before its `event_timestamp`).

use super::authorization::SessionId;
use super::client::ClientId;
use super::refresh::FamilyId;
use super::user::UserId;
use super::InvalidParameter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;
use std::sync::Arc;

/// `delivery.method` of push delivery (RFC 8935; SSF §6.1.1).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// `delivery.method` of poll delivery (RFC 8936; SSF §6.1.2).
pub const POLL: &str = "urn:ietf:rfc:8936";
/// `spec_version` of SSF 1.0 final (SSF §7.1).
pub const SPEC_VERSION: &str = "1_0";
/// The JOSE `typ` of every SET (SSF §4.1.1).
pub const SET_TYPE: &str = "secevent+jwt";

/// The event types Tessera sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// CAEP §3.1.
    SessionRevoked,
    /// CAEP §3.3.
    CredentialChange,
    /// RISC §2.3.
    AccountDisabled,
    /// RISC §2.4.
    AccountEnabled,
    /// SSF §8.1.4.1: sent to one stream when its receiver asks for it.
    Verification,
    /// SSF §8.1.5: sent to one stream when Tessera changes its status.
    StreamUpdated,
}

impl EventType {
    /// The types a receiver may request; `Verification` and `StreamUpdated` are sent to
    /// every stream regardless (SSF §8.1.4, §8.1.5).
    pub const SUPPORTED: [EventType; 4] =
        [Self::SessionRevoked, Self::CredentialChange, Self::AccountDisabled, Self::AccountEnabled];

    pub fn uri(self) -> &'static str {
        match self {
            Self::SessionRevoked => "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
            Self::CredentialChange => "https://schemas.openid.net/secevent/caep/event-type/credential-change",
            Self::AccountDisabled => "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
            Self::AccountEnabled => "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
            Self::Verification => "https://schemas.openid.net/secevent/ssf/event-type/verification",
            Self::StreamUpdated => "https://schemas.openid.net/secevent/ssf/event-type/stream-updated",
        }
    }

    pub fn from_uri(uri: &str) -> Option<Self> {
        [
            Self::SessionRevoked,
            Self::CredentialChange,
            Self::AccountDisabled,
            Self::AccountEnabled,
            Self::Verification,
            Self::StreamUpdated,
        ]
        .into_iter()
        .find(|t| t.uri() == uri)
    }

    /// Sent to a stream whatever it requested.
    pub fn is_stream_management(self) -> bool {
        matches!(self, Self::Verification | Self::StreamUpdated)
    }

    /// The type's bit in a stream's event mask (storage fans an event out to the streams
    /// whose mask has its bit); 0 for the stream-management types, which go to one stream.
    pub fn mask_bit(self) -> i64 {
        match self {
            Self::SessionRevoked => 1,
            Self::CredentialChange => 2,
            Self::AccountDisabled => 4,
            Self::AccountEnabled => 8,
            Self::Verification | Self::StreamUpdated => 0,
        }
    }
}

/// A simple subject identifier (RFC 9493 §3; SSF §3.5.1 for `jwt_id`): exactly the members
/// its format defines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimpleSubject {
    /// RFC 9493 §3.2.3: the `iss` and `sub` of the person's tokens.
    IssSub { iss: String, sub: String },
    /// RFC 9493 §3.2.4: an identifier meaningful to the receiver (a `sid`, a client id, a
    /// stream id).
    Opaque { id: String },
    /// SSF §3.5.1: one JWT, by its issuer and `jti`.
    JwtId { iss: String, jti: String },
}

/// The `sub_id` of a SET (SSF §3): a simple subject, or a complex one (SSF §3.3) whose
/// members together name the principal; a missing member matches anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subject {
    Complex(ComplexSubject),
    Simple(SimpleSubject),
}

/// SSF §3.3 complex subject with the members Tessera uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplexSubject {
    /// Always `complex` (a field rather than a serde tag: serde's tagged structs cannot
    /// also deny unknown fields).
    format: ComplexFormat,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<SimpleSubject>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session: Option<SimpleSubject>,
    /// The client (`application`, SSF §3.3).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub application: Option<SimpleSubject>,
    /// Tessera's member: one refresh-token family (the `fid` of its access tokens).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_family: Option<SimpleSubject>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
enum ComplexFormat {
    #[default]
    #[serde(rename = "complex")]
    Complex,
}

impl Subject {
    /// A person, as `iss_sub` with the issuer and the `sub` of their tokens.
    pub fn user(issuer: &str, user_id: &str) -> SimpleSubject {
        SimpleSubject::IssSub { iss: issuer.to_owned(), sub: user_id.to_owned() }
    }

    /// Every session of a user.
    pub fn all_sessions_of(issuer: &str, user_id: &str) -> Self {
        Self::Complex(ComplexSubject { user: Some(Self::user(issuer, user_id)), ..Default::default() })
    }

    /// One SSO session (`sid`) of a user.
    pub fn session(issuer: &str, user_id: &str, sid: &str) -> Self {
        Self::Complex(ComplexSubject {
            user: Some(Self::user(issuer, user_id)),
            session: Some(SimpleSubject::Opaque { id: sid.to_owned() }),
            ..Default::default()
        })
    }

    /// One refresh-token family of a session.
    pub fn token_family(issuer: &str, user_id: &str, sid: &str, family_id: &str) -> Self {
        Self::Complex(ComplexSubject {
            user: Some(Self::user(issuer, user_id)),
            session: Some(SimpleSubject::Opaque { id: sid.to_owned() }),
            token_family: Some(SimpleSubject::Opaque { id: family_id.to_owned() }),
            ..Default::default()
        })
    }

    /// Every token of a client.
    pub fn application(client_id: &ClientId) -> Self {
        Self::Complex(ComplexSubject {
            application: Some(SimpleSubject::Opaque { id: client_id.as_str().to_owned() }),
            ..Default::default()
        })
    }

    /// One access token.
    pub fn access_token(issuer: &str, jti: &str) -> Self {
        Self::Simple(SimpleSubject::JwtId { iss: issuer.to_owned(), jti: jti.to_owned() })
    }

    /// A stream itself (verification and stream-updated events, SSF §8.1.4.1).
    pub fn stream(stream_id: &str) -> Self {
        Self::Simple(SimpleSubject::Opaque { id: stream_id.to_owned() })
    }
}

/// CAEP §2 `initiating_entity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// An operator (CLI, admin API).
    Admin,
    /// The person or the app acting for them (logout, RFC 7009 revocation).
    User,
    /// A rule of Tessera's (refresh-token reuse, a replayed code).
    Policy,
}

impl Initiator {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
            Self::Policy => "policy",
        }
    }
}

/// An event to transmit, as recorded in the outbox with the revocation it reports.
#[derive(Clone, Debug, PartialEq)]
pub struct SecurityEvent {
    pub id: String,
    pub event_type: EventType,
    pub subject: Subject,
    /// The event's members (CAEP §2: `event_timestamp`, `initiating_entity`,
    /// `reason_admin`; RISC's `reason`; SSF's `state`, `status`).
    pub body: Value,
    /// RFC 8417 §2.2 `txn`: shared by the events of one cause (SSF §4.1.9).
    pub txn: String,
    pub occurred_at: DateTime<Utc>,
    /// When every token it can affect has expired: it is not delivered after that.
    pub expires_at: DateTime<Utc>,
    /// Set for an event meant for one stream only (verification, stream-updated).
    pub stream_id: Option<String>,
}

/// Builds the events of one cause: they share its `txn`, time and expiry.
#[derive(Clone, Debug)]
pub struct Cause {
    /// The issuer whose subjects the events name (`iss_sub`, `jwt_id`).
    pub issuer: String,
    pub txn: String,
    pub at: DateTime<Utc>,
    /// The longest access-token lifetime past `at`: the event cannot matter after it.
    pub expires_at: DateTime<Utc>,
}

impl Cause {
    pub fn new(issuer: &str, at: DateTime<Utc>, max_token_lifetime: chrono::Duration) -> Self {
        Self { issuer: issuer.to_owned(), txn: new_id(), at, expires_at: at + max_token_lifetime }
    }

    fn event(&self, event_type: EventType, subject: Subject, body: Value) -> SecurityEvent {
        SecurityEvent {
            id: new_id(),
            event_type,
            subject,
            body,
            txn: self.txn.clone(),
            occurred_at: self.at,
            expires_at: self.expires_at,
            stream_id: None,
        }
    }

    /// `event_timestamp` (CAEP §2): a JSON number of seconds, with milliseconds, so that a
    /// token issued in the same second after the revocation can still be told apart by a
    /// receiver that compares fractional times.
    fn timestamp(&self) -> Value {
        json!(self.at.timestamp_millis() as f64 / 1000.0)
    }

    /// CAEP §3.1 `session-revoked` (the interop profile §3.1 requires `reason_admin`).
    pub fn session_revoked(&self, subject: Subject, initiator: Initiator, reason: &str) -> SecurityEvent {
        let body = json!({
            "initiating_entity": initiator.as_str(),
            "reason_admin": { "en": reason },
            "event_timestamp": self.timestamp(),
        });
        self.event(EventType::SessionRevoked, subject, body)
    }

    /// CAEP §3.3 `credential-change` of a password.
    pub fn password_changed(&self, subject: SimpleSubject, initiator: Initiator) -> SecurityEvent {
        let body = json!({
            "credential_type": "password",
            "change_type": "update",
            "initiating_entity": initiator.as_str(),
            "reason_admin": { "en": "password changed" },
            "event_timestamp": self.timestamp(),
        });
        self.event(EventType::CredentialChange, Subject::Simple(subject), body)
    }

    /// RISC §2.3 `account-disabled` (no `reason`: RISC's values, hijacking and
    /// bulk-account, say nothing true about an operator's decision).
    pub fn account_disabled(&self, subject: SimpleSubject) -> SecurityEvent {
        self.event(EventType::AccountDisabled, Subject::Simple(subject), json!({}))
    }

    /// RISC §2.4 `account-enabled`.
    pub fn account_enabled(&self, subject: SimpleSubject) -> SecurityEvent {
        self.event(EventType::AccountEnabled, Subject::Simple(subject), json!({}))
    }

    /// SSF §8.1.4.1 verification event for one stream, echoing the receiver's `state`.
    pub fn verification(&self, stream_id: &str, state: Option<&str>) -> SecurityEvent {
        let body = match state {
            Some(state) => json!({ "state": state }),
            None => json!({}),
        };
        let mut event = self.event(EventType::Verification, Subject::stream(stream_id), body);
        event.stream_id = Some(stream_id.to_owned());
        event
    }

    /// SSF §8.1.5 stream-updated event for one stream.
    pub fn stream_updated(&self, stream_id: &str, status: StreamStatus, reason: Option<&str>) -> SecurityEvent {
        let mut body = json!({ "status": status.as_str() });
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        let mut event = self.event(EventType::StreamUpdated, Subject::stream(stream_id), body);
        event.stream_id = Some(stream_id.to_owned());
        event
    }
}

/// Where a revocation's events come from when the transmitter is on: the issuer their
/// subjects name, and how long they matter (the longest access-token lifetime plus
/// verifiers' leeway: every token issued before the revocation has expired by then).
#[derive(Clone, Debug)]
pub struct EventSource {
    pub issuer: Arc<str>,
    pub relevance: chrono::Duration,
}

impl EventSource {
    pub fn cause(&self, at: DateTime<Utc>) -> Cause {
        Cause::new(&self.issuer, at, self.relevance)
    }
}

/// Why access ends: every way there is, named once, with who starts it (CAEP §2
/// `initiating_entity`) and the words stored with it (the families' `revoked_reason`, the
/// events' `reason_admin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// RP-initiated logout, asked or confirmed.
    Logout,
    /// Someone else signed in in the same browser: the previous person's session ends.
    SignedInAsAnother,
    /// RFC 7009, by the client the token was issued to.
    RevokedByClient,
    /// `tessera session revoke`.
    RevokedByOperator,
    UserDisabled,
    UserEnabled,
    PasswordChanged,
    ClientDisabled,
    /// RFC 9700 §4.14.2.
    RefreshTokenReused,
    /// RFC 6749 §4.1.2.
    CodeReplayed,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::SignedInAsAnother => "another user signed in",
            Self::RevokedByClient => "revoked by the client",
            Self::RevokedByOperator => "revoked by an operator",
            Self::UserDisabled => "user disabled",
            Self::UserEnabled => "user enabled",
            Self::PasswordChanged => "password changed",
            Self::ClientDisabled => "client disabled",
            Self::RefreshTokenReused => "refresh token reused",
            Self::CodeReplayed => "authorization code replayed",
        }
    }

    pub fn initiator(self) -> Initiator {
        match self {
            Self::Logout | Self::SignedInAsAnother | Self::RevokedByClient => Initiator::User,
            Self::RevokedByOperator
            | Self::UserDisabled
            | Self::UserEnabled
            | Self::PasswordChanged
            | Self::ClientDisabled => Initiator::Admin,
            Self::RefreshTokenReused | Self::CodeReplayed => Initiator::Policy,
        }
    }
}

/// One way access ends: when, why, and where its events come from (`None`: the
/// transmitter is off and nothing is recorded). Storage carries it out in one transaction
/// with the events it builds here from the rows it changed, so an event exists exactly
/// when its revocation committed.
#[derive(Clone, Debug)]
pub struct Revocation {
    pub at: DateTime<Utc>,
    pub reason: &'static str,
    pub initiator: Initiator,
    pub events: Option<EventSource>,
}

impl Revocation {
    pub fn new(why: Reason, at: DateTime<Utc>, events: Option<EventSource>) -> Self {
        Self { at, reason: why.text(), initiator: why.initiator(), events }
    }

    /// The events of this revocation, built by `build` from one shared cause; none when
    /// the transmitter is off.
    fn events(&self, build: impl FnOnce(&Cause) -> Vec<SecurityEvent>) -> Vec<SecurityEvent> {
        self.events.as_ref().map(|source| build(&source.cause(self.at))).unwrap_or_default()
    }

    fn user(cause: &Cause, user: &UserId) -> SimpleSubject {
        Subject::user(&cause.issuer, user.as_str())
    }

    /// An SSO session ended (logout): its families and codes went with it.
    pub fn session_ended(&self, user: &UserId, sid: &SessionId) -> Vec<SecurityEvent> {
        self.events(|c| {
            vec![c.session_revoked(
                Subject::session(&c.issuer, user.as_str(), sid.as_str()),
                self.initiator,
                self.reason,
            )]
        })
    }

    /// One refresh-token family ended, alone.
    pub fn family_ended(&self, user: &UserId, sid: &SessionId, family: &FamilyId) -> Vec<SecurityEvent> {
        self.events(|c| {
            let subject = Subject::token_family(&c.issuer, user.as_str(), sid.as_str(), family.as_str());
            vec![c.session_revoked(subject, self.initiator, self.reason)]
        })
    }

    /// Everything a user obtained ended (an operator's `session revoke --user`).
    pub fn user_access_ended(&self, user: &UserId) -> Vec<SecurityEvent> {
        self.events(|c| {
            vec![c.session_revoked(Subject::all_sessions_of(&c.issuer, user.as_str()), self.initiator, self.reason)]
        })
    }

    /// A user was disabled: RISC account-disabled, and everything they obtained ended.
    pub fn user_disabled(&self, user: &UserId) -> Vec<SecurityEvent> {
        self.events(|c| {
            vec![
                c.account_disabled(Self::user(c, user)),
                c.session_revoked(Subject::all_sessions_of(&c.issuer, user.as_str()), self.initiator, self.reason),
            ]
        })
    }

    /// A disabled user was enabled again: RISC account-enabled (nothing to end).
    pub fn user_enabled(&self, user: &UserId) -> Vec<SecurityEvent> {
        self.events(|c| vec![c.account_enabled(Self::user(c, user))])
    }

    /// A user's password was set: CAEP credential-change, and everything obtained with
    /// the old one ended.
    pub fn password_changed(&self, user: &UserId) -> Vec<SecurityEvent> {
        self.events(|c| {
            vec![
                c.password_changed(Self::user(c, user), self.initiator),
                c.session_revoked(Subject::all_sessions_of(&c.issuer, user.as_str()), self.initiator, self.reason),
            ]
        })
    }

    /// A client was disabled: every token it holds, its users' too, ended.
    pub fn client_disabled(&self, client: &ClientId) -> Vec<SecurityEvent> {
        self.events(|c| vec![c.session_revoked(Subject::application(client), self.initiator, self.reason)])
    }

    /// One access token was revoked (RFC 7009).
    pub fn access_token_revoked(&self, jti: &str) -> Vec<SecurityEvent> {
        self.events(|c| vec![c.session_revoked(Subject::access_token(&c.issuer, jti), self.initiator, self.reason)])
    }

    /// A replayed authorization code: what its redemption issued (RFC 6749 §4.1.2).
    pub fn code_replayed(
        &self,
        access_token: Option<&str>,
        family: Option<(&UserId, &SessionId, &FamilyId)>,
    ) -> Vec<SecurityEvent> {
        self.events(|c| {
            let token = access_token.map(|jti| Subject::access_token(&c.issuer, jti));
            let family = family
                .map(|(user, sid, id)| Subject::token_family(&c.issuer, user.as_str(), sid.as_str(), id.as_str()));
            token
                .into_iter()
                .chain(family)
                .map(|subject| c.session_revoked(subject, self.initiator, self.reason))
                .collect()
        })
    }
}

/// A random identifier (stream ids, event ids, `txn`): 122 random bits, 32 hex characters,
/// all RFC 3986 unreserved (SSF §8.1.1 `stream_id`).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// SSF §8.1.2.1 stream status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStatus {
    /// Events are delivered.
    Enabled,
    /// Events are held (until they expire) and delivered when the stream is enabled again.
    Paused,
    /// Nothing is delivered or held.
    Disabled,
}

impl StreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        match raw {
            "enabled" => Ok(Self::Enabled),
            "paused" => Ok(Self::Paused),
            "disabled" => Ok(Self::Disabled),
            other => Err(InvalidParameter::new("status", format!("`{other}` is not enabled, paused or disabled"))),
        }
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A receiver's secret sealed with the key-encryption key (AES-256-GCM, `keys::kek`):
/// Tessera must send it back, so it cannot be a digest; it is never shown or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(***)")
    }
}

/// How a stream's events reach its receiver (SSF §6.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// RFC 8936: the receiver polls Tessera's endpoint for the stream.
    Poll,
    /// RFC 8935: Tessera posts each SET to the receiver's endpoint, with its
    /// `authorization_header` when it gave one (SSF §6.1.1), sealed at rest.
    Push { endpoint_url: url::Url, authorization_header: Option<Sealed> },
}

impl Delivery {
    pub fn method(&self) -> &'static str {
        match self {
            Self::Poll => POLL,
            Self::Push { .. } => PUSH,
        }
    }
}

/// Checks a stream id presented from outside (a receiver's request, an admin path) before it
/// reaches a lookup: PostgreSQL refuses U+0000 in `text` with an error, not a miss, so an
/// unchecked `%00` would be a 500 instead of the unknown stream it is (SSF §8.1.1).
pub fn parse_stream_id(raw: &str) -> Result<&str, super::InvalidParameter> {
    super::parse_identifier("stream_id", raw)?;
    Ok(raw)
}

/// A receiver's stream (SSF §8.1.1).
#[derive(Clone, Debug)]
pub struct Stream {
    pub id: String,
    /// The receiver: the client that manages the stream, and the SETs' `aud`.
    pub receiver: ClientId,
    /// What the receiver asked for, as it sent it (`None`: not given, meaning everything).
    pub events_requested: Option<Vec<String>>,
    pub delivery: Delivery,
    pub description: Option<String>,
    pub status: StreamStatus,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The receiver's last poll or management call (SSF §8.1.1 `inactivity_timeout`).
    pub last_activity_at: DateTime<Utc>,
    pub last_verification_at: Option<DateTime<Utc>>,
}

impl Stream {
    /// SSF §8.1.1 `events_delivered`: the supported types the receiver requested, in
    /// Tessera's order; every supported type when it requested nothing in particular.
    pub fn events_delivered(&self) -> Vec<EventType> {
        match &self.events_requested {
            None => EventType::SUPPORTED.to_vec(),
            Some(requested) => {
                EventType::SUPPORTED.into_iter().filter(|t| requested.iter().any(|uri| uri == t.uri())).collect()
            }
        }
    }

    /// `events_delivered` as the bits of [`EventType::mask_bit`].
    pub fn event_mask(&self) -> i64 {
        self.events_delivered().into_iter().map(EventType::mask_bit).fold(0, |mask, bit| mask | bit)
    }

    /// Whether an event of `event_type` goes to this stream.
    pub fn delivers(&self, event_type: EventType) -> bool {
        event_type.is_stream_management() || self.events_delivered().contains(&event_type)
    }
}

/// The longest `description` kept (SSF §8.1.1: the transmitter MAY truncate).
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// The most `events_requested` entries accepted (the URIs Tessera does not know are kept
/// as sent, so they are bounded).
pub const MAX_EVENTS_REQUESTED: usize = 32;
/// The longest event URI or `authorization_header` accepted.
pub const MAX_VALUE_LEN: usize = 2048;

/// `events_requested` as sent: at most [`MAX_EVENTS_REQUESTED`] strings of bounded length.
pub fn parse_events_requested(values: Vec<String>) -> Result<Vec<String>, InvalidParameter> {
    if values.len() > MAX_EVENTS_REQUESTED {
        return Err(InvalidParameter::new("events_requested", format!("more than {MAX_EVENTS_REQUESTED} entries")));
    }
    if values.iter().any(|v| v.is_empty() || v.len() > MAX_VALUE_LEN) {
        return Err(InvalidParameter::new("events_requested", "an entry is empty or too long"));
    }
    Ok(values)
}

/// A description cut to [`MAX_DESCRIPTION_LEN`] bytes at a character boundary, without
/// control characters other than line breaks and tabs: PostgreSQL refuses U+0000 in text
/// (a 500 for a receiver's typo), and the rest has no place in a label shown to operators.
pub fn truncate_description(description: String) -> String {
    let mut description: String =
        description.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')).collect();
    if description.len() > MAX_DESCRIPTION_LEN {
        let mut end = MAX_DESCRIPTION_LEN;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    description
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_lose_control_characters_but_keep_line_breaks() {
        assert_eq!(truncate_description("a\u{0}b\u{1b}[31m\nc\td".into()), "ab[31m\nc\td");
    }

    #[test]
    fn subjects_serialise_as_ssf_and_rfc_9493_say() {
        let session = Subject::session("https://id.example.com", "u1", "s1");
        assert_eq!(
            serde_json::to_value(&session).unwrap(),
            json!({"format": "complex",
                   "user": {"format": "iss_sub", "iss": "https://id.example.com", "sub": "u1"},
                   "session": {"format": "opaque", "id": "s1"}})
        );
        let token = Subject::access_token("https://id.example.com", "j1");
        assert_eq!(
            serde_json::to_value(&token).unwrap(),
            json!({"format": "jwt_id", "iss": "https://id.example.com", "jti": "j1"})
        );
        let family = Subject::token_family("https://id.example.com", "u1", "s1", "f1");
        let value = serde_json::to_value(&family).unwrap();
        assert_eq!(value["token_family"], json!({"format": "opaque", "id": "f1"}));
        assert!(value.get("application").is_none(), "absent members are omitted, not null");
        for subject in [session, token, family, Subject::application(&ClientId::parse("c").unwrap())] {
            let back: Subject = serde_json::from_value(serde_json::to_value(&subject).unwrap()).unwrap();
            assert_eq!(back, subject);
        }
    }

    #[test]
    fn simple_subjects_refuse_members_their_format_does_not_define() {
        let extra = json!({"format": "opaque", "id": "x", "sub": "y"});
        assert!(serde_json::from_value::<SimpleSubject>(extra).is_err(), "RFC 9493 §3");
        assert!(serde_json::from_value::<SimpleSubject>(json!({"format": "opaque"})).is_err());
        assert!(serde_json::from_value::<SimpleSubject>(json!({"format": "phone", "id": "x"})).is_err());
    }

    #[test]
    fn events_of_one_cause_share_its_txn_and_carry_caep_members() {
        let at = DateTime::from_timestamp(1_767_225_600, 250_000_000).unwrap();
        let cause = Cause::new("https://id.example.com", at, chrono::Duration::minutes(5));
        let user = Subject::user("https://id.example.com", "u1");
        let disabled = cause.account_disabled(user.clone());
        let revoked = cause.session_revoked(
            Subject::all_sessions_of("https://id.example.com", "u1"),
            Initiator::Admin,
            "user disabled",
        );
        assert_eq!(disabled.txn, revoked.txn);
        assert_ne!(disabled.id, revoked.id);
        assert_eq!(revoked.expires_at, at + chrono::Duration::minutes(5));
        assert_eq!(revoked.body["reason_admin"], json!({"en": "user disabled"}));
        assert_eq!(revoked.body["initiating_entity"], "admin");
        assert_eq!(revoked.body["event_timestamp"], json!(1_767_225_600.25));
        let changed = cause.password_changed(user, Initiator::Admin);
        assert_eq!(changed.body["credential_type"], "password");
        assert_eq!(changed.body["change_type"], "update");
        let verification = cause.verification("s1", Some("abc"));
        assert_eq!(verification.stream_id.as_deref(), Some("s1"));
        assert_eq!(verification.body, json!({"state": "abc"}));
    }

    #[test]
    fn events_delivered_are_the_supported_ones_requested() {
        let mut stream = Stream {
            id: "s".into(),
            receiver: ClientId::parse("r").unwrap(),
            events_requested: None,
            delivery: Delivery::Poll,
            description: None,
            status: StreamStatus::Enabled,
            status_reason: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            last_activity_at: Utc::now(),
            last_verification_at: None,
        };
        assert_eq!(stream.events_delivered(), EventType::SUPPORTED.to_vec(), "nothing requested: everything");
        stream.events_requested = Some(vec![
            EventType::AccountEnabled.uri().to_owned(),
            "https://example.com/unknown".to_owned(),
            EventType::SessionRevoked.uri().to_owned(),
        ]);
        assert_eq!(stream.events_delivered(), [EventType::SessionRevoked, EventType::AccountEnabled]);
        assert_eq!(stream.event_mask(), 1 | 8);
        assert!(!stream.delivers(EventType::CredentialChange));
        assert!(stream.delivers(EventType::Verification), "verification goes to every stream");
        stream.events_requested = Some(vec![]);
        assert!(stream.events_delivered().is_empty());
    }

    #[test]
    fn descriptions_are_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let cut = truncate_description(long);
        assert!(cut.len() <= MAX_DESCRIPTION_LEN && cut.chars().all(|c| c == 'é'));
    }
}
