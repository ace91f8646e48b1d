//! JSON Web Keys (RFC 7517) turned once into parsed aws-lc public keys: the issuer's JWK
//! Set, a client's registered JWK Set, or the one key a DPoP proof carries.
//!
//! Parsing a key costs about as much as verifying a signature with it (`jsonwebtoken`
//! does it on every `decode`), so each key is parsed when the set is read and kept.

use crate::algorithm::KeyKind;
use crate::jws::{self, VerifiedJws};
use crate::{Algorithm, JwkError, JwksError, VerifyError};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// At most this many keys are tried for one JWS that does not say which key signed it
/// (no `kid`, or a `kid` the set does not publish), so a forged JWS costs at most this
/// many signature checks.
pub const MAX_KEYS_TRIED: usize = 10;

/// The members of a private or symmetric JWK (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037
/// §2): a JWK holding any of them is never accepted where a public key is expected
/// (RFC 9449 §4.3 check 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// One public key, as a JWK (RFC 7517 §4) of type `RSA` (RFC 7518 §6.3), `EC` on P-256
/// (RFC 7518 §6.2), or `OKP` on Ed25519 (RFC 8037 §2).
///
/// What [`from_json`](Self::from_json) refuses: another key type or curve, a JWK with
/// private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`), a key for encryption
/// (`use` other than `sig`, `key_ops` without `verify`), an `alg` this crate does not
/// verify or that does not fit the key type, and coordinates of the wrong length.
///
/// ```
/// # fn run() -> Result<(), tessera_verify::JwkError> {
/// use tessera_verify::jwk::Jwk;
///
/// let jwk = Jwk::from_json(br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#)?;
/// assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"); // RFC 8037 Appendix A.3
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    material: Material,
}

/// The public key itself, decoded, with RSA integers stripped of leading zero octets.
#[derive(Clone, PartialEq, Eq)]
enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: [u8; 32], y: [u8; 32] },
    Ed25519 { x: [u8; 32] },
}

impl Jwk {
    /// Parses one JWK, a JSON object (RFC 7517 §4).
    pub fn from_json(json: &[u8]) -> Result<Self, JwkError> {
        let value: Value = crate::from_json_object(json).map_err(|_| JwkError::Invalid("not a JSON object"))?;
        Self::from_value(&value)
    }

