//! The claims of a verified token, typed: access tokens (RFC 9068 §2.2) and ID tokens
//! (OpenID Connect Core §2).
//!
//! Parsed by a hand-written visitor rather than `#[serde(flatten)]`: it decodes in one
//! pass without an intermediate buffer (this runs on every request), rejects a
//! registered claim that appears twice (RFC 7519 §4 allows rejecting duplicates), and
//! reports which required claim is missing.

use crate::VerifyError;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The claims of an access token that passed every check.
///
/// Times are NumericDate values (RFC 7519 §2): whole seconds since the Unix epoch.
///
/// Non-exhaustive so that claims can be added without a breaking release; outside this
/// crate a `Claims` comes from verifying a token, or, for unit tests of code that takes
/// one, from `test_util::access_token_claims_from_json` (the `test-util` feature).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Claims {
    /// `iss` (RFC 7519 §4.1.1): equal to the verifier's issuer.
    pub iss: String,
    /// `sub` (RFC 9068 §2.2): the resource owner, or the client itself for
    /// `client_credentials` tokens.
    pub sub: String,
    /// `aud` (RFC 7519 §4.1.3), always as a list; unless the policy accepts any audience,
    /// at least one entry is a configured audience.
    pub aud: Vec<String>,
    /// `client_id` (RFC 8693 §4.3): the client the token was issued to.
    pub client_id: String,
    /// `scope` (RFC 8693 §4.2): empty when the token carries no `scope` claim.
    pub scope: Scopes,
    /// `sid` (OpenID Connect Front-Channel Logout §3): the login session, when there is one.
    pub sid: Option<String>,
    /// `fid`, a Tessera claim: the refresh-token family the token descends from, when it
    /// comes from one. Revoking the family revokes the token.
    pub fid: Option<String>,
    /// `jti` (RFC 7519 §4.1.7): unique per token.
    pub jti: String,
    /// `exp` (RFC 7519 §4.1.4).
    pub exp: i64,
    /// `iat` (RFC 7519 §4.1.6).
    pub iat: i64,
    /// `nbf` (RFC 7519 §4.1.5), if present.
    pub nbf: Option<i64>,
    /// `cnf` (RFC 7800 §3.1): the key the token is bound to, if it is bound. A token with
    /// `cnf.jkt` is DPoP-bound (RFC 9449 §6.1).
    pub cnf: Option<Confirmation>,
    /// Every other claim (`auth_time`, `acr`, custom claims …), as JSON.
    pub extra: Map<String, Value>,
}

/// The `cnf` claim of an access token (RFC 7800 §3.1): how its presenter proves it holds
/// a key.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Confirmation {
    /// `jkt` (RFC 9449 §6.1): the RFC 7638 SHA-256 thumbprint of the DPoP key, base64url.
    pub jkt: Option<String>,
    /// Every other confirmation method (`x5t#S256` of RFC 8705 …), as JSON.
    pub other: Map<String, Value>,
}

impl Confirmation {
    /// Reads `cnf`: a JSON object whose `jkt`, if present, is a string.
    fn from_value(value: Value) -> Result<Self, VerifyError> {
        let Value::Object(mut other) = value else { return Err(VerifyError::Malformed("cnf is not a JSON object")) };
        let jkt = match other.remove("jkt") {
            None => None,
            Some(Value::String(jkt)) => Some(jkt),
            Some(_) => return Err(VerifyError::Malformed("cnf.jkt is not a string")),
        };
        Ok(Self { jkt, other })
    }
}

impl Claims {
    /// `cnf.jkt`: the thumbprint of the key a DPoP-bound token is bound to (RFC 9449 §6.1).
    pub fn dpop_jkt(&self) -> Option<&str> {
        self.cnf.as_ref()?.jkt.as_deref()
    }

    /// `exp` as a [`SystemTime`].
    pub fn expires_at(&self) -> SystemTime {
        numeric_date_to_system_time(self.exp)
    }

    /// `iat` as a [`SystemTime`].
    pub fn issued_at(&self) -> SystemTime {
        numeric_date_to_system_time(self.iat)
    }

