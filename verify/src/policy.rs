//! The synchronous core: what a token must satisfy, checked against a [`KeySet`] the
//! caller holds and a time the caller gives. No network, no async, no clock of its own.
//!
//! The async [`Verifier`](crate::Verifier) runs the same checks through
//! [`AccessTokenPolicy`], with keys it fetches itself: there is one JWS verifier.

use crate::claims::{Claims, IdTokenClaims};
use crate::jws::{self, HeaderBuffer, TokenType, Unverified, HEADER_BUFFER_LEN};
use crate::{Algorithm, KeySet, VerifyError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Clock skew beyond this is a broken clock, not skew; more would stretch every token's life.
pub(crate) const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// What an access token (RFC 9068) must satisfy to be accepted: its issuer, its
/// audience, the signature algorithms, and the clock skew tolerated.
///
/// The checks, in order: size and shape (RFC 7515 §7.1, at most 16 KiB, a JOSE header of
/// at most 1 KiB with no member given twice and no `crit`), `alg` in the allow-list
/// (`none` and HMAC never), `typ` `at+jwt` (RFC 9068 §4), a `kid` naming a key of the
/// [`KeySet`], the signature; then the claims RFC 9068 §2.2 requires, `iss` exactly,
/// `aud`, `exp`, `nbf` and `iat`. Nothing in the payload is read before the signature
/// has verified.
///
/// For a service that holds the issuer's keys itself, Tessera verifying its own tokens
/// at `/userinfo` for instance:
///
/// ```
/// use std::time::SystemTime;
/// use tessera_verify::{AccessTokenPolicy, Claims, KeySet, VerifyError};
///
/// fn userinfo_subject(keys: &KeySet, token: &str) -> Result<String, VerifyError> {
///     // Built once, beside the key set.
///     let policy = AccessTokenPolicy::any_audience("https://id.example.com");
///     let claims: Claims = policy.verify(keys, token, SystemTime::now())?;
///     Ok(claims.sub)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct AccessTokenPolicy {
    rules: Rules,
}

impl AccessTokenPolicy {
    /// Accepts tokens from `issuer` (compared exactly with `iss`, RFC 9068 §4) whose `aud`
    /// holds at least one of `audiences`. An empty list accepts no token at all. RS256
    /// only, no leeway, until changed.
    pub fn new<I, S>(issuer: impl Into<String>, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { rules: Rules::new(issuer.into(), Audiences::OneOf(audiences.into_iter().map(Into::into).collect())) }
    }

