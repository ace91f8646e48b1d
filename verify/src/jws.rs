//! JWS Compact Serialization (RFC 7515 §7.1), taken apart strictly and without
//! trusting anything before the signature is checked.

use crate::jwk::{KeySet, VerifyingKey};
use crate::{Algorithm, VerifyError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// Longest token accepted, in bytes. Tessera's tokens are well under 1 KiB; the limit
/// bounds the work an attacker can cause before the signature check.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest encoded JOSE header accepted. Tessera's is about 120 characters; a header
/// of kilobytes can only be an attack on the JSON parser.
pub(crate) const MAX_HEADER_LEN: usize = 1024;

/// Longest encoded JOSE header accepted from other signers than the issuer: client
/// assertions, DPoP proofs. Room for a `jwk` with a 4096-bit RSA modulus (about 1 KiB
/// encoded) or a short `x5c`.
pub(crate) const MAX_OPEN_HEADER_LEN: usize = 4096;

/// Base64url length of a signature by an 8192-bit key, the largest aws-lc accepts.
const MAX_SIGNATURE_LEN: usize = 1366;

/// The three parts of a compact JWS, still encoded, plus the signing input.
pub(crate) struct CompactJws<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, what the signature covers (§5.2).
    pub signing_input: &'a str,
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
}

impl<'a> CompactJws<'a> {
    /// Exactly three non-empty, dot-separated parts.
    pub fn split(token: &'a str) -> Result<Self, VerifyError> {
        Self::split_bounded(token, MAX_TOKEN_LEN, MAX_HEADER_LEN)
    }

    /// [`split`](Self::split) with other bounds on the token and its encoded header.
    pub fn split_bounded(token: &'a str, max_token_len: usize, max_header_len: usize) -> Result<Self, VerifyError> {
        if token.len() > max_token_len {
            return Err(VerifyError::Malformed("the token is too large"));
        }
        let (signing_input, signature) =
            token.rsplit_once('.').ok_or(VerifyError::Malformed("a JWS has three parts"))?;
        let (header, payload) = signing_input.split_once('.').ok_or(VerifyError::Malformed("a JWS has three parts"))?;
        if payload.contains('.') {
            return Err(VerifyError::Malformed("a JWS has three parts"));
        }
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(VerifyError::Malformed("a JWS part is empty"));
        }
        if header.len() > max_header_len {
            return Err(VerifyError::Malformed("the JOSE header is too large"));
        }
        if signature.len() > MAX_SIGNATURE_LEN {
            return Err(VerifyError::Malformed("the signature is too large"));
        }
        Ok(Self { signing_input, header, payload, signature })
    }

    /// Decodes and checks the JOSE header (RFC 7515 §4.1), into `buffer`, which the
    /// returned `kid` may borrow from: no allocation on the hot path.
    pub fn header<'b>(&self, buffer: &'b mut HeaderBuffer) -> Result<JoseHeader<'b>, VerifyError> {
        let len = decode_into(self.header, buffer)?;
        // The header is a JSON object (RFC 7515 §4), all of it UTF-8 (§5.2): see
        // `from_json_object` for what serde would let through otherwise.
        let raw: RawHeader<'b> = crate::from_json_object(&buffer[..len])
            .map_err(|_| VerifyError::Malformed("the JOSE header is not a JSON object in UTF-8"))?;
        // §4.1.11: a recipient that does not understand a listed extension must reject
        // the JWS. This crate understands none.
        if raw.crit.is_some() {
            return Err(VerifyError::Malformed("the JOSE header lists critical extensions"));
        }
        // `none`, HS* and anything unknown have no `Algorithm` value at all.
        let alg = Algorithm::from_name(&raw.alg).ok_or(VerifyError::UnsupportedAlgorithm)?;
        Ok(JoseHeader { alg, typ: raw.typ, kid: raw.kid })
    }

    /// Decodes the signature into `buffer`; returns its length.
    pub fn signature_into(&self, buffer: &mut [u8]) -> Result<usize, VerifyError> {
        decode_into(self.signature, buffer)
    }

    /// Decodes the payload and hands it to `parse`. Only called after the signature
    /// verified. A payload of up to 1 KiB (Tessera's are about 300 bytes) is decoded on
    /// the stack; larger ones on the heap.
    pub fn with_payload<T>(&self, parse: impl FnOnce(&[u8]) -> Result<T, VerifyError>) -> Result<T, VerifyError> {
        const MALFORMED: VerifyError = VerifyError::Malformed("the payload is not base64url");
        let mut small = [0u8; 1024];
        if self.payload.len() <= small.len() / 3 * 4 {
            let len = URL_SAFE_NO_PAD.decode_slice(self.payload, &mut small).map_err(|_| MALFORMED)?;
            parse(&small[..len])
        } else {
            parse(&URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| MALFORMED)?)
        }
    }
}