    /// Parses an access token's JWT Claims Set (RFC 7519 §4); checks only presence and types.
    pub(crate) fn from_json(json: &[u8]) -> Result<Self, VerifyError> {
        RawClaims::parse(json, Kind::AccessToken)?.into_access_token_claims()
    }

    /// Claims from a claims set the caller already trusts, checking only presence and
    /// types (the members RFC 9068 §2.2 requires): no signature, issuer, audience or time.
    /// For an issuer that keeps what an opaque access token stands for and reads it back
    /// (Tessera's own introspection), so that both token formats end up as one type.
    ///
    /// Not for resource servers: a `Claims` otherwise means a verified token, and this
    /// verifies nothing. Hidden from the documentation for that reason.
    #[doc(hidden)]
    pub fn from_trusted_json(claims: &serde_json::Value) -> Result<Self, VerifyError> {
        let json = serde_json::to_vec(claims).map_err(|_| VerifyError::Malformed("the claims are not valid JSON"))?;
        Self::from_json(&json)
    }

    /// Reads an introspection response (RFC 7662 §2.2) about an opaque access token:
    /// [`Introspected::Inactive`] unless `active` is the JSON `true`; otherwise the claims,
    /// required as for a JWT access token (RFC 9068 §2.2), and `token_type` consistent with
    /// `cnf`. `active`, `token_type` and `username` are the response's, not the token's:
    /// they never reach [`Claims::extra`]. Checks presence, types and consistency only.
    // Only `fetch` introspects; the parser is tested whatever the features.
    #[cfg_attr(not(feature = "fetch"), allow(dead_code))]
    pub(crate) fn from_introspection(json: &[u8]) -> Result<Introspected, IntrospectionParseError> {
        let raw = RawClaims::parse_with(json, Kind::Introspection).map_err(|error| match error.classify() {
            // A JSON object with a member of the wrong type: what it says about the token is
            // unusable, as for a JWT's claims.
            serde_json::error::Category::Data => {
                IntrospectionParseError::Token(VerifyError::Malformed("the introspection response has invalid members"))
            }
            // Not JSON at all (an HTML error page from a proxy …): the endpoint's fault.
            _ => IntrospectionParseError::NotJson(error),
        })?;
        // §2.2: `active` is a boolean; a string "true" is not one, and we fail closed.
        if raw.active != Some(Value::Bool(true)) {
            return Ok(Introspected::Inactive);
        }
        let token_type = raw.token_type.clone();
        let claims = raw.into_access_token_claims().map_err(IntrospectionParseError::Token)?;
        check_token_type(token_type.as_deref(), claims.dpop_jkt().is_some()).map_err(IntrospectionParseError::Token)?;
        Ok(Introspected::Active(Box::new(claims)))
    }
}

/// What an introspection response says about a token (RFC 7662 §2.2).
#[derive(Debug)]
#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
pub(crate) enum Introspected {
    /// `active` is not `true`: nothing else in the response counts.
    Inactive,
    /// Live, with these claims (not yet checked against issuer, audience or time); boxed,
    /// as they are many times the size of `Inactive`.
    Active(Box<Claims>),
}

/// Why an introspection response was not read.
#[derive(Debug)]
#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
pub(crate) enum IntrospectionParseError {
    /// Not JSON: the endpoint misbehaves.
    NotJson(serde_json::Error),
    /// JSON about a token that is refused: a member of the wrong type, a required claim
    /// missing, `token_type` inconsistent with `cnf`.
    Token(VerifyError),
}

/// `token_type` (RFC 7662 §2.2; the values of RFC 6749 §7.1, case-insensitive) must agree
/// with `cnf.jkt`: a `DPoP` token without a key would otherwise pass for a bearer token
/// (RFC 9449 §6.2), and a `Bearer` token with one is contradictory. Without `token_type`,
/// `cnf` alone decides. Any other type (a refresh token …) is not an access token.
#[cfg_attr(not(feature = "fetch"), allow(dead_code))]
fn check_token_type(token_type: Option<&str>, has_jkt: bool) -> Result<(), VerifyError> {
    match token_type {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("DPoP") && has_jkt => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("Bearer") && !has_jkt => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("DPoP") || t.eq_ignore_ascii_case("Bearer") => {
            Err(VerifyError::Malformed("the introspected token_type disagrees with cnf.jkt"))
        }
        Some(_) => Err(VerifyError::WrongType),
    }
}

