//! DPoP proofs (RFC 9449 §4), checked as a pure function: no I/O, no clock, no state.
//!
//! [`ProofPolicy::verify`] runs the checks of RFC 9449 §4.3 that need nothing but the
//! proof and the request: shape and size, `typ` `dpop+jwt`, `alg` in the allow-list
//! (never `none` nor HMAC), a public `jwk` the signature verifies with, the claims `jti`,
//! `htm`, `htu` and `iat`, then `htm` and `htu` against the request, the server's nonce
//! if it asks for one (§8, §9), `iat` within a window, and `ath` against the access token
//! (§4.2). It returns what the caller still has to check: the `jti`, against the proofs
//! seen within the window (§11.1: a database at the authorization server, a bounded
//! cache at a resource server), and the key thumbprint, against `cnf.jkt` (§6.1).
//!
//! That a request carries exactly one `DPoP` header (§4.3 check 1) is the caller's to
//! check; [`single_proof`] does it over the header values.
//!
//! ```
//! use std::time::SystemTime;
//! use tessera_verify::dpop::{DpopError, ProofPolicy, ProofRequest};
//! use url::Url;
//!
//! fn check(proof: &str, access_token: &str) -> Result<String, DpopError> {
//!     let url = Url::parse("https://api.example.com/invoices?page=2").unwrap();
//!     let request = ProofRequest::new("GET", &url, SystemTime::now()).access_token(access_token);
//!     let proof = ProofPolicy::new().verify(proof, &request)?;
//!     // Then: proof.jti not seen before, proof.jkt equal to the token's cnf.jkt.
//!     Ok(proof.jkt)
//! }
//! ```

use crate::jws::{self, TokenType};
use crate::{Algorithm, Jwk, JwkError, VerifyError};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Longest proof accepted, in bytes, checked before anything is decoded. A proof with a
/// 4096-bit RSA key is about 2 KiB.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted, in characters: a random identifier needs far fewer (§4.2
/// suggests 96 bits), and the caller stores it for the replay check.
pub const MAX_JTI_LEN: usize = 256;