/// Room for any JOSE header [`CompactJws::split`] lets through, decoded.
pub(crate) const HEADER_BUFFER_LEN: usize = MAX_HEADER_LEN / 4 * 3 + 3;
pub(crate) type HeaderBuffer = [u8; HEADER_BUFFER_LEN];

/// Buffer large enough for any signature [`CompactJws::split`] lets through.
pub(crate) const SIGNATURE_BUFFER_LEN: usize = MAX_SIGNATURE_LEN / 4 * 3 + 3;

/// Strict base64url without padding (RFC 7515 §2): `=`, whitespace and non-canonical
/// trailing bits are all refused, so one token has exactly one encoding.
fn decode_into(encoded: &str, buffer: &mut [u8]) -> Result<usize, VerifyError> {
    URL_SAFE_NO_PAD.decode_slice(encoded, buffer).map_err(|_| VerifyError::Malformed("a part is not base64url"))
}

/// The kind of JWT a caller expects, told apart by the `typ` header (RFC 7515 §4.1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenType {
    /// RFC 9068 §4: `at+jwt`, or the full media type `application/at+jwt`.
    AccessToken,
    /// `JWT` (RFC 7519 §5.1), what Tessera puts in its ID tokens, or `application/jwt`.
    /// Required although OpenID Connect Core leaves `typ` out, so that nothing without
    /// it, and in particular no access token, passes for an ID token.
    IdToken,
    /// A Security Event Token: exactly `secevent+jwt` (SSF 1.0 §4.1.1), so that no access
    /// or ID token passes for a SET, nor the reverse (RFC 8417 §4).
    #[cfg(feature = "revocations")]
    SecurityEvent,
    /// A DPoP proof: `dpop+jwt` (RFC 9449 §4.2), or `application/dpop+jwt`.
    DpopProof,
}

impl TokenType {
    /// Media types compare case-insensitively, and the `application/` prefix may be
    /// left out (RFC 7515 §4.1.9).
    pub(crate) fn accepts(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return false };
        let expected = match self {
            Self::AccessToken => "at+jwt",
            Self::IdToken => "jwt",
            Self::DpopProof => "dpop+jwt",
            // SSF §4.1.1 spells the value out; nothing else is a SET here.
            #[cfg(feature = "revocations")]
            Self::SecurityEvent => return typ == "secevent+jwt",
        };
        let media_type = typ.get(..12).filter(|prefix| prefix.eq_ignore_ascii_case("application/")).map(|_| &typ[12..]);
        media_type.unwrap_or(typ).eq_ignore_ascii_case(expected)
    }
}

/// A token whose shape and header passed the checks; its signature is still unchecked,
/// and nothing in its payload has been looked at.
pub(crate) struct Unverified<'t, 'b> {
    jws: CompactJws<'t>,
    alg: Algorithm,
    kid: Cow<'b, str>,
}

/// The checks before the key lookup, in order: size and shape (RFC 7515 §7.1), the JOSE
/// header, `alg` against `algorithms`, `typ`, and the presence of `kid`.
pub(crate) fn open<'t, 'b>(
    token: &'t str,
    buffer: &'b mut HeaderBuffer,
    algorithms: &[Algorithm],
    expected: TokenType,
) -> Result<Unverified<'t, 'b>, VerifyError> {
    let jws = CompactJws::split(token)?;
    let header = jws.header(buffer)?;
    if !algorithms.contains(&header.alg) {
        return Err(VerifyError::UnsupportedAlgorithm);
    }
    if !expected.accepts(header.typ.as_deref()) {
        return Err(VerifyError::WrongType);
    }
    // Tessera always names the key. Trying every key instead would let one forged
    // token cost a signature check per published key.
    let kid = header.kid.ok_or(VerifyError::Malformed("the JOSE header has no kid"))?;
    Ok(Unverified { jws, alg: header.alg, kid })
}