/// The claims of an ID token (OpenID Connect Core §2) that passed every check, as read
/// from an `id_token_hint` (RP-Initiated Logout 1.0 §2) for instance.
///
/// Times are NumericDate values (RFC 7519 §2): whole seconds since the Unix epoch.
/// Non-exhaustive, like [`Claims`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// `iss`: equal to the policy's issuer.
    pub iss: String,
    /// `sub`: the end-user.
    pub sub: String,
    /// `aud`, always as a list: the client ids the token was issued to.
    pub aud: Vec<String>,
    /// `exp`. It may have passed when the policy allows expired tokens.
    pub exp: i64,
    /// `iat`.
    pub iat: i64,
    /// `nbf` (RFC 7519 §4.1.5), if present.
    pub nbf: Option<i64>,
    /// `auth_time`: when the end-user authenticated, if present.
    pub auth_time: Option<i64>,
    /// `nonce` (§3.1.2.1), if the authentication request carried one.
    pub nonce: Option<String>,
    /// `azp`: the authorized party, if present.
    pub azp: Option<String>,
    /// `sid` (OpenID Connect Front-Channel Logout §3): the login session, if present.
    pub sid: Option<String>,
    /// Every other claim (`at_hash`, `acr`, custom claims …), as JSON.
    pub extra: Map<String, Value>,
}

impl IdTokenClaims {
    /// Parses an ID token's JWT Claims Set; checks only presence and types.
    pub(crate) fn from_json(json: &[u8]) -> Result<Self, VerifyError> {
        RawClaims::parse(json, Kind::IdToken)?.into_id_token_claims()
    }
}

fn numeric_date_to_system_time(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

/// The scopes of a token (RFC 6749 §3.3): a set of case-sensitive strings, sent as one
/// space-delimited string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Splits a `scope` value on spaces; empty entries (from repeated spaces) are skipped.
    pub fn parse(scope: &str) -> Self {
        Self(scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }

    /// Whether `scope` was granted. Exact, case-sensitive comparison (RFC 6749 §3.3).
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope in `required` was granted.
    pub fn contains_all(&self, required: &[&str]) -> bool {
        required.iter().all(|scope| self.contains(scope))
    }

    /// The scopes, in lexicographic order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many scopes were granted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the token grants no scope at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Space-delimited, as in the `scope` claim.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

/// The same as [`Scopes::parse`].
impl From<&str> for Scopes {
    fn from(scope: &str) -> Self {
        Self::parse(scope)
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a str;
    type IntoIter = std::iter::Map<std::collections::btree_set::Iter<'a, String>, fn(&'a String) -> &'a str>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(String::as_str)
    }
}

/// Which claim set a payload is parsed as: the registered names each one types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    AccessToken,
    IdToken,
    /// An introspection response (RFC 7662 §2.2): an access token's claims, and `active`,
    /// `token_type` and `username`.
    Introspection,
}

/// Every member is optional here so that a missing one becomes `MissingClaim(name)`
/// rather than an opaque serde message; `null` counts as missing.
#[derive(Default)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Vec<String>>,
    client_id: Option<String>,
    scope: Option<String>,
    sid: Option<String>,
    jti: Option<String>,
    fid: Option<String>,
    nonce: Option<String>,
    azp: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    auth_time: Option<i64>,
    cnf: Option<Value>,
    /// Only in introspection responses, where it is required (RFC 7662 §2.2); kept as any
    /// JSON so that a non-boolean reads as inactive rather than as a parse failure.
    active: Option<Value>,
    token_type: Option<String>,
    extra: Map<String, Value>,
}

impl RawClaims {
    /// Parses a JSON object in one pass; trailing characters are refused, as
    /// `serde_json::from_slice` does.
    fn parse(json: &[u8], kind: Kind) -> Result<Self, VerifyError> {
        Self::parse_with(json, kind).map_err(|_| VerifyError::Malformed("the claims are not valid JSON"))
    }

