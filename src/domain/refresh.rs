//! Refresh-token families (RFC 9700 §4.14.2): every rotation of one original grant stays
//! in one family, and a replayed token revokes the family, not the user's other sessions.

use super::authorization::SessionId;
use super::client::ClientId;
use super::scope::ScopeSet;
use super::secret::SecretDigest;
use super::user::UserId;
use super::InvalidParameter;
use chrono::{DateTime, Utc};
use std::fmt;

/// Prefix of refresh tokens, so secret scanners can recognise leaked ones.
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";

/// A refresh-token family's identifier: the `fid` claim of its access tokens, and what an
/// operator names to revoke it. Tessera generates simple (unhyphenated) v4 UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FamilyId(String);

impl FamilyId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id presented from outside (a CLI argument, a token's `fid`).
    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        super::parse_identifier("family id", raw).map(Self)
    }

    /// Wraps an id read back from storage.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug)]
pub struct TokenFamily {
    pub id: FamilyId,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The SSO session the family was created in.
    pub sid: SessionId,
    /// What the user granted; refreshes may narrow it per access token, never widen it.
    pub scope: ScopeSet,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The family's latest rotation (or its creation), derived from its newest refresh
    /// token by the reads that show it (`find_family`, `list_families_of_user`). The
    /// rotation and `find_refresh_token` do not need it and carry the stored value, the
    /// creation time: a write per rotation would cost a round trip.
    pub last_used_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// RFC 9449 §5 (end): the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key a public
    /// client's family was created with. Every refresh must then carry a proof made with
    /// that key; `None` for an unbound family.
    pub dpop_jkt: Option<String>,
}

impl TokenFamily {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.absolute_expires_at > now
    }
}

/// A presented refresh token as stored, for introspection and revocation.
#[derive(Clone, Debug)]
pub struct RefreshTokenState {
    pub created_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What one rotation attempt needs; the successor is prepared before the transaction.
pub struct RotationRequest<'a> {
    /// The digest of the presented token (computed once: it also binds the sealed successor).
    pub presented: &'a SecretDigest,
    pub client_id: &'a ClientId,
    pub now: DateTime<Utc>,
    pub successor: &'a str,
    /// The successor sealed with the key-encryption key, kept for the retry window.
    pub successor_sealed: &'a [u8],
    pub idle_ttl: chrono::Duration,
    /// Zero disables the idempotent-retry window.
    pub retry_window: chrono::Duration,
    /// A narrower scope asked for; checked before anything changes (RFC 6749 §6).
    pub requested_scope: Option<&'a ScopeSet>,
    /// What revoking the family on reuse records (RFC 9700 §4.14.2: a revocation of its own).
    pub reuse: &'a super::signals::Revocation,
    /// The thumbprint of the key of the request's DPoP proof, if it carried one: a bound
    /// family is refreshed only with its key (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// First use: the successor in the request is now the family's live token.
    Rotated(TokenFamily),
    /// The token was rotated moments ago and its successor is still unused: answer with
    /// that same successor (sealed) instead of branching the family.
    Retried { family: TokenFamily, successor_sealed: Vec<u8> },
    /// Used before, outside the window: the family is now revoked.
    Reused(TokenFamily),
    /// Unknown, expired, revoked, or another client's.
    Invalid,
    /// The requested scope is not within the family's grant; nothing changed.
    ScopeExceeded,
    /// The family is bound to a DPoP key and the request proved another key, or none
    /// (RFC 9449 §5); nothing changed.
    WrongDpopKey,
}

/// The presented token as it stood before this presentation: what the rotation decision
/// weighs.
#[derive(Clone, Copy, Debug)]
pub struct PresentedState {
    pub idle_expires_at: DateTime<Utc>,
    /// When it was first presented (and rotated); `None` while it is the family's live token.
    pub used_at: Option<DateTime<Utc>>,
    /// Until when its successor is kept, sealed, for an idempotent retry; `None` when no
    /// window was configured at its rotation, or the sealed copy has been wiped.
    pub retry_until: Option<DateTime<Utc>>,
    /// The successor issued when it was used.
    pub successor: SuccessorState,
}

/// The token a used refresh token was rotated to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuccessorState {
    /// None recorded (the token is unused), or none stored.
    Absent,
    /// Issued and not yet presented: the client may not have received it.
    Unused,
    /// Presented already: the client did receive it.
    Used,
}