/// The algorithms accepted unless configured otherwise, in the order advertised in
/// `dpop_signing_alg_values_supported` and in the `algs` of `WWW-Authenticate` (§5.1, §7.1).
pub const DEFAULT_ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// Why a DPoP proof was refused.
///
/// Every variant but [`UseNonce`](Self::UseNonce) is answered with the error code
/// `invalid_dpop_proof`; see [`error_code`](Self::error_code). No variant carries text
/// from the proof, so the messages are safe to log and to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// Not one well-formed JWS of at most [`MAX_PROOF_LEN`] bytes (§4.3 checks 1 and 2):
    /// several `DPoP` headers, bad base64url or JSON, a claim of the wrong type, a `jti`
    /// that is empty or longer than [`MAX_JTI_LEN`].
    #[error("malformed DPoP proof: {0}")]
    Malformed(&'static str),
    /// `typ` is not `dpop+jwt` (§4.3 check 4).
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not one of the allowed asymmetric algorithms (§4.3 check 5): `none`, the
    /// HMAC algorithms and anything unknown are never allowed.
    #[error("the DPoP proof's signature algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The `jwk` header holds a private key (§4.3 check 7).
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    /// The `jwk` header is missing, malformed, of an unsupported type or curve, or does
    /// not fit `alg`.
    #[error("the DPoP proof's jwk is not a usable public key: {0}")]
    InvalidKey(&'static str),
    /// The signature does not verify with the `jwk` (§4.3 check 6).
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// A required claim is absent (§4.3 check 3): `jti`, `htm`, `htu`, `iat`, or `ath`
    /// when an access token is presented.
    #[error("the DPoP proof lacks the claim `{0}`")]
    MissingClaim(&'static str),
    /// `htm` is not the request's method (§4.3 check 8).
    #[error("the DPoP proof is for another HTTP method")]
    WrongMethod,
    /// `htu` is not the request's URI, query and fragment aside (§4.3 check 9).
    #[error("the DPoP proof is for another URI")]
    WrongUri,
    /// `iat` is older than the window allows (§4.3 check 11).
    #[error("the DPoP proof is too old")]
    Stale,
    /// `iat` is further in the future than the window allows (§4.3 check 11).
    #[error("the DPoP proof is issued in the future")]
    IssuedInFuture,
    /// `ath` is not the hash of the presented access token (§4.3 check 12).
    #[error("the DPoP proof is not bound to the presented access token (ath)")]
    WrongTokenHash,
    /// The server requires a nonce, and the proof has none or another one (§8, §4.3
    /// check 10): answered `use_dpop_nonce` with a fresh `DPoP-Nonce` header.
    #[error("the DPoP proof lacks the server's nonce")]
    UseNonce,
    /// The request has no `DPoP` header where a proof is required. Not returned by
    /// [`ProofPolicy::verify`], which is given a proof.
    #[error("the request has no DPoP proof")]
    Missing,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`, §4.3 check 12, §6.1).
    /// Not returned by [`ProofPolicy::verify`], which does not see the token's claims.
    #[error("the DPoP proof is signed by another key than the token is bound to")]
    WrongKey,
    /// The proof's `jti` was seen before within the window (§11.1). Not returned by
    /// [`ProofPolicy::verify`], which keeps no state.
    #[error("the DPoP proof was used before")]
    Replayed,
}

impl DpopError {
    /// The error code: `use_dpop_nonce` (§8) for [`UseNonce`](Self::UseNonce),
    /// `invalid_dpop_proof` (§5, §7.1) for everything else.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::UseNonce => "use_dpop_nonce",
            _ => "invalid_dpop_proof",
        }
    }

    /// A short text for clients (`error_description`): printable ASCII without `"` or
    /// `\`, so it fits a `WWW-Authenticate` attribute as well as JSON.
    pub fn error_description(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "the DPoP proof is malformed",
            Self::WrongType => "the DPoP proof typ must be dpop+jwt",
            Self::UnsupportedAlgorithm => "the DPoP proof is signed with an algorithm that is not accepted",
            Self::PrivateKey => "the DPoP proof jwk must be a public key",
            Self::InvalidKey(_) => "the DPoP proof jwk is not a usable public key",
            Self::BadSignature => "the DPoP proof signature is invalid",
            Self::MissingClaim(_) => "the DPoP proof lacks a required claim",
            Self::WrongMethod => "the DPoP proof htm does not match the request",
            Self::WrongUri => "the DPoP proof htu does not match the request",
            Self::Stale => "the DPoP proof is too old",
            Self::IssuedInFuture => "the DPoP proof is issued in the future",
            Self::WrongTokenHash => "the DPoP proof ath does not match the access token",
            Self::UseNonce => "a DPoP nonce from the server is required",
            Self::Missing => "a DPoP proof is required",
            Self::WrongKey => "the DPoP proof key is not the one the access token is bound to",
            Self::Replayed => "the DPoP proof was used before",
        }
    }

    fn from_jws(error: VerifyError) -> Self {
        match error {
            VerifyError::UnsupportedAlgorithm => Self::UnsupportedAlgorithm,
            VerifyError::BadSignature => Self::BadSignature,
            VerifyError::Malformed(reason) => Self::Malformed(reason),
            _ => Self::Malformed("not a JWS"),
        }
    }
}

/// What a DPoP proof must satisfy besides the request: the algorithms and the `iat`
/// window. Built once.
#[derive(Clone, Debug)]
pub struct ProofPolicy {
    algorithms: Vec<Algorithm>,
    max_age: Duration,
    max_ahead: Duration,
}

impl Default for ProofPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl ProofPolicy {
    /// ES256, RS256 and EdDSA; proofs issued at most 60 seconds ago and at most
    /// 5 seconds ahead (clock skew).
    pub fn new() -> Self {
        Self {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: Duration::from_secs(60),
            max_ahead: Duration::from_secs(5),
        }
    }

    /// The accepted algorithms. `none` and HMAC are not [`Algorithm`]s, so they are
    /// refused whatever the list holds. An empty list accepts no proof.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms.clear();
        for alg in algorithms {
            if !self.algorithms.contains(&alg) {
                self.algorithms.push(alg);
            }
        }
        self
    }

    /// The `iat` window (§4.3 check 11, §11.1): a proof issued more than `max_age` ago or
    /// more than `max_ahead` in the future is refused. The replay cache must remember a
    /// `jti` for at least `max_age + max_ahead`.
    pub fn iat_window(mut self, max_age: Duration, max_ahead: Duration) -> Self {
        self.max_age = max_age;
        self.max_ahead = max_ahead;
        self
    }

    /// The accepted algorithms, in order: for `dpop_signing_alg_values_supported` and
    /// the `algs` attribute of `WWW-Authenticate: DPoP`.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// How long a proof stays acceptable: `max_age + max_ahead`, what a replay cache
    /// must cover.
    pub fn replay_window(&self) -> Duration {
        self.max_age.saturating_add(self.max_ahead)
    }

    /// Checks `proof` (the `DPoP` header's value) for `request`, per RFC 9449 §4.3 checks
    /// 2 to 12, in that order; the replay of `jti` and `cnf.jkt` are left to the caller.
    pub fn verify(&self, proof: &str, request: &ProofRequest<'_>) -> Result<Proof, DpopError> {
        // Bounded before anything is decoded.
        if proof.len() > MAX_PROOF_LEN {
            return Err(DpopError::Malformed("the proof is too large"));
        }
        let opened = jws::open_owned(proof, MAX_PROOF_LEN, &self.algorithms).map_err(DpopError::from_jws)?;
        // Check 4: explicit typing keeps an access or ID token from passing for a proof.
        if !TokenType::DpopProof.accepts(opened.header.typ.as_deref()) {
            return Err(DpopError::WrongType);
        }
        // Check 7 (in `from_value`), then the key must fit `alg`.
        let jwk_value = opened.jwk.as_ref().ok_or(DpopError::InvalidKey("no jwk header"))?;
        let jwk = Jwk::from_value(jwk_value).map_err(|error| match error {
            JwkError::PrivateKey => DpopError::PrivateKey,
            JwkError::Unsupported(reason) | JwkError::Invalid(reason) => DpopError::InvalidKey(reason),
        })?;
        if !jwk.supports(opened.header.alg) {
            return Err(DpopError::InvalidKey("the jwk does not fit alg"));
        }
        let key = jwk.verifying_key(&[opened.header.alg]).map_err(DpopError::InvalidKey)?;
        // Check 6; the payload is read only once it verified.
        let verified = opened.verify([&key]).map_err(DpopError::from_jws)?;
        let claims: ProofClaims = crate::from_json_object(&verified.payload)
            .map_err(|_| DpopError::Malformed("the claims are not a JSON object of the expected types"))?;

        // Check 3.
        let jti = claims.jti.ok_or(DpopError::MissingClaim("jti"))?;
        let htm = claims.htm.ok_or(DpopError::MissingClaim("htm"))?;
        let htu = claims.htu.ok_or(DpopError::MissingClaim("htu"))?;
        let iat = claims.iat.ok_or(DpopError::MissingClaim("iat"))?;
        if jti.is_empty() || jti.chars().count() > MAX_JTI_LEN {
            return Err(DpopError::Malformed("jti is empty or too long"));
        }
        let iat = numeric_date(&iat).ok_or(DpopError::Malformed("iat is not a NumericDate"))?;
        // Check 8: methods are case-sensitive (RFC 9110 §9.1).
        if htm != request.method {
            return Err(DpopError::WrongMethod);
        }
        // Check 9.
        if !same_target(&htu, request.url) {
            return Err(DpopError::WrongUri);
        }
        // Check 10.
        let is_nonce_valid = match (&request.nonce, claims.nonce.as_deref()) {
            (NonceCheck::Ignore, _) => true,
            (_, None) => false,
            (NonceCheck::Exactly(expected), Some(nonce)) => {
                verify_slices_are_equal(expected.as_bytes(), nonce.as_bytes()).is_ok()
            }
            (NonceCheck::ValidIf(is_valid), Some(nonce)) => is_valid(nonce),
        };
        if !is_nonce_valid {
            return Err(DpopError::UseNonce);
        }
        // Check 11.
        let now = unix_seconds(request.now);
        if iat < now.saturating_sub(seconds(self.max_age)) {
            return Err(DpopError::Stale);
        }
        if iat > now.saturating_add(seconds(self.max_ahead)) {
            return Err(DpopError::IssuedInFuture);
        }
        // Check 12.
        if let Some(token) = request.access_token {
            let ath = claims.ath.ok_or(DpopError::MissingClaim("ath"))?;
            if verify_slices_are_equal(ath.as_bytes(), access_token_hash(token).as_bytes()).is_err() {
                return Err(DpopError::WrongTokenHash);
            }
        }
        Ok(Proof { jkt: jwk.thumbprint(), jwk, jti, iat, nonce: claims.nonce })
    }
}