    /// [`parse`](Self::parse) with serde's error, which can quote the input: never shown.
    fn parse_with(json: &[u8], kind: Kind) -> serde_json::Result<Self> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        let raw = deserializer.deserialize_map(RawClaimsVisitor { kind })?;
        deserializer.end()?;
        Ok(raw)
    }

    fn into_access_token_claims(self) -> Result<Claims, VerifyError> {
        // RFC 9068 §2.2 lists them in this order.
        let iss = self.iss.ok_or(VerifyError::MissingClaim("iss"))?;
        let exp = self.exp.ok_or(VerifyError::MissingClaim("exp"))?;
        let aud = self.aud.filter(|aud| !aud.is_empty()).ok_or(VerifyError::MissingClaim("aud"))?;
        let sub = self.sub.ok_or(VerifyError::MissingClaim("sub"))?;
        let client_id = self.client_id.ok_or(VerifyError::MissingClaim("client_id"))?;
        let iat = self.iat.ok_or(VerifyError::MissingClaim("iat"))?;
        let jti = self.jti.ok_or(VerifyError::MissingClaim("jti"))?;
        let cnf = self.cnf.map(Confirmation::from_value).transpose()?;
        Ok(Claims {
            iss,
            sub,
            aud,
            client_id,
            scope: self.scope.as_deref().map(Scopes::parse).unwrap_or_default(),
            sid: self.sid,
            fid: self.fid,
            jti,
            exp,
            iat,
            nbf: self.nbf,
            cnf,
            extra: self.extra,
        })
    }

    fn into_id_token_claims(self) -> Result<IdTokenClaims, VerifyError> {
        // OpenID Connect Core §2 lists them in this order.
        let iss = self.iss.ok_or(VerifyError::MissingClaim("iss"))?;
        let sub = self.sub.ok_or(VerifyError::MissingClaim("sub"))?;
        let aud = self.aud.filter(|aud| !aud.is_empty()).ok_or(VerifyError::MissingClaim("aud"))?;
        let exp = self.exp.ok_or(VerifyError::MissingClaim("exp"))?;
        let iat = self.iat.ok_or(VerifyError::MissingClaim("iat"))?;
        Ok(IdTokenClaims {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf: self.nbf,
            auth_time: self.auth_time,
            nonce: self.nonce,
            azp: self.azp,
            sid: self.sid,
            extra: self.extra,
        })
    }
}

struct RawClaimsVisitor {
    kind: Kind,
}

impl<'de> Visitor<'de> for RawClaimsVisitor {
    type Value = RawClaims;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JWT Claims Set (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
        fn set<T, E: de::Error>(slot: &mut Option<T>, value: Option<T>, name: &'static str) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::custom(format_args!("duplicate claim `{name}`")));
            }
            *slot = value;
            Ok(())
        }
        use Kind::{IdToken, Introspection};
        let kind = self.kind;
        let mut raw = RawClaims::default();
        while let Some(name) = map.next_key::<ClaimName>()? {
            match name {
                ClaimName::Iss => set(&mut raw.iss, map.next_value()?, "iss")?,
                ClaimName::Sub => set(&mut raw.sub, map.next_value()?, "sub")?,
                ClaimName::Aud => set(&mut raw.aud, map.next_value::<Option<Audience>>()?.map(|a| a.0), "aud")?,
                ClaimName::Sid => set(&mut raw.sid, map.next_value()?, "sid")?,
                ClaimName::Exp => set(&mut raw.exp, map.next_value::<Option<NumericDate>>()?.map(|d| d.0), "exp")?,
                ClaimName::Iat => set(&mut raw.iat, map.next_value::<Option<NumericDate>>()?.map(|d| d.0), "iat")?,
                ClaimName::Nbf => set(&mut raw.nbf, map.next_value::<Option<NumericDate>>()?.map(|d| d.0), "nbf")?,
                ClaimName::ClientId if kind != IdToken => set(&mut raw.client_id, map.next_value()?, "client_id")?,
                ClaimName::Scope if kind != IdToken => set(&mut raw.scope, map.next_value()?, "scope")?,
                ClaimName::Jti if kind != IdToken => set(&mut raw.jti, map.next_value()?, "jti")?,
                ClaimName::Fid if kind != IdToken => set(&mut raw.fid, map.next_value()?, "fid")?,
                ClaimName::Cnf if kind != IdToken => set(&mut raw.cnf, map.next_value()?, "cnf")?,
                ClaimName::Active if kind == Introspection => set(&mut raw.active, map.next_value()?, "active")?,
                ClaimName::TokenType if kind == Introspection => {
                    set(&mut raw.token_type, map.next_value()?, "token_type")?
                }
                // RFC 7662 §2.2: the resource owner's human-readable name, not a claim of the token.
                ClaimName::Username if kind == Introspection => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                ClaimName::Nonce if kind == IdToken => set(&mut raw.nonce, map.next_value()?, "nonce")?,
                ClaimName::Azp if kind == IdToken => set(&mut raw.azp, map.next_value()?, "azp")?,
                ClaimName::AuthTime if kind == IdToken => {
                    set(&mut raw.auth_time, map.next_value::<Option<NumericDate>>()?.map(|d| d.0), "auth_time")?
                }
                // A name this kind of token does not type is kept as it is, like any other.
                // A repeated one overwrites: RFC 7519 §4 lets parsers keep the last.
                other => {
                    raw.extra.insert(other.into_name(), map.next_value()?);
                }
            }
        }
        Ok(raw)
    }
}