/// The family the presented token belongs to.
#[derive(Clone, Copy, Debug)]
pub struct FamilyState<'a> {
    pub client_id: &'a ClientId,
    pub scope: &'a ScopeSet,
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user is disabled, or changed credentials after the family's login.
    pub is_user_disabled: bool,
    /// The DPoP key the family is bound to (RFC 9449 §5), if any.
    pub dpop_jkt: Option<&'a str>,
}

impl<'a> FamilyState<'a> {
    pub fn of(family: &'a TokenFamily, is_user_disabled: bool) -> Self {
        Self {
            client_id: &family.client_id,
            scope: &family.scope,
            absolute_expires_at: family.absolute_expires_at,
            revoked_at: family.revoked_at,
            is_user_disabled,
            dpop_jkt: family.dpop_jkt.as_deref(),
        }
    }

    /// Not revoked, not past its absolute lifetime, and its user not disabled.
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.absolute_expires_at > now && !self.is_user_disabled
    }
}

/// Who presents the token, when, and for what (RFC 6749 §6).
#[derive(Clone, Copy, Debug)]
pub struct Presentation<'a> {
    pub client_id: &'a ClientId,
    /// A narrower scope asked for; `None` keeps the family's.
    pub requested_scope: Option<&'a ScopeSet>,
    pub now: DateTime<Utc>,
    /// The thumbprint of the request's DPoP proof key, if it carried a proof.
    pub dpop_jkt: Option<&'a str>,
}

/// What to do with a presented refresh token; storage carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationDecision {
    /// First use: mark the token used and make its successor the family's live token.
    Rotate,
    /// Used moments ago and its successor never presented: the response was probably lost,
    /// so answer with that same successor again. Nothing changes.
    Retry,
    /// Reuse of a rotated token (RFC 9700 §4.14.2): the token was stolen or the family
    /// branched, so revoke the whole family. The reuse itself is refused.
    RevokeFamily,
    /// Another client's token, a dead family, or an idle-expired token. Nothing changes.
    Invalid,
    /// The requested scope is not within the family's grant (RFC 6749 §6). Nothing changes.
    ScopeExceeded,
    /// A family bound to a DPoP key, presented without a proof of that key (RFC 9449 §5).
    /// Nothing changes: neither a rotation nor, for a used token, reuse, since whoever
    /// presents it without the key proves nothing about the family.
    WrongDpopKey,
}