/// The request a proof must be for.
pub struct ProofRequest<'a> {
    method: &'a str,
    url: &'a Url,
    now: SystemTime,
    nonce: NonceCheck<'a>,
    access_token: Option<&'a str>,
}

enum NonceCheck<'a> {
    Ignore,
    Exactly(&'a str),
    ValidIf(&'a dyn Fn(&str) -> bool),
}

impl<'a> ProofRequest<'a> {
    /// A request with `method` (`htm`) to `url` (`htu`; its query and fragment are
    /// ignored), received at `now`. Behind a reverse proxy, `url` must be the URL the
    /// client used, built from the service's public base URL rather than the `Host` header.
    pub fn new(method: &'a str, url: &'a Url, now: SystemTime) -> Self {
        Self { method, url, now, nonce: NonceCheck::Ignore, access_token: None }
    }

    /// The access token the request presents (`Authorization: DPoP …`): the proof must
    /// carry its hash as `ath` (§4.2, §7.1).
    pub fn access_token(mut self, token: &'a str) -> Self {
        self.access_token = Some(token);
        self
    }

    /// The nonce the server gave (§8, §9): a proof without it, or with another, is
    /// refused with [`DpopError::UseNonce`]. Without this call nonces are not checked.
    pub fn nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = NonceCheck::Exactly(nonce);
        self
    }

    /// Like [`nonce`](Self::nonce), for a server that accepts several nonces at a time
    /// (the current one and the previous one, for instance): `is_valid` decides.
    pub fn nonce_valid_if(mut self, is_valid: &'a dyn Fn(&str) -> bool) -> Self {
        self.nonce = NonceCheck::ValidIf(is_valid);
        self
    }
}