    /// Accepts tokens from `issuer` whatever their audience: only for the issuer itself
    /// (Tessera at `/userinfo` and introspection serves every audience). A resource server
    /// must check its audience, or it accepts tokens minted for any other service.
    pub fn any_audience(issuer: impl Into<String>) -> Self {
        Self { rules: Rules::new(issuer.into(), Audiences::Any) }
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat`: none unless set; at most five
    /// minutes (a larger value counts as five minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.set_leeway(leeway);
        self
    }

    /// The signature algorithms accepted; only RS256 (Tessera's) unless set. `none` and
    /// the HMAC algorithms are not [`Algorithm`]s, so they are refused whatever this list
    /// holds. An empty list accepts no token.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.rules.set_algorithms(algorithms);
        self
    }

    /// The issuer tokens must name in `iss`.
    pub fn issuer(&self) -> &str {
        &self.rules.issuer
    }

    /// The accepted audiences; `None` when any audience is accepted.
    pub fn audiences(&self) -> Option<&[String]> {
        self.rules.audiences.as_slice()
    }

    /// The accepted signature algorithms.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.rules.algorithms
    }

    /// Verifies `token` (the JWS compact serialisation, without `Bearer `) with `keys`
    /// as of `now` as a bearer token (RFC 6750), and returns its claims. A token bound to
    /// a key (`cnf`, a DPoP-bound token for instance) is refused with
    /// [`VerifyError::SenderConstrained`]: whoever holds it is not enough, as in
    /// [`Verifier::verify`](crate::Verifier::verify).
    pub fn verify(&self, keys: &KeySet, token: &str, now: SystemTime) -> Result<Claims, VerifyError> {
        let claims = self.verify_token(keys, token, now)?;
        if claims.cnf.is_some() {
            return Err(VerifyError::SenderConstrained);
        }
        Ok(claims)
    }

    /// Verifies `token` like [`verify`](Self::verify) but returns a token bound to a key
    /// too: for a caller that then checks the binding itself (`claims.cnf`, with a DPoP
    /// proof), such as the issuer at its own endpoints.
    pub fn verify_token(&self, keys: &KeySet, token: &str, now: SystemTime) -> Result<Claims, VerifyError> {
        let mut buffer: HeaderBuffer = [0; HEADER_BUFFER_LEN];
        let token = self.open(token, &mut buffer)?;
        self.finish(&token, keys, now)
    }

    /// The checks up to the key lookup, for the async verifier to find the key in between.
    pub(crate) fn open<'t, 'b>(
        &self,
        token: &'t str,
        buffer: &'b mut HeaderBuffer,
    ) -> Result<Unverified<'t, 'b>, VerifyError> {
        jws::open(token, buffer, &self.rules.algorithms, TokenType::AccessToken)
    }

    /// The signature with `keys`, then the claims.
    pub(crate) fn finish(
        &self,
        token: &Unverified<'_, '_>,
        keys: &KeySet,
        now: SystemTime,
    ) -> Result<Claims, VerifyError> {
        let claims = token.verify(keys, Claims::from_json)?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// `iss` exactly, `aud`, `exp`, `nbf` and `iat`: for claims whose authenticity is
    /// already established, by a signature or by the issuer's introspection endpoint.
    pub(crate) fn check_claims(&self, claims: &Claims, now: SystemTime) -> Result<(), VerifyError> {
        self.rules.check_issuer_and_audience(&claims.iss, &claims.aud)?;
        let now = unix_seconds(now);
        self.rules.check_expiry(claims.exp, now)?;
        self.rules.check_not_before(claims.nbf, claims.iat, now)
    }
}

/// What an ID token (OpenID Connect Core §2) must satisfy to be accepted: `typ` `JWT`,
/// the same JWS checks as [`AccessTokenPolicy`], then the claims §2 requires, `iss`
/// exactly, `aud`, `exp` (unless [`allow_expired`](Self::allow_expired)), `nbf` and `iat`.
///
/// Tessera reading an `id_token_hint` at logout, where an expired hint is still a good
/// hint (RP-Initiated Logout 1.0 §2):
///
/// ```
/// use std::time::SystemTime;
/// use tessera_verify::{IdTokenClaims, IdTokenPolicy, KeySet, VerifyError};
///
/// fn hint(keys: &KeySet, id_token_hint: &str) -> Result<IdTokenClaims, VerifyError> {
///     let policy = IdTokenPolicy::any_audience("https://id.example.com").allow_expired();
///     policy.verify(keys, id_token_hint, SystemTime::now())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct IdTokenPolicy {
    rules: Rules,
    allow_expired: bool,
}

impl IdTokenPolicy {
    /// Accepts ID tokens from `issuer` (compared exactly with `iss`, §3.1.3.7) whose `aud`
    /// holds at least one of `client_ids`. An empty list accepts no token at all. RS256
    /// only, no leeway, expired tokens refused, until changed.
    pub fn new<I, S>(issuer: impl Into<String>, client_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audiences = Audiences::OneOf(client_ids.into_iter().map(Into::into).collect());
        Self { rules: Rules::new(issuer.into(), audiences), allow_expired: false }
    }

    /// Accepts ID tokens from `issuer` whatever their audience: for the issuer itself,
    /// which learns the client from `aud`.
    pub fn any_audience(issuer: impl Into<String>) -> Self {
        Self { rules: Rules::new(issuer.into(), Audiences::Any), allow_expired: false }
    }

    /// Accepts tokens whose `exp` has passed, as RP-Initiated Logout 1.0 §2 does for
    /// `id_token_hint`. Everything else is still checked.
    pub fn allow_expired(mut self) -> Self {
        self.allow_expired = true;
        self
    }

    /// Clock skew tolerated for `exp`, `nbf` and `iat`: none unless set; at most five
    /// minutes (a larger value counts as five minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.rules.set_leeway(leeway);
        self
    }

    /// The signature algorithms accepted; only RS256 unless set. An empty list accepts
    /// no token.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.rules.set_algorithms(algorithms);
        self
    }

    /// The issuer tokens must name in `iss`.
    pub fn issuer(&self) -> &str {
        &self.rules.issuer
    }

    /// Verifies `token` with `keys` as of `now`, and returns its claims.
    pub fn verify(&self, keys: &KeySet, token: &str, now: SystemTime) -> Result<IdTokenClaims, VerifyError> {
        let mut buffer: HeaderBuffer = [0; HEADER_BUFFER_LEN];
        let token = jws::open(token, &mut buffer, &self.rules.algorithms, TokenType::IdToken)?;
        let claims = token.verify(keys, IdTokenClaims::from_json)?;
        self.rules.check_issuer_and_audience(&claims.iss, &claims.aud)?;
        let now = unix_seconds(now);
        if !self.allow_expired {
            self.rules.check_expiry(claims.exp, now)?;
        }
        self.rules.check_not_before(claims.nbf, claims.iat, now)?;
        Ok(claims)
    }
}