/// Decides a refresh-token presentation (RFC 6749 §6, RFC 9700 §4.14.2). Pure: storage
/// reads the facts in the transaction that carries the decision out.
///
/// In this order:
/// 1. another client's token (§6: "the refresh token was issued to the authenticated
///    client"), or a family that is revoked, past its absolute lifetime, or whose user is
///    disabled: [`Invalid`](RotationDecision::Invalid);
/// 2. a family bound to a DPoP key (RFC 9449 §5), presented without a proof made with that
///    key: [`WrongDpopKey`](RotationDecision::WrongDpopKey), before anything changes, reuse
///    included (a thief without the key must not be able to revoke the family either);
/// 3. a requested scope that is not within the family's (§6: "MUST NOT include any scope
///    not originally granted"): [`ScopeExceeded`](RotationDecision::ScopeExceeded), before
///    anything changes, reuse included;
/// 4. an unused token: [`Rotate`](RotationDecision::Rotate) while it is within its idle
///    lifetime, else [`Invalid`](RotationDecision::Invalid);
/// 5. a used token: [`Retry`](RotationDecision::Retry) inside the retry window while its
///    successor is unused; otherwise the client already holds the successor, or the
///    window is over, and this is reuse: [`RevokeFamily`](RotationDecision::RevokeFamily),
///    idle-expired or not.
pub fn decide(
    presented: &PresentedState,
    family: &FamilyState<'_>,
    presentation: &Presentation<'_>,
) -> RotationDecision {
    let now = presentation.now;
    if family.client_id != presentation.client_id || !family.is_alive(now) {
        return RotationDecision::Invalid;
    }
    if family.dpop_jkt.is_some_and(|bound| presentation.dpop_jkt != Some(bound)) {
        return RotationDecision::WrongDpopKey;
    }
    if presentation.requested_scope.is_some_and(|scope| !scope.is_subset_of(family.scope)) {
        return RotationDecision::ScopeExceeded;
    }
    match presented.used_at {
        None if presented.idle_expires_at > now => RotationDecision::Rotate,
        None => RotationDecision::Invalid,
        Some(_) => {
            let in_window = presented.retry_until.is_some_and(|until| until > now);
            if in_window && presented.successor == SuccessorState::Unused {
                RotationDecision::Retry
            } else {
                RotationDecision::RevokeFamily
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RotationDecision::{Invalid, Retry, RevokeFamily, Rotate, ScopeExceeded, WrongDpopKey};
    use super::SuccessorState::{Absent, Unused, Used};
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        now() + Duration::seconds(seconds)
    }

    fn scope(raw: &str) -> ScopeSet {
        ScopeSet::parse(raw).unwrap()
    }

    /// One presentation's facts, with times in seconds relative to `now()`.
    #[derive(Clone, Debug)]
    struct Facts {
        is_own_client: bool,
        is_revoked: bool,
        absolute_expires_in: i64,
        is_user_disabled: bool,
        family_scope: ScopeSet,
        requested_scope: Option<ScopeSet>,
        idle_expires_in: i64,
        is_used: bool,
        retry_until_in: Option<i64>,
        successor: SuccessorState,
        /// The DPoP key the family is bound to, and the key of the request's proof.
        bound_key: Option<&'static str>,
        proof_key: Option<&'static str>,
    }

    impl Facts {
        /// The family's live token, presented by its own client with no scope.
        fn live() -> Self {
            Self {
                is_own_client: true,
                is_revoked: false,
                absolute_expires_in: 3600,
                is_user_disabled: false,
                family_scope: scope("openid offline_access api"),
                requested_scope: None,
                idle_expires_in: 600,
                is_used: false,
                retry_until_in: None,
                successor: Absent,
                bound_key: None,
                proof_key: None,
            }
        }

        /// A token rotated a moment ago, its successor unused, inside the window.
        fn just_rotated() -> Self {
            Self { is_used: true, retry_until_in: Some(5), successor: Unused, ..Self::live() }
        }

        fn is_dead(&self) -> bool {
            self.is_revoked || self.absolute_expires_in <= 0 || self.is_user_disabled
        }

        fn is_scope_within(&self) -> bool {
            self.requested_scope.as_ref().is_none_or(|s| s.is_subset_of(&self.family_scope))
        }

        fn is_key_proven(&self) -> bool {
            self.bound_key.is_none_or(|bound| self.proof_key == Some(bound))
        }

        fn is_in_window(&self) -> bool {
            self.retry_until_in.is_some_and(|until| until > 0)
        }

        fn decide(&self) -> RotationDecision {
            let (own, other) = (ClientId::parse("own-client").unwrap(), ClientId::parse("other-client").unwrap());
            let presented = PresentedState {
                idle_expires_at: at(self.idle_expires_in),
                used_at: self.is_used.then(|| at(-1)),
                retry_until: self.retry_until_in.map(at),
                successor: self.successor,
            };
            let family = FamilyState {
                client_id: &own,
                scope: &self.family_scope,
                absolute_expires_at: at(self.absolute_expires_in),
                revoked_at: self.is_revoked.then(|| at(-30)),
                is_user_disabled: self.is_user_disabled,
                dpop_jkt: self.bound_key,
            };
            let client_id = if self.is_own_client { &own } else { &other };
            let presentation = Presentation {
                client_id,
                requested_scope: self.requested_scope.as_ref(),
                now: now(),
                dpop_jkt: self.proof_key,
            };
            decide(&presented, &family, &presentation)
        }
    }

    #[test]
    fn family_ids_are_generated_simple_and_checked_when_presented() {
        let generated = FamilyId::generate();
        assert!(uuid::Uuid::try_parse(generated.as_str()).is_ok_and(|u| u.simple().to_string() == generated.as_str()));
        assert!(FamilyId::parse("").is_err());
        assert!(FamilyId::parse("f\u{7f}").is_err());
        assert!(FamilyId::parse(&"x".repeat(256)).is_err());
        assert_eq!(FamilyId::parse("0b9e2c6f").unwrap().as_str(), "0b9e2c6f");
    }

    #[test]
    fn decision_table() {
        let live = Facts::live;
        let rotated = Facts::just_rotated;
        #[rustfmt::skip]
        let table: Vec<(&str, Facts, RotationDecision)> = vec![
            ("first use", live(), Rotate),
            ("first use, narrower scope", Facts { requested_scope: Some(scope("api")), ..live() }, Rotate),
            ("first use, the same scope", Facts { requested_scope: Some(scope("api openid offline_access")), ..live() }, Rotate),
            ("first use, a second before idle expiry", Facts { idle_expires_in: 1, ..live() }, Rotate),
            ("unused, idle expiry is now", Facts { idle_expires_in: 0, ..live() }, Invalid),
            ("unused, idle-expired", Facts { idle_expires_in: -60, ..live() }, Invalid),
            ("another client's live token", Facts { is_own_client: false, ..live() }, Invalid),
            ("another client replays a used token", Facts { is_own_client: false, retry_until_in: None, ..rotated() }, Invalid),
            ("another client inside the window", Facts { is_own_client: false, ..rotated() }, Invalid),
            ("another client asks a wider scope", Facts { is_own_client: false, requested_scope: Some(scope("admin")), ..live() }, Invalid),
            ("revoked family", Facts { is_revoked: true, ..live() }, Invalid),
            ("revoked family, reuse", Facts { is_revoked: true, retry_until_in: None, ..rotated() }, Invalid),
            ("revoked family, inside the window", Facts { is_revoked: true, ..rotated() }, Invalid),
            ("absolute expiry is now", Facts { absolute_expires_in: 0, ..live() }, Invalid),
            ("absolutely expired, reuse", Facts { absolute_expires_in: -1, retry_until_in: None, ..rotated() }, Invalid),
            ("user disabled", Facts { is_user_disabled: true, ..live() }, Invalid),
            ("user disabled, inside the window", Facts { is_user_disabled: true, ..rotated() }, Invalid),
            ("wider scope", Facts { requested_scope: Some(scope("openid admin")), ..live() }, ScopeExceeded),
            ("wider scope on reuse: refused, the family stays", Facts { requested_scope: Some(scope("admin")), retry_until_in: None, ..rotated() }, ScopeExceeded),
            ("wider scope inside the window", Facts { requested_scope: Some(scope("admin")), ..rotated() }, ScopeExceeded),
            ("retry inside the window", rotated(), Retry),
            ("retry inside the window, narrower scope", Facts { requested_scope: Some(scope("openid")), ..rotated() }, Retry),
            ("retry inside the window after idle expiry", Facts { idle_expires_in: -1, ..rotated() }, Retry),
            ("inside the window, successor used", Facts { successor: Used, ..rotated() }, RevokeFamily),
            ("inside the window, no successor stored", Facts { successor: Absent, ..rotated() }, RevokeFamily),
            ("the window closes now", Facts { retry_until_in: Some(0), ..rotated() }, RevokeFamily),
            ("after the window", Facts { retry_until_in: Some(-5), ..rotated() }, RevokeFamily),
            ("no window (zero, or wiped)", Facts { retry_until_in: None, ..rotated() }, RevokeFamily),
            ("reuse after idle expiry", Facts { retry_until_in: None, idle_expires_in: -60, ..rotated() }, RevokeFamily),
            ("reuse, successor used, after the window", Facts { retry_until_in: Some(-5), successor: Used, ..rotated() }, RevokeFamily),
            ("bound family, its key", Facts { bound_key: Some("k1"), proof_key: Some("k1"), ..live() }, Rotate),
            ("bound family, no proof", Facts { bound_key: Some("k1"), ..live() }, WrongDpopKey),
            ("bound family, another key", Facts { bound_key: Some("k1"), proof_key: Some("k2"), ..live() }, WrongDpopKey),
            ("bound family, reuse without the key: not reuse", Facts { bound_key: Some("k1"), retry_until_in: None, ..rotated() }, WrongDpopKey),
            ("bound family, reuse with the key", Facts { bound_key: Some("k1"), proof_key: Some("k1"), retry_until_in: None, ..rotated() }, RevokeFamily),
            ("bound family, another client", Facts { bound_key: Some("k1"), is_own_client: false, ..live() }, Invalid),
            ("unbound family, any proof", Facts { proof_key: Some("k2"), ..live() }, Rotate),
        ];
        for (case, facts, expected) in table {
            assert_eq!(facts.decide(), expected, "{case}: {facts:?}");
        }
    }

    fn scope_subset() -> impl Strategy<Value = ScopeSet> {
        proptest::sample::subsequence(vec!["api", "admin", "openid"], 0..=3).prop_map(|s| scope(&s.join(" ")))
    }

    /// Times around `now()`, boundaries included.
    fn offset() -> impl Strategy<Value = i64> {
        -3i64..=3
    }

    /// Any facts, each check leaning towards passing so that the cases past it are common.
    fn facts() -> impl Strategy<Value = Facts> {
        let rarely = || proptest::bool::weighted(1.0 / 6.0);
        let family = (rarely(), rarely(), -2i64..=6, rarely(), scope_subset());
        let token = (
            proptest::option::of(scope_subset()),
            offset(),
            any::<bool>(),
            proptest::option::of(-2i64..=4),
            prop_oneof![Just(Absent), Just(Unused), Just(Used)],
        );
        let keys = prop_oneof![
            4 => Just((None, None)),
            2 => Just((Some("k1"), Some("k1"))),
            1 => Just((Some("k1"), None)),
            1 => Just((Some("k1"), Some("k2"))),
            1 => Just((None, Some("k2"))),
        ];
        (family, token, keys).prop_map(
            |(
                (is_other_client, is_revoked, absolute_expires_in, is_user_disabled, family_scope),
                (requested_scope, idle_expires_in, is_used, retry_until_in, successor),
                (bound_key, proof_key),
            )| Facts {
                is_own_client: !is_other_client,
                is_revoked,
                absolute_expires_in,
                is_user_disabled,
                family_scope,
                requested_scope,
                idle_expires_in,
                is_used,
                retry_until_in,
                successor,
                bound_key,
                proof_key,
            },
        )
    }

    /// The client's own token in a live family: every case past the first check.
    fn live_facts() -> impl Strategy<Value = Facts> {
        facts().prop_map(|facts| Facts {
            is_own_client: true,
            is_revoked: false,
            is_user_disabled: false,
            absolute_expires_in: facts.absolute_expires_in.abs() + 1,
            ..facts
        })
    }

    fn any_facts() -> impl Strategy<Value = Facts> {
        prop_oneof![facts(), live_facts()]
    }

    proptest! {
        // Pure and cheap: enough cases that each branch is reached many times.
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn another_clients_token_or_a_dead_family_is_invalid(facts in any_facts()) {
            if !facts.is_own_client || facts.is_dead() {
                prop_assert_eq!(facts.decide(), Invalid);
            }
        }

        #[test]
        fn rotate_exactly_for_an_unused_unexpired_token_of_a_live_family(facts in any_facts()) {
            let expected = facts.is_own_client && !facts.is_dead() && facts.is_key_proven() && facts.is_scope_within()
                && !facts.is_used && facts.idle_expires_in > 0;
            prop_assert_eq!(facts.decide() == Rotate, expected);
        }

        #[test]
        fn retry_only_when_used_inside_the_window_with_an_unused_successor(facts in any_facts()) {
            if facts.decide() == Retry {
                prop_assert!(facts.is_used && facts.is_in_window() && facts.successor == Unused);
                prop_assert!(facts.is_own_client && !facts.is_dead() && facts.is_key_proven() && facts.is_scope_within());
            }
        }

        #[test]
        fn a_used_token_outside_the_window_or_with_a_used_successor_revokes_the_family(facts in any_facts()) {
            let checks_pass = facts.is_own_client && !facts.is_dead() && facts.is_key_proven() && facts.is_scope_within();
            if checks_pass && facts.is_used && (!facts.is_in_window() || facts.successor != Unused) {
                prop_assert_eq!(facts.decide(), RevokeFamily);
            }
            if facts.decide() == RevokeFamily {
                prop_assert!(facts.is_used, "only a used token is reuse");
            }
        }

        #[test]
        fn a_scope_beyond_the_familys_is_refused_before_anything_changes(facts in any_facts()) {
            if facts.is_own_client && !facts.is_dead() && facts.is_key_proven() && !facts.is_scope_within() {
                prop_assert_eq!(facts.decide(), ScopeExceeded);
            }
            if facts.decide() == ScopeExceeded {
                prop_assert!(!facts.is_scope_within());
            }
        }

        #[test]
        fn a_bound_family_without_its_key_changes_nothing(facts in any_facts()) {
            if facts.is_own_client && !facts.is_dead() && !facts.is_key_proven() {
                prop_assert_eq!(facts.decide(), WrongDpopKey);
            }
            if facts.decide() == WrongDpopKey {
                prop_assert!(!facts.is_key_proven());
            }
        }
    }
}