impl fmt::Debug for ProofRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("now", &self.now)
            .field("has_access_token", &self.access_token.is_some())
            .finish_non_exhaustive()
    }
}

/// A proof that passed every check of [`ProofPolicy::verify`]: what the caller still
/// checks, and what it binds tokens to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key: `cnf.jkt` (§6.1).
    pub jkt: String,
    /// The proof's key.
    pub jwk: Jwk,
    /// `jti`, at most [`MAX_JTI_LEN`] characters: the caller refuses one it has seen
    /// within [`ProofPolicy::replay_window`] (§11.1).
    pub jti: String,
    /// `iat`, in seconds since the epoch (fractions dropped).
    pub iat: i64,
    /// `nonce`, if the proof has one.
    pub nonce: Option<String>,
}

/// `ath` (§4.2): the base64url SHA-256 of the ASCII access token.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes()))
}

/// The one `DPoP` header value of a request (§4.3 check 1), given all its values: `None`
/// when there is none, an error when there are several or it is not visible ASCII.
///
/// ```
/// # use tessera_verify::dpop::single_proof;
/// assert_eq!(single_proof([b"eyJ.eyJ.sig".as_slice()]).unwrap(), Some("eyJ.eyJ.sig"));
/// assert!(single_proof([b"a.b.c".as_slice(), b"d.e.f".as_slice()]).is_err());
/// ```
pub fn single_proof<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<&'a str>, DpopError> {
    let mut values = values.into_iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(DpopError::Malformed("more than one DPoP header"));
    }
    if value.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed("the proof is too large"));
    }
    let value = std::str::from_utf8(value).map_err(|_| DpopError::Malformed("the DPoP header is not ASCII"))?;
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DpopError::Malformed("the DPoP header is not one JWS"));
    }
    Ok(Some(value))
}