    /// Parses one JWK already read as JSON, the `jwk` header of a DPoP proof for instance.
    pub fn from_value(value: &Value) -> Result<Self, JwkError> {
        // RFC 7517 §4: a JWK is a JSON object. Read member by member rather than through a
        // derived `Deserialize`, which would also take an array of the members in order.
        let jwk = value.as_object().ok_or(JwkError::Invalid("not a JSON object"))?;
        if PRIVATE_MEMBERS.iter().any(|member| jwk.contains_key(*member)) {
            return Err(JwkError::PrivateKey);
        }
        let kind = match (string(jwk, "kty")?, string(jwk, "crv")?) {
            (Some("RSA"), _) => KeyKind::Rsa,
            (Some("EC"), Some("P-256")) => KeyKind::P256,
            (Some("OKP"), Some("Ed25519")) => KeyKind::Ed25519,
            (Some("EC" | "OKP"), _) => return Err(JwkError::Unsupported("a curve other than P-256 and Ed25519")),
            (Some(_), _) => return Err(JwkError::Unsupported("a key type other than RSA, EC and OKP")),
            (None, _) => return Err(JwkError::Invalid("no kty")),
        };
        if string(jwk, "use")?.is_some_and(|u| u != "sig") {
            return Err(JwkError::Unsupported("not a signature key (`use`)"));
        }
        match jwk.get("key_ops") {
            None => {}
            Some(Value::Array(ops)) if ops.iter().any(|op| op == "verify") => {}
            Some(Value::Array(_)) => return Err(JwkError::Unsupported("not a verification key (`key_ops`)")),
            Some(_) => return Err(JwkError::Invalid("key_ops is not an array")),
        }
        let alg = match string(jwk, "alg")? {
            None => None,
            Some(name) => {
                let alg = Algorithm::from_name(name)
                    .ok_or(JwkError::Unsupported("published for an algorithm this crate does not verify"))?;
                if alg.key_kind() != kind {
                    return Err(JwkError::Invalid("alg does not fit the key type"));
                }
                Some(alg)
            }
        };
        let kid = string(jwk, "kid")?.map(str::to_owned);
        let material = match kind {
            KeyKind::Rsa => Material::Rsa { n: unsigned(jwk, "n")?, e: unsigned(jwk, "e")? },
            // RFC 7518 §6.2.1.2-3: each coordinate is the full 32 octets, leading zeros kept.
            KeyKind::P256 => Material::P256 { x: octets(jwk, "x")?, y: octets(jwk, "y")? },
            // RFC 8037 §2: the 32-octet public key.
            KeyKind::Ed25519 => Material::Ed25519 { x: octets(jwk, "x")? },
        };
        Ok(Self { kid, alg, material })
    }

    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is published for (`alg`, RFC 7517 §4.4), if named.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key type: `RSA`, `EC` or `OKP`.
    pub fn key_type(&self) -> &'static str {
        match self.material {
            Material::Rsa { .. } => "RSA",
            Material::P256 { .. } => "EC",
            Material::Ed25519 { .. } => "OKP",
        }
    }

    /// Whether a JWS made with `alg` could have been signed by this key: the key type and
    /// curve fit, and the key does not name another `alg` (RFC 7517 §4.4).
    pub fn supports(&self, alg: Algorithm) -> bool {
        alg.key_kind() == self.kind() && self.alg.is_none_or(|published| published == alg)
    }

    /// The JWK SHA-256 Thumbprint (RFC 7638 §3), base64url without padding: SHA-256 over
    /// the required members in lexicographic order without whitespace, `{"e","kty","n"}`
    /// for RSA, `{"crv","kty","x","y"}` for EC, `{"crv","kty","x"}` for OKP. What
    /// `cnf.jkt` (RFC 9449 §6.1) and Tessera's `kid`s are.
    pub fn thumbprint(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        // Every value is base64url or a fixed name, so none needs JSON escaping.
        let canonical = match &self.material {
            Material::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Material::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)),
            Material::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        };
        b64(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// Verifies a JWS in compact serialisation (RFC 7515 §7.1) signed by this key with one
    /// of `algorithms`, and returns its header and payload. The `kid` of the JWS is not
    /// compared; `typ` and the claims are the caller's to check (see [`VerifiedJws`]).
    pub fn verify_jws(&self, token: &str, algorithms: &[Algorithm]) -> Result<VerifiedJws, VerifyError> {
        let opened = jws::open_owned(token, jws::MAX_TOKEN_LEN, algorithms)?;
        if !self.supports(opened.header.alg) {
            return Err(VerifyError::UnsupportedAlgorithm);
        }
        let key = self.verifying_key(&[opened.header.alg]).map_err(|_| VerifyError::UnsupportedAlgorithm)?;
        opened.verify([&key])
    }

    fn kind(&self) -> KeyKind {
        match self.material {
            Material::Rsa { .. } => KeyKind::Rsa,
            Material::P256 { .. } => KeyKind::P256,
            Material::Ed25519 { .. } => KeyKind::Ed25519,
        }
    }

    /// The key parsed for each of `allowed` it supports; an error when there is none, or
    /// when aws-lc refuses the key (an RSA modulus below 2048 bits, a point off the curve).
    pub(crate) fn verifying_key(&self, allowed: &[Algorithm]) -> Result<VerifyingKey, &'static str> {
        let mut parsed = Vec::new();
        for &alg in allowed.iter().filter(|&&alg| self.supports(alg)) {
            let key = match &self.material {
                Material::Rsa { n, e } => {
                    let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
                    let parameters = alg.rsa_parameters().ok_or("not an RSA algorithm")?;
                    components.to_parsed_public_key(parameters).map_err(|_| "invalid RSA key")?
                }
                Material::P256 { x, y } => {
                    // The uncompressed SEC1 point, 0x04 || x || y; aws-lc checks it is on the curve.
                    let mut point = [0u8; 65];
                    point[0] = 4;
                    point[1..33].copy_from_slice(x);
                    point[33..].copy_from_slice(y);
                    ParsedPublicKey::new(alg.point_parameters().ok_or("not ES256")?, point)
                        .map_err(|_| "invalid P-256 key")?
                }
                Material::Ed25519 { x } => ParsedPublicKey::new(alg.point_parameters().ok_or("not EdDSA")?, x)
                    .map_err(|_| "invalid Ed25519 key")?,
            };
            parsed.push((alg, key));
        }
        if parsed.is_empty() {
            return Err(if self.alg.is_some() {
                "published for an algorithm that is not allowed"
            } else {
                "no allowed algorithm fits the key type"
            });
        }
        Ok(VerifyingKey { parsed })
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.key_type())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("thumbprint", &self.thumbprint())
            .finish()
    }
}