/// Which `aud` values are accepted.
#[derive(Clone, Debug)]
enum Audiences {
    Any,
    OneOf(Vec<String>),
}

impl Audiences {
    fn as_slice(&self) -> Option<&[String]> {
        match self {
            Self::Any => None,
            Self::OneOf(audiences) => Some(audiences),
        }
    }
}

/// What both policies check the same way.
#[derive(Clone, Debug)]
struct Rules {
    issuer: String,
    audiences: Audiences,
    algorithms: Vec<Algorithm>,
    leeway_seconds: i64,
}

impl Rules {
    fn new(issuer: String, audiences: Audiences) -> Self {
        Self { issuer, audiences, algorithms: vec![Algorithm::RS256], leeway_seconds: 0 }
    }

    fn set_leeway(&mut self, leeway: Duration) {
        // At most five minutes, which fits any integer type.
        self.leeway_seconds = leeway.min(MAX_LEEWAY).as_secs() as i64;
    }

    fn set_algorithms(&mut self, algorithms: impl IntoIterator<Item = Algorithm>) {
        self.algorithms.clear();
        for alg in algorithms {
            if !self.algorithms.contains(&alg) {
                self.algorithms.push(alg);
            }
        }
    }

    fn check_issuer_and_audience(&self, iss: &str, aud: &[String]) -> Result<(), VerifyError> {
        // RFC 9068 §4, OpenID Connect Core §3.1.3.7: exactly, with no normalisation.
        if iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        match &self.audiences {
            Audiences::Any => Ok(()),
            Audiences::OneOf(accepted) if aud.iter().any(|aud| accepted.contains(aud)) => Ok(()),
            Audiences::OneOf(_) => Err(VerifyError::WrongAudience),
        }
    }

    /// RFC 7519 §4.1.4: the current time must be before `exp`.
    fn check_expiry(&self, exp: i64, now: i64) -> Result<(), VerifyError> {
        if now >= exp.saturating_add(self.leeway_seconds) {
            return Err(VerifyError::Expired);
        }
        Ok(())
    }

    fn check_not_before(&self, nbf: Option<i64>, iat: i64, now: i64) -> Result<(), VerifyError> {
        let leeway = self.leeway_seconds;
        // §4.1.5: the current time must be at or after `nbf`.
        if nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
            return Err(VerifyError::NotYetValid);
        }
        // A token issued in the future comes from a broken clock or a forger.
        if now.saturating_add(leeway) < iat {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

/// NumericDate of `now`. A clock before 1970 is broken; treating it as 1970 makes every
/// token look not-yet-valid rather than valid forever.
pub(crate) fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leeway_is_capped_at_five_minutes() {
        let policy = AccessTokenPolicy::any_audience("i").leeway(Duration::from_secs(3600));
        assert_eq!(policy.rules.leeway_seconds, 300);
        let policy = IdTokenPolicy::any_audience("i").leeway(Duration::from_secs(7));
        assert_eq!(policy.rules.leeway_seconds, 7);
    }

    #[test]
    fn expiry_is_exclusive_and_not_before_inclusive() {
        let rules = Rules::new("i".into(), Audiences::Any);
        assert!(rules.check_expiry(100, 99).is_ok());
        assert!(matches!(rules.check_expiry(100, 100), Err(VerifyError::Expired)));
        assert!(rules.check_not_before(Some(100), 100, 100).is_ok());
        assert!(matches!(rules.check_not_before(Some(101), 100, 100), Err(VerifyError::NotYetValid)));
        assert!(matches!(rules.check_not_before(None, 101, 100), Err(VerifyError::NotYetValid)));
        assert!(rules.check_expiry(i64::MAX, i64::MAX - 1).is_ok(), "no overflow");
    }

    #[test]
    fn a_clock_before_1970_counts_as_1970() {
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(10)), 0);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(10)), 10);
    }

    #[test]
    fn algorithms_are_deduplicated_in_order() {
        let policy =
            AccessTokenPolicy::any_audience("i").algorithms([Algorithm::PS256, Algorithm::RS256, Algorithm::PS256]);
        assert_eq!(policy.allowed_algorithms(), [Algorithm::PS256, Algorithm::RS256]);
    }
}