impl Unverified<'_, '_> {
    /// The `kid` the token names, for the key cache to look up.
    #[cfg(feature = "fetch")]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Verifies the signature with the key of `keys` that `kid` names, then hands the
    /// decoded payload to `parse`.
    pub fn verify<T>(
        &self,
        keys: &KeySet,
        parse: impl FnOnce(&[u8]) -> Result<T, VerifyError>,
    ) -> Result<T, VerifyError> {
        let key = keys.get(&self.kid).ok_or(VerifyError::UnknownKey)?;
        let mut signature = [0u8; SIGNATURE_BUFFER_LEN];
        let signature_len = self.jws.signature_into(&mut signature)?;
        key.verify(self.alg, self.jws.signing_input.as_bytes(), &signature[..signature_len])?;
        self.jws.with_payload(parse)
    }
}

/// The JOSE header of a JWS that [`KeySet::verify_jws`] or [`Jwk::verify_jws`](crate::Jwk::verify_jws)
/// verified (RFC 7515 §4.1): the members this crate reads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwsHeader {
    /// `alg`: one of the algorithms the caller allowed.
    pub alg: Algorithm,
    /// `typ`, as sent. Explicit typing (RFC 8725 §3.11) is the caller's to check.
    pub typ: Option<String>,
    /// `kid`, as sent.
    pub kid: Option<String>,
}

/// A JWS whose signature verified: its header and its payload, decoded.
///
/// Nothing in the payload has been checked: for a client assertion (RFC 7523 §3) the
/// caller checks `iss`, `sub`, `aud`, `exp` and the single use of `jti` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedJws {
    /// The JOSE header.
    pub header: JwsHeader,
    /// The payload, decoded from base64url.
    pub payload: Vec<u8>,
}

impl VerifiedJws {
    /// The payload as a JWT Claims Set (RFC 7519 §4) parsed into `T`: it must be a JSON
    /// object in UTF-8; with a derived `Deserialize`, a claim given twice is refused.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, VerifyError> {
        crate::from_json_object(&self.payload)
            .map_err(|_| VerifyError::Malformed("the payload is not the expected JSON object"))
    }
}

/// A JWS from a signer other than the issuer, taken apart and its header checked, its
/// signature not yet.
pub(crate) struct Opened<'t> {
    jws: CompactJws<'t>,
    pub header: JwsHeader,
    /// The `jwk` header member (RFC 7515 §4.1.3), for DPoP proofs only: elsewhere a key
    /// a JWS carries for itself proves nothing, and nothing else reads it.
    pub jwk: Option<Value>,
}

/// The checks before the key lookup for a JWS from a signer other than the issuer: size
/// and shape (RFC 7515 §7.1, at most `max_token_len` bytes with a header of at most 4 KiB),
/// the JOSE header (no `crit`, no member twice), and `alg` in `algorithms`.
pub(crate) fn open_owned<'t>(
    token: &'t str,
    max_token_len: usize,
    algorithms: &[Algorithm],
) -> Result<Opened<'t>, VerifyError> {
    let jws = CompactJws::split_bounded(token, max_token_len, MAX_OPEN_HEADER_LEN)?;
    let decoded = URL_SAFE_NO_PAD.decode(jws.header).map_err(|_| VerifyError::Malformed("a part is not base64url"))?;
    let raw: OwnedHeader = crate::from_json_object(&decoded)
        .map_err(|_| VerifyError::Malformed("the JOSE header is not a JSON object in UTF-8"))?;
    // §4.1.11, as for the issuer's tokens.
    if raw.crit.is_some() {
        return Err(VerifyError::Malformed("the JOSE header lists critical extensions"));
    }
    let alg = Algorithm::from_name(&raw.alg).ok_or(VerifyError::UnsupportedAlgorithm)?;
    if !algorithms.contains(&alg) {
        return Err(VerifyError::UnsupportedAlgorithm);
    }
    Ok(Opened { jws, header: JwsHeader { alg, typ: raw.typ, kid: raw.kid }, jwk: raw.jwk })
}