/// A string member; an error when it is there but not a string.
fn string<'a>(jwk: &'a Map<String, Value>, member: &'static str) -> Result<Option<&'a str>, JwkError> {
    match jwk.get(member) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(JwkError::Invalid("a member is not a string")),
    }
}

/// A Base64urlUInt (RFC 7518 §2) without leading zero octets, which aws-lc refuses and
/// RFC 7638 §3.3 leaves out of the thumbprint.
fn unsigned(jwk: &Map<String, Value>, member: &'static str) -> Result<Vec<u8>, JwkError> {
    let encoded = string(jwk, member)?.ok_or(JwkError::Invalid("a required key member is missing"))?;
    decode_unsigned(encoded).map_err(JwkError::Invalid)
}

fn decode_unsigned(encoded: &str) -> Result<Vec<u8>, &'static str> {
    let mut bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| "a key member is not base64url")?;
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    if bytes.is_empty() {
        return Err("a key member is zero");
    }
    Ok(bytes)
}

/// A base64url member of exactly 32 octets.
fn octets(jwk: &Map<String, Value>, member: &'static str) -> Result<[u8; 32], JwkError> {
    let encoded = string(jwk, member)?.ok_or(JwkError::Invalid("a required key member is missing"))?;
    let mut bytes = [0u8; 32];
    // Strict base64url: one encoding per key, so one thumbprint per key.
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes) {
        Ok(32) => Ok(bytes),
        _ => Err(JwkError::Invalid("a coordinate is not 32 octets of base64url")),
    }
}

/// The public keys of an issuer or of a client, parsed once: what JWSs are verified with.
///
/// Built from a JWK Set document (RFC 7517 §5) such as Tessera serves at `jwks_uri`:
///
/// ```
/// # fn run(jwks_json: &[u8]) -> Result<(), tessera_verify::JwksError> {
/// let keys = tessera_verify::KeySet::from_jwks(jwks_json)?;
/// # Ok(()) }
/// ```
///
/// Keys this crate cannot use are skipped, as §5 asks for members that are not
/// understood, and logged at `debug`: other key types and curves, private keys, keys for
/// encryption (`use` or `key_ops`), keys published for an algorithm that is not allowed,
/// RSA keys below 2048 bits, and, in an issuer's set, keys without a `kid` (tokens must
/// name their key). A `kid` published twice is dropped with a warning, since a JWS naming
/// it would be ambiguous.
pub struct KeySet {
    /// In document order, so that the keys tried for a JWS without `kid` do not vary.
    entries: Vec<Entry>,
    by_kid: HashMap<String, usize>,
}

struct Entry {
    kid: Option<String>,
    key: VerifyingKey,
}

impl KeySet {
    /// Parses an issuer's JWK Set, keeping the keys usable with RS256, what Tessera signs with.
    pub fn from_jwks(jwks: &[u8]) -> Result<Self, JwksError> {
        Self::from_jwks_for(jwks, &[Algorithm::RS256])
    }

