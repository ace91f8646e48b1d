//! Token minting shared by every grant: claims (RFC 9068, OIDC Core §2) and the JWS
//! assembly over the cached signing key.

pub mod claims;
pub mod jws;

use crate::config::Issuer;
use crate::domain::client::Client;
use crate::domain::scope::ScopeSet;
use crate::keys::signing_keys::JwsType;
use crate::keys::SigningKeys;
use claims::{AccessTokenClaims, Audience};
use std::time::Duration;

/// Mints tokens for one issuer.
pub struct TokenIssuer {
    pub issuer: Issuer,
    pub access_token_ttl: Duration,
    pub keys: SigningKeys,
}

/// An access token and what the token response says about it (RFC 6749 §5.1).
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
    pub jti: String,
}

impl TokenIssuer {
    /// RFC 9068 §2.2 access token for `subject` (the user, or the client itself for
    /// `client_credentials`), valid for `audience`.
    pub fn access_token(
        &self,
        subject: &str,
        client: &Client,
        scope: &ScopeSet,
        audience: &[String],
    ) -> anyhow::Result<IssuedAccessToken> {
        let now = chrono::Utc::now().timestamp();
        let ttl = self.access_token_ttl.as_secs();
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let scope = scope.to_string();
        let claims = AccessTokenClaims {
            iss: self.issuer.as_str(),
            sub: subject,
            aud: Audience::from_slice(audience, self.issuer.as_str()),
            client_id: client.id.as_str(),
            scope: (!scope.is_empty()).then_some(scope.as_str()),
            iat: now,
            exp: now + ttl as i64,
            jti: &jti,
        };
        let keys = self.keys.snapshot();
        let token = jws::sign(&keys.current, JwsType::AccessToken, &claims)?;
        Ok(IssuedAccessToken { token, expires_in: ttl, jti })
    }
}
