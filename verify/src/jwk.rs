//! The issuer's JWK Set (RFC 7517 §5), turned once into parsed aws-lc public keys.
//!
//! Parsing a key costs about as much as verifying a signature with it (`jsonwebtoken`
//! does it on every `decode`), so each key is parsed when the set is read and kept.

use crate::{Algorithm, JwksError, VerifyError};
use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The public keys of an issuer, parsed once, by `kid`: what tokens are verified with.
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
/// understood, and logged at `debug`: other key types, keys for encryption (`use` or
/// `key_ops`), keys published for an algorithm that is not allowed, keys without a
/// `kid` (tokens must name their key), and RSA keys below 2048 bits. A `kid` published
/// twice is dropped with a warning, since a token naming it would be ambiguous.
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl KeySet {
    /// Parses a JWK Set, keeping the keys usable with RS256, what Tessera signs with.
    pub fn from_jwks(jwks: &[u8]) -> Result<Self, JwksError> {
        Self::from_jwks_for(jwks, &[Algorithm::RS256])
    }

    /// Parses a JWK Set, keeping the keys usable with one of `algorithms`. A key that
    /// names its `alg` is only ever used with it (RFC 7517 §4.4); one that does not is
    /// parsed for each of `algorithms`.
    pub fn from_jwks_for(jwks: &[u8], algorithms: &[Algorithm]) -> Result<Self, JwksError> {
        let set: JwkSet = crate::from_json_object(jwks).map_err(JwksError)?;
        let mut keys = HashMap::with_capacity(set.keys.len());
        let mut duplicates = HashSet::new();
        for jwk in set.keys {
            match parse_jwk(jwk, algorithms) {
                Ok((kid, key)) => {
                    if keys.insert(kid.clone(), key).is_some() {
                        duplicates.insert(kid);
                    }
                }
                Err(reason) => tracing::debug!(reason, "skipping a JWK"),
            }
        }
        for kid in duplicates {
            tracing::warn!(kid, "the JWK Set lists this kid more than once; its tokens will not verify");
            keys.remove(&kid);
        }
        Ok(Self { keys })
    }

    /// The key published as `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Whether a usable key is published as `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// How many usable keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key of the document can be used: every token will be refused.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.key_ids()).finish()
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

/// One published key, parsed for each allowed algorithm it may be used with.
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
}

/// RFC 7517 §4 members used here, with RFC 7518 §6.3.1 `n` and `e`.
#[derive(Deserialize)]
struct RsaJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

fn parse_jwk(jwk: Value, allowed: &[Algorithm]) -> Result<(String, VerifyingKey), &'static str> {
    // RFC 7517 §4: a JWK is a JSON object (a derived `Deserialize` would also take an array).
    if !jwk.is_object() {
        return Err("not a JWK");
    }
    let jwk: RsaJwk = serde_json::from_value(jwk).map_err(|_| "not a JWK")?;
    if jwk.kty != "RSA" {
        return Err("not an RSA key");
    }
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signature key (`use`)");
    }
    if jwk.key_ops.as_ref().is_some_and(|ops| !ops.iter().any(|op| op == "verify")) {
        return Err("not a verification key (`key_ops`)");
    }
    // Tokens must name their key, so a key without `kid` could never be selected.
    let kid = jwk.kid.ok_or("no kid")?;
    let algorithms: Vec<Algorithm> = match jwk.alg.as_deref() {
        Some(name) => {
            let alg = Algorithm::from_name(name).ok_or("published for an algorithm this crate does not verify")?;
            if !allowed.contains(&alg) {
                return Err("published for an algorithm that is not allowed");
            }
            vec![alg]
        }
        None => allowed.to_vec(),
    };
    let n = decode_unsigned(jwk.n.as_deref().ok_or("no modulus")?)?;
    let e = decode_unsigned(jwk.e.as_deref().ok_or("no exponent")?)?;
    let components = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() };
    let parsed = algorithms
        .into_iter()
        .map(|alg| Ok((alg, components.to_parsed_public_key(alg.rsa_parameters()).map_err(|_| "invalid RSA key")?)))
        .collect::<Result<Vec<_>, &'static str>>()?;
    Ok((kid, VerifyingKey { parsed }))
}

/// A Base64urlUInt (RFC 7518 §2) without leading zero octets, which aws-lc refuses.
fn decode_unsigned(encoded: &str) -> Result<Vec<u8>, &'static str> {
    let mut bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| "a key member is not base64url")?;
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    if bytes.is_empty() {
        return Err("a key member is zero");
    }
    Ok(bytes)
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
}