    /// Parses an issuer's JWK Set, keeping the keys usable with one of `algorithms`. A key
    /// that names its `alg` is only ever used with it (RFC 7517 §4.4); one that does not
    /// is parsed for each of `algorithms` that fits its type. Keys without `kid` are
    /// skipped.
    pub fn from_jwks_for(jwks: &[u8], algorithms: &[Algorithm]) -> Result<Self, JwksError> {
        Self::parse(jwks, algorithms, false)
    }

    /// Parses a client's registered JWK Set (`jwks` or the document at `jwks_uri`, RFC 7591
    /// §2), for client assertions (RFC 7523 §2.2) with one of `algorithms`, typically
    /// RS256, ES256 and EdDSA. Unlike an issuer's set, keys without `kid` are kept: client
    /// sets often lack them, and [`verify_jws`](Self::verify_jws) then tries each key
    /// that fits the algorithm (at most [`MAX_KEYS_TRIED`]).
    pub fn from_client_jwks(jwks: &[u8], algorithms: &[Algorithm]) -> Result<Self, JwksError> {
        Self::parse(jwks, algorithms, true)
    }

    fn parse(jwks: &[u8], algorithms: &[Algorithm], keeps_unnamed: bool) -> Result<Self, JwksError> {
        let set: JwkSet = crate::from_json_object(jwks).map_err(JwksError)?;
        let mut entries = Vec::with_capacity(set.keys.len());
        for value in set.keys {
            let parsed = Jwk::from_value(&value).map_err(|error| match error {
                JwkError::PrivateKey => "a private key",
                JwkError::Unsupported(reason) | JwkError::Invalid(reason) => reason,
            });
            let parsed = parsed.and_then(|jwk| {
                if jwk.kid.is_none() && !keeps_unnamed {
                    // Tokens must name their key, so a key without `kid` could never be selected.
                    return Err("no kid");
                }
                Ok(Entry { key: jwk.verifying_key(algorithms)?, kid: jwk.kid })
            });
            match parsed {
                Ok(entry) => entries.push(entry),
                Err(reason) => tracing::debug!(reason, "skipping a JWK"),
            }
        }
        let mut seen = HashSet::new();
        let duplicates: HashSet<String> =
            entries.iter().filter_map(|e| e.kid.clone()).filter(|kid| !seen.insert(kid.clone())).collect();
        for kid in &duplicates {
            tracing::warn!(kid, "the JWK Set lists this kid more than once; its JWSs will not verify");
        }
        entries.retain(|entry| entry.kid.as_ref().is_none_or(|kid| !duplicates.contains(kid)));
        let by_kid = entries.iter().enumerate().filter_map(|(i, e)| Some((e.kid.clone()?, i))).collect();
        Ok(Self { entries, by_kid })
    }

    /// The key published as `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|&i| &self.entries[i].key)
    }

    /// The keys to try for a JWS naming `kid` (or none) signed with `alg`: the key named
    /// `kid` if there is one; otherwise the keys without `kid`, or every key when the JWS
    /// names none, that fit `alg`; at most [`MAX_KEYS_TRIED`].
    fn candidates(&self, kid: Option<&str>, alg: Algorithm) -> Vec<&VerifyingKey> {
        if let Some(key) = kid.and_then(|kid| self.get(kid)) {
            return vec![key];
        }
        self.entries
            .iter()
            .filter(|entry| kid.is_none() || entry.kid.is_none())
            .map(|entry| &entry.key)
            .filter(|key| key.supports(alg))
            .take(MAX_KEYS_TRIED)
            .collect()
    }

    /// Verifies a JWS in compact serialisation (RFC 7515 §7.1) signed with one of
    /// `algorithms` by a key of this set, and returns its header and payload: for client
    /// assertions (RFC 7523 §2.2) checked with the client's registered keys.
    ///
    /// The key is the one the JWS names by `kid`; when it names none, or a `kid` the set
    /// does not have, the keys without `kid` (every key, when the JWS names none) that fit
    /// the algorithm are tried in document order, at most [`MAX_KEYS_TRIED`]. `typ` and the
    /// claims are the caller's to check (see [`VerifiedJws`]).
    pub fn verify_jws(&self, token: &str, algorithms: &[Algorithm]) -> Result<VerifiedJws, VerifyError> {
        let opened = jws::open_owned(token, jws::MAX_TOKEN_LEN, algorithms)?;
        let candidates = self.candidates(opened.header.kid.as_deref(), opened.header.alg);
        opened.verify(candidates)
    }

    /// Whether a usable key is published as `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.by_kid.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// How many usable keys the set holds, with or without `kid`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key of the document can be used: every JWS will be refused.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.key_ids()).field("keys", &self.len()).finish()
    }
}