/// A member name; registered names are matched without allocating.
enum ClaimName {
    Iss,
    Sub,
    Aud,
    ClientId,
    Scope,
    Sid,
    Jti,
    Fid,
    Cnf,
    Nonce,
    Azp,
    Exp,
    Iat,
    Nbf,
    AuthTime,
    Active,
    TokenType,
    Username,
    Other(String),
}

impl ClaimName {
    fn into_name(self) -> String {
        let name = match self {
            Self::Other(name) => return name,
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::ClientId => "client_id",
            Self::Scope => "scope",
            Self::Sid => "sid",
            Self::Jti => "jti",
            Self::Fid => "fid",
            Self::Cnf => "cnf",
            Self::Nonce => "nonce",
            Self::Azp => "azp",
            Self::Exp => "exp",
            Self::Iat => "iat",
            Self::Nbf => "nbf",
            Self::AuthTime => "auth_time",
            Self::Active => "active",
            Self::TokenType => "token_type",
            Self::Username => "username",
        };
        name.to_owned()
    }
}

impl<'de> Deserialize<'de> for ClaimName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = ClaimName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ClaimName, E> {
                Ok(match name {
                    "iss" => ClaimName::Iss,
                    "sub" => ClaimName::Sub,
                    "aud" => ClaimName::Aud,
                    "client_id" => ClaimName::ClientId,
                    "scope" => ClaimName::Scope,
                    "sid" => ClaimName::Sid,
                    "jti" => ClaimName::Jti,
                    "fid" => ClaimName::Fid,
                    "cnf" => ClaimName::Cnf,
                    "nonce" => ClaimName::Nonce,
                    "azp" => ClaimName::Azp,
                    "exp" => ClaimName::Exp,
                    "iat" => ClaimName::Iat,
                    "nbf" => ClaimName::Nbf,
                    "auth_time" => ClaimName::AuthTime,
                    "active" => ClaimName::Active,
                    "token_type" => ClaimName::TokenType,
                    "username" => ClaimName::Username,
                    other => ClaimName::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(NameVisitor)
    }
}

/// `aud` (RFC 7519 §4.1.3): one string, or an array of strings.
pub(crate) struct Audience(pub Vec<String>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;
        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, aud: &str) -> Result<Audience, E> {
                Ok(Audience(vec![aud.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut audiences = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
                while let Some(aud) = seq.next_element::<String>()? {
                    audiences.push(aud);
                }
                Ok(Audience(audiences))
            }
        }
        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// NumericDate (RFC 7519 §2): seconds since the epoch, possibly with a fraction, which
/// is dropped (rounded down).
pub(crate) struct NumericDate(pub i64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(seconds))
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<NumericDate, E> {
                i64::try_from(seconds).map(NumericDate).map_err(|_| E::custom("NumericDate out of range"))
            }
            fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<NumericDate, E> {
                // `as` saturates, but a date beyond ±2^53 s is nonsense anyway: refuse it.
                if seconds.is_finite() && seconds.abs() < 9_007_199_254_740_992.0 {
                    Ok(NumericDate(seconds.floor() as i64))
                } else {
                    Err(E::custom("NumericDate out of range"))
                }
            }
        }
        deserializer.deserialize_any(DateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Claims, VerifyError> {
        Claims::from_json(&serde_json::to_vec(&value).unwrap())
    }

    fn complete() -> Value {
        json!({
            "iss": "https://id.example.com", "sub": "s", "aud": "https://api.example.com",
            "client_id": "c", "scope": "b  a", "iat": 1, "exp": 2, "jti": "j", "acr": "1"
        })
    }

    #[test]
    fn registered_claims_are_typed_and_the_rest_is_kept() {
        let claims = parse(complete()).unwrap();
        assert_eq!(claims.aud, ["https://api.example.com"]);
        assert_eq!(claims.scope.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(claims.scope.to_string(), "a b");
        assert_eq!(claims.sid, None);
        assert_eq!(claims.extra["acr"], "1");
        assert_eq!(claims.extra.len(), 1);
    }

    #[test]
    fn audience_may_be_an_array() {
        let mut value = complete();
        value["aud"] = json!(["x", "y"]);
        assert_eq!(parse(value).unwrap().aud, ["x", "y"]);
    }

    #[test]
    fn each_required_claim_is_named_when_missing() {
        for name in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            let mut value = complete();
            value.as_object_mut().unwrap().remove(name);
            assert!(matches!(parse(value.clone()), Err(VerifyError::MissingClaim(n)) if n == name), "{name}");
            value[name] = Value::Null;
            assert!(matches!(parse(value), Err(VerifyError::MissingClaim(n)) if n == name), "{name}: null");
        }
    }

    #[test]
    fn an_empty_audience_array_is_missing() {
        let mut value = complete();
        value["aud"] = json!([]);
        assert!(matches!(parse(value), Err(VerifyError::MissingClaim("aud"))));
    }

    #[test]
    fn wrong_types_are_malformed() {
        for (name, bad) in [("exp", json!("2")), ("aud", json!(3)), ("aud", json!([1])), ("sub", json!(1))] {
            let mut value = complete();
            value[name] = bad;
            assert!(matches!(parse(value), Err(VerifyError::Malformed(_))), "{name}");
        }
        assert!(matches!(Claims::from_json(b"[1]"), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn a_duplicated_registered_claim_is_refused() {
        let json = br#"{"iss":"a","sub":"s","aud":"x","client_id":"c","iat":1,"exp":2,"jti":"j","iss":"b"}"#;
        assert!(matches!(Claims::from_json(json), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn fractional_numeric_dates_round_down() {
        let mut value = complete();
        value["exp"] = json!(1700000000.9);
        assert_eq!(parse(value).unwrap().exp, 1_700_000_000);
    }

    #[test]
    fn the_family_claim_is_typed() {
        let mut value = complete();
        value["fid"] = json!("family-1");
        let claims = parse(value.clone()).unwrap();
        assert_eq!(claims.fid.as_deref(), Some("family-1"));
        assert!(!claims.extra.contains_key("fid"));
        assert_eq!(parse(complete()).unwrap().fid, None);
        value["fid"] = json!(7);
        assert!(matches!(parse(value), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn trailing_characters_are_malformed() {
        let json = serde_json::to_vec(&complete()).unwrap();
        assert!(Claims::from_json(&json).is_ok());
        assert!(matches!(Claims::from_json(&[&json[..], b"{}"].concat()), Err(VerifyError::Malformed(_))));
        assert!(matches!(Claims::from_json(&[&json[..], b" x"].concat()), Err(VerifyError::Malformed(_))));
        assert!(Claims::from_json(&[&json[..], b" \n"].concat()).is_ok(), "whitespace is not a character");
    }

    #[test]
    fn the_confirmation_claim_is_typed() {
        // RFC 9449 §6.1, RFC 7800 §3.1.
        assert_eq!(parse(complete()).unwrap().cnf, None);
        let mut bound = complete();
        bound["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "x5t#S256": "x" });
        let claims = parse(bound).unwrap();
        assert_eq!(claims.dpop_jkt(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert_eq!(claims.cnf.unwrap().other["x5t#S256"], "x");
        assert!(!claims.extra.contains_key("cnf"));
        for cnf in [json!("jkt"), json!({ "jkt": 1 }), json!([])] {
            let mut wrong = complete();
            wrong["cnf"] = cnf;
            assert!(matches!(parse(wrong), Err(VerifyError::Malformed(_))));
        }
        let mut twice = serde_json::to_string(&complete()).unwrap();
        twice.insert_str(1, r#""cnf":{"jkt":"a"},"cnf":{"jkt":"b"},"#);
        assert!(Claims::from_json(twice.as_bytes()).is_err());
    }

    fn id_token() -> Value {
        json!({
            "iss": "https://id.example.com", "sub": "u", "aud": "client-1", "exp": 2, "iat": 1,
            "auth_time": 1, "nonce": "n", "azp": "client-1", "sid": "s", "at_hash": "h", "jti": "j"
        })
    }

    fn parse_id(value: Value) -> Result<IdTokenClaims, VerifyError> {
        IdTokenClaims::from_json(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn id_token_claims_are_typed_and_the_rest_is_kept() {
        let claims = parse_id(id_token()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.aud.as_slice()), ("u", &["client-1".to_owned()][..]));
        assert_eq!((claims.exp, claims.iat, claims.auth_time), (2, 1, Some(1)));
        assert_eq!(
            (claims.nonce.as_deref(), claims.azp.as_deref(), claims.sid.as_deref()),
            (Some("n"), Some("client-1"), Some("s"))
        );
        // Names only access tokens type are ordinary claims here, and the reverse.
        assert_eq!(claims.extra.keys().collect::<Vec<_>>(), ["at_hash", "jti"]);
        let mut access = complete();
        access["nonce"] = json!("n");
        access["auth_time"] = json!(1.5);
        let access = parse(access).unwrap();
        assert_eq!((&access.extra["nonce"], &access.extra["auth_time"]), (&json!("n"), &json!(1.5)));
    }

    #[test]
    fn each_required_id_token_claim_is_named_when_missing() {
        for name in ["iss", "sub", "aud", "exp", "iat"] {
            let mut value = id_token();
            value.as_object_mut().unwrap().remove(name);
            assert!(matches!(parse_id(value), Err(VerifyError::MissingClaim(n)) if n == name), "{name}");
        }
        let mut value = id_token();
        value["aud"] = json!(["client-1", "client-2"]);
        assert_eq!(parse_id(value).unwrap().aud, ["client-1", "client-2"]);
    }

    #[test]
    fn id_token_claims_are_type_checked_and_not_repeated() {
        for (name, bad) in [("auth_time", json!("1")), ("nonce", json!(1)), ("sid", json!([])), ("aud", json!({}))] {
            let mut value = id_token();
            value[name] = bad;
            assert!(matches!(parse_id(value), Err(VerifyError::Malformed(_))), "{name}");
        }
        let json = br#"{"iss":"a","sub":"u","aud":"c","exp":2,"iat":1,"sub":"v"}"#;
        assert!(matches!(IdTokenClaims::from_json(json), Err(VerifyError::Malformed(_))));
    }

    fn introspect(value: Value) -> Result<Introspected, IntrospectionParseError> {
        Claims::from_introspection(&serde_json::to_vec(&value).unwrap())
    }

    fn introspection() -> Value {
        let mut value = complete();
        value["active"] = json!(true);
        value["token_type"] = json!("Bearer");
        value["username"] = json!("alice");
        value["auth_time"] = json!(1);
        value["fid"] = json!("family-1");
        value
    }

    #[test]
    fn an_active_introspection_response_maps_to_claims_without_its_own_members() {
        let Ok(Introspected::Active(claims)) = introspect(introspection()) else { panic!("active") };
        assert_eq!((claims.sub.as_str(), claims.client_id.as_str(), claims.jti.as_str()), ("s", "c", "j"));
        assert_eq!(claims.fid.as_deref(), Some("family-1"));
        // `active`, `token_type` and `username` describe the response, not the token.
        assert_eq!(claims.extra.keys().collect::<Vec<_>>(), ["acr", "auth_time"]);
    }

    #[test]
    fn only_the_json_true_is_active() {
        for active in [json!(false), json!("true"), json!(1), Value::Null] {
            let mut value = introspection();
            value["active"] = active.clone();
            assert!(matches!(introspect(value), Ok(Introspected::Inactive)), "{active}");
        }
        let mut value = introspection();
        value.as_object_mut().unwrap().remove("active");
        assert!(matches!(introspect(value), Ok(Introspected::Inactive)));
        assert!(matches!(introspect(json!({ "active": false })), Ok(Introspected::Inactive)));
        // A JWT may carry a claim named `active`; it is an ordinary claim there.
        let mut jwt = complete();
        jwt["active"] = json!(false);
        assert_eq!(parse(jwt).unwrap().extra["active"], json!(false));
    }

    #[test]
    fn an_active_response_needs_every_required_claim() {
        for name in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
            let mut value = introspection();
            value.as_object_mut().unwrap().remove(name);
            let result = introspect(value);
            assert!(
                matches!(result, Err(IntrospectionParseError::Token(VerifyError::MissingClaim(n))) if n == name),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn token_type_must_agree_with_the_confirmation() {
        let bound = |token_type: Option<&str>, jkt: bool| {
            let mut value = introspection();
            match token_type {
                Some(token_type) => value["token_type"] = json!(token_type),
                None => _ = value.as_object_mut().unwrap().remove("token_type"),
            }
            if jkt {
                value["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
            }
            introspect(value)
        };
        assert!(matches!(bound(Some("DPoP"), true), Ok(Introspected::Active(c)) if c.dpop_jkt().is_some()));
        assert!(matches!(bound(Some("dpop"), true), Ok(Introspected::Active(_))));
        assert!(matches!(bound(Some("Bearer"), false), Ok(Introspected::Active(c)) if c.cnf.is_none()));
        assert!(matches!(bound(None, true), Ok(Introspected::Active(_))));
        assert!(matches!(bound(None, false), Ok(Introspected::Active(_))));
        // A DPoP token reported without its key would pass for a bearer token.
        let unbound_dpop = bound(Some("DPoP"), false);
        assert!(matches!(unbound_dpop, Err(IntrospectionParseError::Token(VerifyError::Malformed(_)))));
        assert!(matches!(bound(Some("Bearer"), true), Err(IntrospectionParseError::Token(VerifyError::Malformed(_)))));
        let refresh = bound(Some("refresh_token"), false);
        assert!(matches!(refresh, Err(IntrospectionParseError::Token(VerifyError::WrongType))));
    }

    #[test]
    fn a_response_that_is_not_json_is_the_endpoints_fault() {
        let html = Claims::from_introspection(b"<html>busy</html>");
        assert!(matches!(html, Err(IntrospectionParseError::NotJson(_))));
        let truncated = Claims::from_introspection(br#"{"active":true,"#);
        assert!(matches!(truncated, Err(IntrospectionParseError::NotJson(_))));
        let mut wrong = introspection();
        wrong["exp"] = json!("soon");
        assert!(matches!(introspect(wrong), Err(IntrospectionParseError::Token(VerifyError::Malformed(_)))));
        let twice = br#"{"active":true,"active":false}"#;
        assert!(matches!(Claims::from_introspection(twice), Err(IntrospectionParseError::Token(_))));
    }

    #[test]
    fn scopes_convert_from_a_scope_string() {
        let scopes = Scopes::from("b a  b");
        assert_eq!(scopes, Scopes::parse("a b"));
        assert_eq!(scopes.len(), 2);
    }
}
