//! JWT claim sets, borrowed so serialising them allocates nothing but the output.

use serde::Serialize;

/// RFC 9068 §2.2: `iss exp aud sub client_id iat jti` are required; `scope` per §2.2.3.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: Audience<'a>,
    pub client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    /// The SSO session the token descends from, so verifiers can learn of its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The refresh-token family the token descends from (a Tessera claim), so
    /// introspection can report it inactive once the family is revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<&'a str>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation<'a>>,
}

/// `cnf` (RFC 7800 §3.1) of a DPoP-bound token: the JWK SHA-256 thumbprint (RFC 9449 §6.1).
#[derive(Debug, Serialize)]
pub struct Confirmation<'a> {
    pub jkt: &'a str,
}

/// `aud` (RFC 7519 §4.1.3): a string for one audience, an array for several.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Audience<'a> {
    One(&'a str),
    Many(&'a [String]),
}

impl<'a> Audience<'a> {
    /// The client's audiences; a client registered without one gets the issuer, so
    /// `aud` is never missing (RFC 9068 §2.2 requires it).
    pub fn from_slice(audiences: &'a [String], issuer: &'a str) -> Self {
        match audiences {
            [] => Self::One(issuer),
            [one] => Self::One(one),
            many => Self::Many(many),
        }
    }

    /// The audiences as a list, as an opaque token's record stores them.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(one) => vec![(*one).to_owned()],
            Self::Many(many) => many.to_vec(),
        }
    }
}

/// OpenID Connect Core §2 and §3.1.3.6 ID token claims.
#[derive(Debug, Serialize)]
pub struct IdTokenClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    /// The client id (a single audience, so `azp` equals it).
    pub aud: &'a str,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    pub azp: &'a str,
    pub sid: &'a str,
    /// §3.1.3.6: left half of SHA-256 of the access token, base64url.
    pub at_hash: &'a str,
}
