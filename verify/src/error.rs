//! What can go wrong, as one enum: building a verifier, and verifying a token.

/// Why a verifier could not be built, or why a token was refused.
///
/// The token variants carry no text taken from the token: their messages are safe to
/// return to clients (the actix-web integration puts [`VerifyError::description`] in
/// the `WWW-Authenticate` header) and to log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed JWS in compact serialisation (RFC 7515 §7.1): wrong number of
    /// parts, bad base64url, invalid JSON, a claim of the wrong type, too large.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is not in the verifier's allow-list, or not one this crate can ever accept
    /// (`none`, `HS256` …), or not the algorithm the key is published for.
    #[error("the token's signature algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// `typ` is not `at+jwt` (RFC 9068 §4): an ID token or some other JWT.
    #[error("the token is not a JWT access token (typ must be at+jwt)")]
    WrongType,
    /// No published key has the token's `kid`, even after the refetch the rate limit allowed.
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify with the key named by `kid`.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed, beyond the leeway (RFC 7519 §4.1.4).
    #[error("the token has expired")]
    Expired,
    /// `nbf` (RFC 7519 §4.1.5) or `iat` lies in the future, beyond the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not exactly the configured issuer (RFC 9068 §4).
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// None of the token's `aud` values is a configured audience (RFC 9068 §4).
    #[error("the token is not meant for this audience")]
    WrongAudience,
    /// A claim RFC 9068 §2.2 requires is absent: `iss exp aud sub client_id iat jti`.
    #[error("the token lacks the required claim `{0}`")]
    MissingClaim(&'static str),
    /// The builder was given unusable settings (no audience, an issuer that is not a URL …).
    #[error("invalid verifier configuration: {0}")]
    Configuration(String),
    /// The discovery document (OpenID Connect Discovery 1.0 §4) could not be fetched, is
    /// invalid, or names a different issuer than the configured one (§4.3).
    #[error("discovery failed: {0}")]
    Discovery(String),
    /// The JWK Set could not be fetched or parsed when the verifier was built.
    #[error("the JWK Set is unavailable: {0}")]
    KeySetUnavailable(String),
}

impl VerifyError {
    /// True for the variants that describe a refused token (as opposed to a verifier that
    /// could not be set up).
    pub fn is_token_error(&self) -> bool {
        !matches!(self, Self::Configuration(_) | Self::Discovery(_) | Self::KeySetUnavailable(_))
    }

    /// A short description for clients, e.g. RFC 6750 §3 `error_description`. Every
    /// character is in the set that attribute allows (%x20-21 / %x23-5B / %x5D-7E),
    /// and none comes from the token.
    pub fn description(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "the access token is malformed",
            Self::UnsupportedAlgorithm => "the access token is signed with an algorithm that is not accepted",
            Self::WrongType => "the token is not an access token",
            Self::UnknownKey => "the access token is signed with an unknown key",
            Self::BadSignature => "the access token signature is invalid",
            Self::Expired => "the access token expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::WrongIssuer => "the access token was issued by another issuer",
            Self::WrongAudience => "the access token is not meant for this resource server",
            Self::MissingClaim(_) => "the access token lacks a required claim",
            Self::Configuration(_) | Self::Discovery(_) | Self::KeySetUnavailable(_) => {
                "the access token cannot be verified at the moment"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_valid_rfc6750_attribute_values() {
        let all = [
            VerifyError::Malformed("x"),
            VerifyError::UnsupportedAlgorithm,
            VerifyError::WrongType,
            VerifyError::UnknownKey,
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::MissingClaim("sub"),
            VerifyError::Configuration("x".into()),
            VerifyError::Discovery("x".into()),
            VerifyError::KeySetUnavailable("x".into()),
        ];
        for error in all {
            let allowed = |b: u8| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
            assert!(error.description().bytes().all(allowed), "{error:?}");
        }
    }
}