/// A JWK Set document: a JSON object whose `keys` member is an array (RFC 7517 §5).
///
/// Deserialised by hand because `#[derive(Deserialize)]` also accepts a struct written as
/// an array (`[[…]]`), which is no JWK Set.
struct JwkSet {
    keys: Vec<Value>,
}

impl<'de> Deserialize<'de> for JwkSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JwkSetVisitor;
        impl<'de> Visitor<'de> for JwkSetVisitor {
            type Value = JwkSet;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JWK Set (a JSON object with a `keys` array)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JwkSet, A::Error> {
                let mut keys = None;
                while let Some(name) = map.next_key::<String>()? {
                    if name != "keys" {
                        map.next_value::<IgnoredAny>()?;
                    } else if keys.replace(map.next_value()?).is_some() {
                        return Err(de::Error::duplicate_field("keys"));
                    }
                }
                Ok(JwkSet { keys: keys.ok_or_else(|| de::Error::missing_field("keys"))? })
            }
        }
        deserializer.deserialize_map(JwkSetVisitor)
    }
}

/// One key, parsed for each allowed algorithm it may be used with.
pub(crate) struct VerifyingKey {
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl VerifyingKey {
    /// Verifies `signature` over `message` with this key and `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        // A key published with `"alg": "RS256"` is not used for PS256 (RFC 7517 §4.4).
        let (_, key) = self.parsed.iter().find(|(a, _)| *a == alg).ok_or(VerifyError::UnsupportedAlgorithm)?;
        key.verify_sig(message, signature).map_err(|_| VerifyError::BadSignature)
    }