/// §4.3 check 9: `htu` names the request's URI, without query and fragment, after the
/// syntax- and scheme-based normalisation of RFC 3986 §6.2.2-3 that the `url` crate
/// does (scheme and host case, default port, dot segments, percent-encoding).
fn same_target(htu: &str, request: &Url) -> bool {
    let Ok(mut htu) = Url::parse(htu) else { return false };
    if !matches!(htu.scheme(), "https" | "http") {
        return false;
    }
    let mut request = request.clone();
    for url in [&mut htu, &mut request] {
        url.set_query(None);
        url.set_fragment(None);
    }
    htu == request
}

/// A NumericDate (RFC 7519 §2), fractions dropped.
fn numeric_date(value: &serde_json::Number) -> Option<i64> {
    if let Some(seconds) = value.as_i64() {
        return Some(seconds);
    }
    // Finite and in range: a float that far out is garbage, not a date.
    value.as_f64().filter(|s| s.is_finite() && s.abs() < 1e15).map(|s| s.floor() as i64)
}

fn unix_seconds(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The claims of a proof (§4.2). A claim given twice fails parsing.
#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::DpopKey;
    use serde_json::{json, Value};
    use std::sync::LazyLock;

    static ES256: LazyLock<DpopKey> = LazyLock::new(DpopKey::es256);
    static EDDSA: LazyLock<DpopKey> = LazyLock::new(DpopKey::ed25519);
    static RS256: LazyLock<DpopKey> = LazyLock::new(DpopKey::rs256);

    const NOW: i64 = 1_800_000_000;
    const HTU: &str = "https://api.example.com/invoices";
    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    fn keys() -> [&'static DpopKey; 3] {
        [&ES256, &EDDSA, &RS256]
    }

    fn at(seconds: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds as u64)
    }

    fn claims() -> Value {
        json!({ "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": HTU, "iat": NOW, "ath": access_token_hash(TOKEN) })
    }

    /// `claims()` with `changes` applied; a `null` removes the claim.
    fn claims_with(changes: Value) -> Value {
        let mut claims = claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn check(proof: &str) -> Result<Proof, DpopError> {
        let url = Url::parse(HTU).unwrap();
        ProofPolicy::new().verify(proof, &ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN))
    }

    fn check_claims(key: &DpopKey, claims: &Value) -> Result<Proof, DpopError> {
        check(&key.sign(&key.proof_header(), claims))
    }

    fn check_header(key: &DpopKey, header: &Value) -> Result<Proof, DpopError> {
        check(&key.sign(header, &claims()))
    }

    #[test]
    fn good_proofs_of_each_algorithm_are_accepted() {
        for key in keys() {
            let proof = check_claims(key, &claims()).unwrap_or_else(|e| panic!("{:?}: {e}", key.algorithm()));
            assert_eq!(proof.jkt, key.thumbprint());
            assert_eq!(proof.jti, "e1j3V_bKic8-LAEB");
            assert_eq!(proof.iat, NOW);
            assert_eq!(proof.nonce, None);
        }
    }

    #[test]
    fn typ_must_be_dpop_jwt() {
        for key in keys() {
            for typ in [json!("JWT"), json!("at+jwt"), json!("dpop"), Value::Null] {
                let mut header = key.proof_header();
                header["typ"] = typ.clone();
                assert_eq!(check_header(key, &header), Err(DpopError::WrongType), "{typ}");
            }
            let mut header = key.proof_header();
            header.as_object_mut().unwrap().remove("typ");
            assert_eq!(check_header(key, &header), Err(DpopError::WrongType));
            header["typ"] = "application/dpop+jwt".into();
            assert!(check_header(key, &header).is_ok());
        }
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let key = &*ES256;
        for alg in ["none", "HS256", "HS384", "HS512", "ES384", "PS256", "es256"] {
            let mut header = key.proof_header();
            header["alg"] = alg.into();
            assert_eq!(check_header(key, &header), Err(DpopError::UnsupportedAlgorithm), "{alg}");
        }
        // An unsigned proof, as `none` would have it.
        let mut header = key.proof_header();
        header["alg"] = "none".into();
        let signed = key.sign(&header, &claims());
        let unsigned = format!("{}.", signed.rsplit_once('.').unwrap().0);
        assert!(check(&unsigned).is_err());
    }

    #[test]
    fn only_the_configured_algorithms_are_accepted() {
        let url = Url::parse(HTU).unwrap();
        let request = ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN);
        let policy = ProofPolicy::new().algorithms([Algorithm::ES256]);
        let proof = RS256.sign(&RS256.proof_header(), &claims());
        assert_eq!(policy.verify(&proof, &request), Err(DpopError::UnsupportedAlgorithm));
        let proof = ES256.sign(&ES256.proof_header(), &claims());
        assert!(policy.verify(&proof, &request).is_ok());
    }

    #[test]
    fn a_jwk_with_private_members_is_refused() {
        for key in keys() {
            for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                let mut header = key.proof_header();
                header["jwk"][member] = "AQAB".into();
                assert_eq!(check_header(key, &header), Err(DpopError::PrivateKey), "{member}");
            }
        }
    }

    #[test]
    fn the_jwk_must_be_there_and_fit_alg() {
        let key = &*ES256;
        let mut header = key.proof_header();
        header.as_object_mut().unwrap().remove("jwk");
        assert!(matches!(check_header(key, &header), Err(DpopError::InvalidKey(_))));
        // An Ed25519 key under `alg: ES256`.
        let mut header = key.proof_header();
        header["jwk"] = EDDSA.public_jwk();
        assert!(matches!(check_header(key, &header), Err(DpopError::InvalidKey(_))));
        // A jwk that names another algorithm (RFC 7517 §4.4).
        let mut header = RS256.proof_header();
        header["jwk"]["alg"] = "PS256".into();
        assert!(matches!(check_header(&RS256, &header), Err(DpopError::InvalidKey(_))));
        for jwk in [json!("a string"), json!({ "kty": "oct", "k": "c2VjcmV0" }), json!({ "kty": "EC", "crv": "P-384" })]
        {
            let mut header = key.proof_header();
            header["jwk"] = jwk.clone();
            assert!(check_header(key, &header).is_err(), "{jwk}");
        }
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        // The header carries another key of the same type than the one that signs.
        for (signer, other) in [(&*ES256, DpopKey::es256()), (&*EDDSA, DpopKey::ed25519())] {
            let mut header = signer.proof_header();
            header["jwk"] = other.public_jwk();
            let proof = signer.sign(&header, &claims());
            assert_eq!(check(&proof), Err(DpopError::BadSignature), "{:?}", signer.algorithm());
        }
        let proof = RS256.sign(&RS256.proof_header(), &claims());
        let (input, signature) = proof.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 1;
        assert_eq!(check(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))), Err(DpopError::BadSignature));
        // The payload changed after signing.
        let tampered = format!(
            "{}.{}.{signature}",
            input.split_once('.').unwrap().0,
            URL_SAFE_NO_PAD.encode(claims_with(json!({ "htm": "POST" })).to_string())
        );
        assert_eq!(check(&tampered), Err(DpopError::BadSignature));
    }

    #[test]
    fn htm_must_be_the_request_method() {
        for key in keys() {
            for htm in ["POST", "get", "GET "] {
                assert_eq!(check_claims(key, &claims_with(json!({ "htm": htm }))), Err(DpopError::WrongMethod));
            }
        }
    }

    #[test]
    fn htu_must_be_the_request_uri() {
        for htu in [
            "https://api.example.com/invoices/1",
            "https://api.example.com/",
            "https://evil.example.com/invoices",
            "http://api.example.com/invoices",
            "https://api.example.com:8443/invoices",
            "/invoices",
            "urn:x:https://api.example.com/invoices",
            "",
        ] {
            assert_eq!(check_claims(&ES256, &claims_with(json!({ "htu": htu }))), Err(DpopError::WrongUri), "{htu}");
        }
    }

    #[test]
    fn htu_is_compared_without_query_and_fragment_after_normalisation() {
        for htu in [
            "https://api.example.com/invoices?page=2",
            "https://api.example.com/invoices#top",
            "HTTPS://API.Example.COM/invoices",
            "https://api.example.com:443/invoices",
            "https://api.example.com/a/../invoices",
        ] {
            assert!(check_claims(&ES256, &claims_with(json!({ "htu": htu }))).is_ok(), "{htu}");
        }
        // The request has a query the proof leaves out.
        let url = Url::parse("https://api.example.com/invoices?page=3&sort=date").unwrap();
        let proof = ES256.sign(&ES256.proof_header(), &claims());
        assert!(ProofPolicy::new()
            .verify(&proof, &ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN))
            .is_ok());
        let url = Url::parse("http://localhost:8080/token").unwrap();
        let claims = json!({ "jti": "j", "htm": "POST", "htu": "http://LOCALHOST:8080/token", "iat": NOW });
        let proof = ES256.sign(&ES256.proof_header(), &claims);
        assert!(ProofPolicy::new().verify(&proof, &ProofRequest::new("POST", &url, at(NOW))).is_ok());
    }

    #[test]
    fn iat_must_lie_within_the_window() {
        for key in keys() {
            assert!(check_claims(key, &claims_with(json!({ "iat": NOW - 60 }))).is_ok());
            assert!(check_claims(key, &claims_with(json!({ "iat": NOW + 5 }))).is_ok());
            assert!(check_claims(key, &claims_with(json!({ "iat": NOW as f64 + 0.5 }))).is_ok());
            assert_eq!(check_claims(key, &claims_with(json!({ "iat": NOW - 61 }))), Err(DpopError::Stale));
            assert_eq!(check_claims(key, &claims_with(json!({ "iat": 0 }))), Err(DpopError::Stale));
            assert_eq!(check_claims(key, &claims_with(json!({ "iat": NOW + 6 }))), Err(DpopError::IssuedInFuture));
            assert_eq!(check_claims(key, &claims_with(json!({ "iat": i64::MAX }))), Err(DpopError::IssuedInFuture));
        }
        let url = Url::parse(HTU).unwrap();
        let request = ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN);
        let policy = ProofPolicy::new().iat_window(Duration::from_secs(300), Duration::ZERO);
        let proof = ES256.sign(&ES256.proof_header(), &claims_with(json!({ "iat": NOW - 300 })));
        assert!(policy.verify(&proof, &request).is_ok());
        let proof = ES256.sign(&ES256.proof_header(), &claims_with(json!({ "iat": NOW + 1 })));
        assert_eq!(policy.verify(&proof, &request), Err(DpopError::IssuedInFuture));
        assert_eq!(policy.replay_window(), Duration::from_secs(300));
    }

    #[test]
    fn required_claims_must_be_present_and_well_typed() {
        for claim in ["jti", "htm", "htu", "iat"] {
            let result = check_claims(&ES256, &claims_with(json!({ claim: null })));
            assert_eq!(result, Err(DpopError::MissingClaim(claim)));
        }
        for wrong in
            [json!({ "iat": "1800000000" }), json!({ "jti": 7 }), json!({ "htu": ["a"] }), json!({ "iat": 1e300 })]
        {
            assert!(
                matches!(check_claims(&ES256, &claims_with(wrong.clone())), Err(DpopError::Malformed(_))),
                "{wrong}"
            );
        }
    }

    #[test]
    fn jti_must_be_non_empty_and_bounded() {
        assert!(check_claims(&ES256, &claims_with(json!({ "jti": "j".repeat(MAX_JTI_LEN) }))).is_ok());
        for jti in ["".to_owned(), "j".repeat(MAX_JTI_LEN + 1)] {
            assert!(matches!(check_claims(&ES256, &claims_with(json!({ "jti": jti }))), Err(DpopError::Malformed(_))));
        }
    }

    #[test]
    fn ath_must_be_the_hash_of_the_presented_token() {
        for key in keys() {
            let other = claims_with(json!({ "ath": access_token_hash("another token") }));
            assert_eq!(check_claims(key, &other), Err(DpopError::WrongTokenHash));
            assert_eq!(check_claims(key, &claims_with(json!({ "ath": null }))), Err(DpopError::MissingClaim("ath")));
        }
        // Without a token (at the token endpoint) `ath` is not looked at.
        let url = Url::parse(HTU).unwrap();
        let proof = ES256.sign(&ES256.proof_header(), &claims_with(json!({ "ath": "x" })));
        assert!(ProofPolicy::new().verify(&proof, &ProofRequest::new("GET", &url, at(NOW))).is_ok());
    }

    #[test]
    fn ath_is_the_rfc9449_example_hash() {
        // RFC 9449 §7.1, the access token and `ath` of the example request.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn a_required_nonce_must_be_in_the_proof() {
        let url = Url::parse(HTU).unwrap();
        let policy = ProofPolicy::new();
        let request = ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN).nonce("n-1");
        let sign = |claims: &Value| ES256.sign(&ES256.proof_header(), claims);
        assert_eq!(policy.verify(&sign(&claims()), &request), Err(DpopError::UseNonce));
        assert_eq!(policy.verify(&sign(&claims_with(json!({ "nonce": "n-2" }))), &request), Err(DpopError::UseNonce));
        let proof = policy.verify(&sign(&claims_with(json!({ "nonce": "n-1" }))), &request).unwrap();
        assert_eq!(proof.nonce.as_deref(), Some("n-1"));

        let is_valid = |nonce: &str| nonce == "current" || nonce == "previous";
        let request = ProofRequest::new("GET", &url, at(NOW)).access_token(TOKEN).nonce_valid_if(&is_valid);
        assert!(policy.verify(&sign(&claims_with(json!({ "nonce": "previous" }))), &request).is_ok());
        assert_eq!(policy.verify(&sign(&claims_with(json!({ "nonce": "old" }))), &request), Err(DpopError::UseNonce));
        assert_eq!(policy.verify(&sign(&claims()), &request), Err(DpopError::UseNonce));
        assert_eq!(DpopError::UseNonce.error_code(), "use_dpop_nonce");
        assert_eq!(DpopError::Stale.error_code(), "invalid_dpop_proof");
    }

    #[test]
    fn oversized_or_malformed_proofs_are_refused_before_parsing() {
        let mut claims = claims();
        claims["padding"] = "x".repeat(MAX_PROOF_LEN).into();
        assert_eq!(check_claims(&ES256, &claims), Err(DpopError::Malformed("the proof is too large")));
        for proof in ["", "a.b", "a.b.c.d", "e30.e30.", "!!.e30.c2ln"] {
            assert!(matches!(check(proof), Err(DpopError::Malformed(_))), "{proof:?}");
        }
        // A claim given twice.
        let header = URL_SAFE_NO_PAD.encode(ES256.proof_header().to_string());
        let payload = URL_SAFE_NO_PAD.encode(r#"{"jti":"a","jti":"b","htm":"GET","htu":"x","iat":1}"#);
        let signed = ES256.sign(&ES256.proof_header(), &claims_with(json!({})));
        let signature = signed.rsplit_once('.').unwrap().1;
        assert!(check(&format!("{header}.{payload}.{signature}")).is_err());
    }

    #[test]
    fn exactly_one_dpop_header_is_accepted() {
        assert_eq!(single_proof(std::iter::empty()), Ok(None));
        assert_eq!(single_proof([b"a.b.c".as_slice()]), Ok(Some("a.b.c")));
        for values in
            [vec![b"a.b.c".as_slice(), b"a.b.c".as_slice()], vec![b"a.b c".as_slice()], vec![b"\xff".as_slice()]]
        {
            assert!(matches!(single_proof(values), Err(DpopError::Malformed(_))));
        }
    }

    #[test]
    fn error_descriptions_are_valid_attribute_values() {
        let all = [
            DpopError::Malformed("x"),
            DpopError::WrongType,
            DpopError::UnsupportedAlgorithm,
            DpopError::PrivateKey,
            DpopError::InvalidKey("x"),
            DpopError::BadSignature,
            DpopError::MissingClaim("jti"),
            DpopError::WrongMethod,
            DpopError::WrongUri,
            DpopError::Stale,
            DpopError::IssuedInFuture,
            DpopError::WrongTokenHash,
            DpopError::UseNonce,
            DpopError::Missing,
            DpopError::WrongKey,
            DpopError::Replayed,
        ];
        for error in all {
            let allowed = |b: u8| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            assert!(error.error_description().bytes().all(allowed), "{error:?}");
        }
    }
}
