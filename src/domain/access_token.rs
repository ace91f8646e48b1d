//! The two forms an access token takes, chosen per client: a signed JWT (RFC 9068) that
//! resource servers verify locally, or an opaque random string that only Tessera can
//! read, checked by introspection (RFC 7662) and revocable at once (RFC 7009).

use super::client::ClientId;
use super::scope::ScopeSet;
use super::InvalidParameter;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// The prefix of an opaque access token: makes it recognisable (to secret scanners, and to
/// `tessera-verify`, which introspects only tokens of this shape) and tells it from a
/// JWT and from a refresh token (`trt_`) without a lookup.
pub const OPAQUE_ACCESS_TOKEN_PREFIX: &str = "tat_";

/// The length of an opaque access token: the prefix and 256 random bits in unpadded
/// base64url (`GeneratedSecret`).
pub const OPAQUE_ACCESS_TOKEN_LEN: usize = OPAQUE_ACCESS_TOKEN_PREFIX.len() + 43;

/// Is `token` shaped like one of our opaque access tokens? Only the shape: whether it is
/// live is the database's to say.
pub fn is_opaque_access_token(token: &str) -> bool {
    token.len() == OPAQUE_ACCESS_TOKEN_LEN
        && token.starts_with(OPAQUE_ACCESS_TOKEN_PREFIX)
        && token[OPAQUE_ACCESS_TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A client's `access_token_format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AccessTokenFormat {
    /// RFC 9068 JWT, verified by resource servers with the JWK Set: no call to Tessera per
    /// request; revocation reaches them through Shared Signals.
    #[default]
    Jwt,
    /// A random reference stored hashed: each resource server asks Tessera (RFC 7662),
    /// so revocation takes effect on the next introspection.
    Opaque,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
}

impl FromStr for AccessTokenFormat {
    type Err = InvalidParameter;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "jwt" => Ok(Self::Jwt),
            "opaque" => Ok(Self::Opaque),
            other => Err(InvalidParameter::new("access_token_format", format!("`{other}` is not one of jwt, opaque"))),
        }
    }
}

impl fmt::Display for AccessTokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an opaque access token stands for: the claims its JWT form would carry (RFC 9068
/// §2.2), stored under the token's digest and read back by introspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueAccessToken {
    pub jti: String,
    pub client_id: ClientId,
    /// The user id, or the client id for `client_credentials`.
    pub subject: String,
    pub scope: ScopeSet,
    pub audiences: Vec<String>,
    /// The SSO session (`sid`) and its login time, for tokens issued to a user.
    pub sid: Option<String>,
    pub auth_time: Option<DateTime<Utc>>,
    /// The refresh-token family it descends from (`fid`).
    pub family_id: Option<String>,
    /// The DPoP key thumbprint it is bound to (RFC 9449 §6.1 `cnf.jkt`).
    pub dpop_jkt: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::GeneratedSecret;

    #[test]
    fn generated_opaque_tokens_have_the_recognised_shape() {
        for _ in 0..100 {
            let token = GeneratedSecret::generate(OPAQUE_ACCESS_TOKEN_PREFIX);
            assert!(is_opaque_access_token(token.expose()), "{}", token.expose().len());
        }
    }

    #[test]
    fn other_strings_are_not_opaque_tokens() {
        let good = format!("tat_{}", "A".repeat(43));
        assert!(is_opaque_access_token(&good));
        assert!(!is_opaque_access_token(&format!("tat_{}", "A".repeat(42))));
        assert!(!is_opaque_access_token(&format!("tat_{}", "A".repeat(44))));
        assert!(!is_opaque_access_token(&format!("trt_{}", "A".repeat(43))));
        assert!(!is_opaque_access_token(&format!("tat_{}.", "A".repeat(42))));
        assert!(!is_opaque_access_token(&format!("tat_{}é", "A".repeat(41))));
        assert!(!is_opaque_access_token("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"));
    }

    #[test]
    fn formats_round_trip() {
        for format in [AccessTokenFormat::Jwt, AccessTokenFormat::Opaque] {
            assert_eq!(format.as_str().parse::<AccessTokenFormat>().unwrap(), format);
        }
        assert!("JWT".parse::<AccessTokenFormat>().is_err());
    }
}