    /// Whether the key may verify `alg`.
    pub fn supports(&self, alg: Algorithm) -> bool {
        self.parsed.iter().any(|(a, _)| *a == alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7517 Appendix A.1, the RSA public key.
    const RFC7517_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn set(keys: Value) -> KeySet {
        KeySet::from_jwks(&serde_json::to_vec(&json!({ "keys": keys })).unwrap()).unwrap()
    }

    #[test]
    fn the_rfc7517_example_key_parses() {
        let keys = set(json!([{ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29" }]));
        assert!(keys.contains("2011-04-29"));
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn unusable_keys_are_skipped_and_the_rest_kept() {
        let keys = set(json!([
            { "kty": "EC", "crv": "P-256", "x": "a", "y": "b", "kid": "ec" },
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "use": "enc", "kid": "enc" },
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "key_ops": ["encrypt"], "kid": "ops" },
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "PS256", "kid": "ps" },
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "HS256", "kid": "hs" },
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB" },
            { "kty": "RSA", "n": "not base64!", "e": "AQAB", "kid": "bad" },
            { "kty": "RSA", "n": "AAAA", "e": "AQAB", "kid": "zero" },
            { "kty": "oct", "k": "c2VjcmV0", "kid": "oct" },
            "not an object",
            { "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "kid": "good" },
        ]));
        assert_eq!(keys.key_ids(), ["good"]);
    }

    #[test]
    fn a_duplicated_kid_is_dropped() {
        let jwk = json!({ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "kid": "twice" });
        assert!(set(json!([jwk.clone(), jwk])).is_empty());
    }

    #[test]
    fn a_key_is_only_used_with_its_published_algorithm() {
        let jwk = json!({ "keys": [{ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "RS256", "kid": "k" }] });
        let keys = KeySet::from_jwks_for(jwk.to_string().as_bytes(), &[Algorithm::RS256, Algorithm::PS256]).unwrap();
        let key = keys.get("k").unwrap();
        assert!(matches!(key.verify(Algorithm::PS256, b"m", &[0; 256]), Err(VerifyError::UnsupportedAlgorithm)));
        assert!(matches!(key.verify(Algorithm::RS256, b"m", &[0; 256]), Err(VerifyError::BadSignature)));
    }

    #[test]
    fn leading_zero_octets_are_tolerated() {
        assert_eq!(decode_unsigned("AAEAAQ").unwrap(), [1, 0, 1]);
    }

    /// Found by the `jwks` fuzz target (`fuzz/corpus/jwks/crash-array-set-*`): a derived
    /// `Deserialize` also reads a struct from an array of its fields in order.
    #[test]
    fn a_json_array_is_not_a_jwk_set() {
        let jwk = json!({ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "kid": "k" });
        assert!(KeySet::from_jwks(b"[[]]").is_err());
        assert!(KeySet::from_jwks(json!([[jwk]]).to_string().as_bytes()).is_err());
    }

    #[test]
    fn a_jwk_written_as_an_array_is_skipped() {
        let positional = json!(["RSA", "k", "sig", null, "RS256", RFC7517_N, "AQAB"]);
        assert!(set(json!([positional])).is_empty());
    }

    #[test]
    fn a_jwk_set_that_is_not_utf8_is_an_error() {
        // RFC 8259 §8.1; serde_json does not check the UTF-8 of a member it skips.
        assert!(KeySet::from_jwks(b"{\"keys\":[],\"x\":\"\xff\"}").is_err());
    }

    #[test]
    fn documents_that_are_not_jwk_sets_are_errors() {
        assert!(KeySet::from_jwks(b"[]").is_err());
        assert!(KeySet::from_jwks(b"{\"keys\":{}}").is_err());
        assert!(KeySet::from_jwks(b"<html>").is_err());
        assert!(KeySet::from_jwks(b"{}").is_err());
        assert!(KeySet::from_jwks(br#"{"keys":[],"keys":[]}"#).is_err());
        // An array is how serde writes a struct positionally; it is no JWK Set. Found by
        // the `jwks` fuzz target.
        assert!(KeySet::from_jwks(b"[[[]]]").is_err());
        assert!(KeySet::from_jwks(br#"{"other":{"keys":1},"keys":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn the_rfc7638_example_thumbprint() {
        // RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1, with its `alg` and `kid`.
        let jwk = json!({ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29" });
        let jwk = Jwk::from_value(&jwk).unwrap();
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        // Leading zero octets and members other than the required ones change nothing (§3.2-3).
        let jwk = json!({ "kty": "RSA", "n": RFC7517_N, "e": "AAEAAQ", "use": "sig", "x5t": "abc" });
        assert_eq!(Jwk::from_value(&jwk).unwrap().thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn the_rfc8037_example_thumbprint() {
        // RFC 8037 Appendix A.2 and A.3: the Ed25519 public key and its thumbprint.
        let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
        assert_eq!(Jwk::from_value(&jwk).unwrap().thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn an_ec_thumbprint_covers_crv_kty_x_y_in_order() {
        // RFC 7517 Appendix A.1, the P-256 key.
        let (x, y) = ("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM");
        let jwk = Jwk::from_value(&json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "1" })).unwrap();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        assert_eq!(jwk.thumbprint(), URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())));
        assert!(jwk.verifying_key(&[Algorithm::ES256]).is_ok(), "the point is on the curve");
    }

    #[test]
    fn private_jwks_are_refused() {
        for member in PRIVATE_MEMBERS {
            let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", member: "AQAB" });
            assert_eq!(Jwk::from_value(&jwk), Err(JwkError::PrivateKey), "{member}");
        }
        let private = json!({ "kty": "RSA", "n": RFC7517_N, "e": "AQAB", "d": "AQAB", "kid": "private" });
        assert!(set(json!([private])).is_empty());
    }

    #[test]
    fn curves_and_coordinates_are_checked() {
        let x = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
        for jwk in [
            json!({ "kty": "EC", "crv": "P-384", "x": x, "y": x }),
            json!({ "kty": "EC", "crv": "P-256", "x": x }),
            json!({ "kty": "EC", "crv": "P-256", "x": x, "y": "AQAB" }),
            json!({ "kty": "EC", "crv": "P-256", "x": x, "y": format!("{x}AA") }),
            json!({ "kty": "OKP", "crv": "X25519", "x": x }),
            json!({ "kty": "OKP", "crv": "Ed448", "x": x }),
            json!({ "kty": "OKP", "x": x }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "ES256" }),
            json!({ "kty": "oct", "kid": "k" }),
            json!({ "crv": "Ed25519", "x": x }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "use": "enc" }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": x, "key_ops": ["encrypt"] }),
            json!({ "kty": "OKP", "crv": "Ed25519", "x": 1 }),
            json!(["OKP", "Ed25519", x]),
        ] {
            assert!(Jwk::from_value(&jwk).is_err(), "{jwk}");
        }
        // x is not a point on P-256.
        let off_curve = Jwk::from_value(&json!({ "kty": "EC", "crv": "P-256", "x": x, "y": x })).unwrap();
        assert!(off_curve.verifying_key(&[Algorithm::ES256]).is_err());
    }

    mod client_keys {
        use super::*;
        use crate::test_util::DpopKey;

        fn jws(key: &DpopKey, kid: Option<&str>) -> String {
            let mut header = json!({ "alg": key.algorithm().name(), "typ": "JWT" });
            if let Some(kid) = kid {
                header["kid"] = kid.into();
            }
            key.sign(&header, &json!({ "iss": "client", "sub": "client", "jti": "1" }))
        }

        fn with_kid(jwk: Value, kid: &str) -> Value {
            let mut jwk = jwk;
            jwk["kid"] = kid.into();
            jwk
        }

        const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

        fn client_set(keys: Vec<Value>) -> KeySet {
            KeySet::from_client_jwks(json!({ "keys": keys }).to_string().as_bytes(), &ALGORITHMS).unwrap()
        }

        #[test]
        fn keys_without_kid_are_kept_and_tried() {
            let (ec, ed) = (DpopKey::es256(), DpopKey::ed25519());
            let keys = client_set(vec![ec.public_jwk(), ed.public_jwk()]);
            assert_eq!(keys.len(), 2);
            for key in [&ec, &ed] {
                let verified = keys.verify_jws(&jws(key, None), &ALGORITHMS).unwrap();
                assert_eq!(verified.header.alg, key.algorithm());
                assert_eq!(verified.claims::<Value>().unwrap()["iss"], "client");
                // A kid the set does not publish falls back to the keys without one.
                assert!(keys.verify_jws(&jws(key, Some("unknown")), &ALGORITHMS).is_ok());
            }
            // An issuer's set has no use for keys without kid.
            let issuer =
                KeySet::from_jwks_for(json!({ "keys": [ec.public_jwk()] }).to_string().as_bytes(), &ALGORITHMS);
            assert!(issuer.unwrap().is_empty());
        }

        #[test]
        fn a_named_key_is_the_only_one_tried() {
            let (a, b) = (DpopKey::es256(), DpopKey::es256());
            let keys = client_set(vec![with_kid(a.public_jwk(), "a"), b.public_jwk()]);
            assert!(keys.verify_jws(&jws(&a, Some("a")), &ALGORITHMS).is_ok());
            assert!(keys.verify_jws(&jws(&a, None), &ALGORITHMS).is_ok());
            assert!(matches!(keys.verify_jws(&jws(&b, Some("a")), &ALGORITHMS), Err(VerifyError::BadSignature)));
            let only_named = client_set(vec![with_kid(a.public_jwk(), "a")]);
            let result = only_named.verify_jws(&jws(&a, Some("b")), &ALGORITHMS);
            assert!(matches!(result, Err(VerifyError::UnknownKey)), "a named key is not tried for another kid");
        }

        #[test]
        fn at_most_ten_keys_are_tried() {
            let signer = DpopKey::ed25519();
            let mut published: Vec<Value> = (0..MAX_KEYS_TRIED).map(|_| DpopKey::ed25519().public_jwk()).collect();
            published.push(signer.public_jwk());
            let keys = client_set(published.clone());
            assert_eq!(keys.len(), MAX_KEYS_TRIED + 1);
            assert!(matches!(keys.verify_jws(&jws(&signer, None), &ALGORITHMS), Err(VerifyError::BadSignature)));
            // Keys of another type do not count.
            let mut mixed: Vec<Value> = (0..MAX_KEYS_TRIED).map(|_| DpopKey::es256().public_jwk()).collect();
            mixed.push(signer.public_jwk());
            assert!(client_set(mixed).verify_jws(&jws(&signer, None), &ALGORITHMS).is_ok());
        }

        #[test]
        fn algorithms_outside_the_allow_list_are_refused() {
            let key = DpopKey::es256();
            let keys = client_set(vec![key.public_jwk()]);
            let result = keys.verify_jws(&jws(&key, None), &[Algorithm::RS256]);
            assert!(matches!(result, Err(VerifyError::UnsupportedAlgorithm)));
            for alg in ["none", "HS256"] {
                let forged = key.sign(&json!({ "alg": alg }), &json!({}));
                assert!(matches!(keys.verify_jws(&forged, &ALGORITHMS), Err(VerifyError::UnsupportedAlgorithm)));
            }
            let critical = key.sign(&json!({ "alg": "ES256", "crit": ["b64"], "b64": false }), &json!({}));
            assert!(matches!(keys.verify_jws(&critical, &ALGORITHMS), Err(VerifyError::Malformed(_))));
        }

        #[test]
        fn rsa_client_keys_verify_too() {
            let key = DpopKey::rs256();
            let keys = client_set(vec![with_kid(key.public_jwk(), "rsa")]);
            assert!(keys.verify_jws(&jws(&key, Some("rsa")), &ALGORITHMS).is_ok());
            assert!(keys.verify_jws(&jws(&key, None), &ALGORITHMS).is_ok());
        }

        #[test]
        fn a_single_jwk_verifies_its_own_signatures_only() {
            let (key, other) = (DpopKey::es256(), DpopKey::es256());
            let jwk = Jwk::from_value(&key.public_jwk()).unwrap();
            assert!(jwk.verify_jws(&jws(&key, Some("whatever")), &ALGORITHMS).is_ok());
            assert!(matches!(jwk.verify_jws(&jws(&other, None), &ALGORITHMS), Err(VerifyError::BadSignature)));
            assert!(matches!(
                jwk.verify_jws(&jws(&key, None), &[Algorithm::EdDSA]),
                Err(VerifyError::UnsupportedAlgorithm)
            ));
            let ed = DpopKey::ed25519();
            assert!(matches!(jwk.verify_jws(&jws(&ed, None), &ALGORITHMS), Err(VerifyError::UnsupportedAlgorithm)));
        }

        #[test]
        fn the_payload_must_be_a_json_object_to_read_claims() {
            let key = DpopKey::ed25519();
            let keys = client_set(vec![key.public_jwk()]);
            let verified = keys.verify_jws(&key.sign(&json!({ "alg": "EdDSA" }), &json!([1, 2])), &ALGORITHMS).unwrap();
            assert_eq!(verified.payload, b"[1,2]");
            assert!(verified.claims::<Value>().is_err());
        }
    }
}
