//! Verifying Tessera's own tokens (for `/userinfo` and logout's `id_token_hint`) with the
//! published keys, decoded once. Resource servers use the `tessera-verify` crate instead.

use crate::keys::signing_keys::KeySet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Tokens larger than this are not ours.
const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's type or algorithm is not accepted here")]
    WrongType,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token was not issued by this issuer")]
    WrongIssuer,
    #[error("the token has expired")]
    Expired,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

/// Verifies the JWS signature with the key named by `kid`, checks `alg` (RS256 only) and
/// `typ`, and decodes the claims. Expiry and issuer are the caller's, who knows the rules.
pub fn verify_jws<T: DeserializeOwned>(keys: &KeySet, token: &str, expected_typ: &str) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "RS256" || !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(expected_typ)) {
        return Err(TokenError::WrongType);
    }
    let key = keys.verifying_key(&header.kid).ok_or(TokenError::BadSignature)?;
    let signing_input_len = token.len() - signature.len() - 1;
    if !key.verify(&token.as_bytes()[..signing_input_len], &decode(signature)?) {
        return Err(TokenError::BadSignature);
    }
    serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)
}