impl Opened<'_> {
    /// Tries `keys` in order; the first whose signature verifies wins. No key at all is
    /// [`VerifyError::UnknownKey`]; keys that all fail, [`VerifyError::BadSignature`].
    pub fn verify<'k>(self, keys: impl IntoIterator<Item = &'k VerifyingKey>) -> Result<VerifiedJws, VerifyError> {
        let mut signature = [0u8; SIGNATURE_BUFFER_LEN];
        let signature_len = self.jws.signature_into(&mut signature)?;
        let mut result = Err(VerifyError::UnknownKey);
        for key in keys {
            result = key.verify(self.header.alg, self.jws.signing_input.as_bytes(), &signature[..signature_len]);
            if result.is_ok() {
                break;
            }
        }
        result?;
        let payload = self.jws.with_payload(|payload| Ok(payload.to_vec()))?;
        Ok(VerifiedJws { header: self.header, payload })
    }
}

/// The header members read from other signers' JWSs; unknown members are ignored, a
/// member given twice fails parsing.
#[derive(Deserialize)]
struct OwnedHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    jwk: Option<Value>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The header members this crate acts on. Unknown members are ignored, as RFC 7515 §4
/// requires; `jku`, `jwk`, `x5u` and `x5c` in particular are never used to find a key:
/// keys come only from the issuer's JWKS. A member given twice fails parsing.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// The checked header. `typ` and `kid` are borrowed from the decoded header unless they
/// had escapes.
pub(crate) struct JoseHeader<'b> {
    pub alg: Algorithm,
    pub typ: Option<Cow<'b, str>>,
    pub kid: Option<Cow<'b, str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of a header the tests look at, owned.
    struct Header {
        alg: Algorithm,
        is_access_token: bool,
        is_id_token: bool,
        kid: Option<String>,
    }

    fn header_of(json: &str) -> Result<Header, VerifyError> {
        let token = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(json));
        let mut buffer = [0u8; HEADER_BUFFER_LEN];
        let header = CompactJws::split(&token)?.header(&mut buffer)?;
        Ok(Header {
            alg: header.alg,
            is_access_token: TokenType::AccessToken.accepts(header.typ.as_deref()),
            is_id_token: TokenType::IdToken.accepts(header.typ.as_deref()),
            kid: header.kid.map(Cow::into_owned),
        })
    }

    #[test]
    fn exactly_three_non_empty_parts() {
        for bad in ["", "a", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "..", "a.b.c."] {
            assert!(matches!(CompactJws::split(bad), Err(VerifyError::Malformed(_))), "{bad:?}");
        }
        let jws = CompactJws::split("a.b.c").unwrap();
        assert_eq!((jws.signing_input, jws.header, jws.payload, jws.signature), ("a.b", "a", "b", "c"));
    }

    #[test]
    fn oversized_tokens_and_headers_are_refused_before_decoding() {
        let huge_token = format!("a.{}.c", "b".repeat(MAX_TOKEN_LEN));
        assert!(matches!(CompactJws::split(&huge_token), Err(VerifyError::Malformed("the token is too large"))));
        let huge_header = format!("{}.b.c", "a".repeat(MAX_HEADER_LEN + 1));
        assert!(matches!(CompactJws::split(&huge_header), Err(VerifyError::Malformed(_))));
    }

    #[test]
    fn typ_is_compared_case_insensitively() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
            let header = header_of(&format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"k"}}"#)).unwrap();
            assert!(header.is_access_token, "{typ}");
        }
        for typ in [r#""JWT""#, r#""at+jwt ""#, r#""application/jwt""#, "null", "1"] {
            let header = header_of(&format!(r#"{{"alg":"RS256","typ":{typ},"kid":"k"}}"#));
            assert!(header.map_or(true, |h| !h.is_access_token), "{typ}");
        }
        assert!(!header_of(r#"{"alg":"RS256","kid":"k"}"#).unwrap().is_access_token);
    }

    #[test]
    fn id_tokens_need_typ_jwt_and_the_two_types_never_mix() {
        for typ in ["JWT", "jwt", "application/jwt", "APPLICATION/JWT"] {
            let header = header_of(&format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"k"}}"#)).unwrap();
            assert!(header.is_id_token && !header.is_access_token, "{typ}");
        }
        for typ in ["at+jwt", "application/at+jwt", "JWS", "application/", "applicationjwt", "JWT ", "é"] {
            let header = header_of(&format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"k"}}"#)).unwrap();
            assert!(!header.is_id_token, "{typ}");
        }
        assert!(!header_of(r#"{"alg":"RS256","kid":"k"}"#).unwrap().is_id_token, "typ is required");
    }

    #[cfg(feature = "revocations")]
    #[test]
    fn security_events_need_typ_secevent_jwt_exactly() {
        let accepts = |typ: Option<&str>| TokenType::SecurityEvent.accepts(typ);
        assert!(accepts(Some("secevent+jwt")));
        for typ in ["SECEVENT+JWT", "application/secevent+jwt", "at+jwt", "JWT", "secevent+jwt ", ""] {
            assert!(!accepts(Some(typ)), "{typ:?}");
        }
        assert!(!accepts(None));
        assert!(!TokenType::AccessToken.accepts(Some("secevent+jwt")));
        assert!(!TokenType::IdToken.accepts(Some("secevent+jwt")));
    }

    #[test]
    fn none_and_hmac_are_refused_whatever_their_spelling() {
        for alg in ["none", "None", "HS256", "HS384", "HS512", "hs256", "ES384", "es256", "RS256\u{0000}"] {
            let json = serde_json::json!({ "alg": alg, "typ": "at+jwt", "kid": "k" }).to_string();
            assert!(matches!(header_of(&json), Err(VerifyError::UnsupportedAlgorithm)), "{alg:?}");
        }
    }

    #[test]
    fn critical_extensions_and_duplicate_members_are_refused() {
        assert!(header_of(r#"{"alg":"RS256","typ":"at+jwt","kid":"k","crit":["exp"]}"#).is_err());
        assert!(header_of(r#"{"alg":"HS256","alg":"RS256","typ":"at+jwt","kid":"k"}"#).is_err());
    }

    #[test]
    fn a_header_must_be_a_json_object() {
        assert!(header_of(r#" {"alg":"RS256","typ":"at+jwt","kid":"k"}"#).is_ok());
        for not_an_object in [r#"["RS256","at+jwt","k",null]"#, r#" ["RS256","at+jwt","k",null]"#, "", " ", "1"] {
            let result = header_of(not_an_object);
            assert!(matches!(result, Err(VerifyError::Malformed(_))), "{not_an_object:?}");
        }
    }

    #[test]
    fn a_header_that_is_a_json_array_is_refused() {
        // RFC 7515 §4: the JOSE Header is a JSON object; an array of its members in order is not.
        assert!(matches!(header_of(r#"["RS256","at+jwt","k"]"#), Err(VerifyError::Malformed(_))));
        assert!(matches!(header_of(r#" ["RS256"]"#), Err(VerifyError::Malformed(_))));
    }

    /// Found by the `verify_jws` fuzz target (`fuzz/corpus/verify_jws/crash-non-utf8-header-*`):
    /// serde_json does not check the UTF-8 of a member it skips.
    #[test]
    fn a_header_that_is_not_utf8_is_refused() {
        // RFC 7515 §5.2: the decoded header must be UTF-8, all of it.
        let header = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k\",\"x\":\"\xff\"}");
        let mut buffer = [0u8; HEADER_BUFFER_LEN];
        let result = CompactJws::split(&format!("{header}.e30.c2ln")).unwrap().header(&mut buffer).map(|_| ());
        assert!(matches!(result, Err(VerifyError::Malformed(_))), "{result:?}");
    }

    #[test]
    fn escaped_header_values_are_decoded() {
        let header = header_of(r#"{"alg":"RS\u0032\u00356","typ":"at+jwt","kid":"a\/b"}"#).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("a/b"));
    }

    #[test]
    fn padded_or_non_canonical_base64_is_refused() {
        // "e30" is `{}`; "e31" has non-zero trailing bits and decodes to the same bytes.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let mut buffer = [0u8; HEADER_BUFFER_LEN];
        assert!(CompactJws::split(&format!("{header}=.e30.c2ln")).unwrap().header(&mut buffer).is_err());
        let mut buffer = [0u8; 8];
        assert!(decode_into("e31", &mut buffer).is_err());
        assert!(decode_into("e3 0", &mut buffer).is_err());
        assert_eq!(decode_into("e30", &mut buffer).unwrap(), 2);
    }
}
