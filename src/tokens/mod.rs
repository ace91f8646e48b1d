//! Token minting shared by every grant: claims (RFC 9068, OIDC Core §2) and the JWS
//! assembly over the cached signing key.

pub mod claims;
pub mod dpop;
pub mod live;
pub mod refresh;

use crate::clock::Clock;
use crate::config::Issuer;
use crate::domain::access_token::{AccessTokenFormat, OpaqueAccessToken, OPAQUE_ACCESS_TOKEN_PREFIX};
use crate::domain::authorization::SessionId;
use crate::domain::client::Client;
use crate::domain::refresh::FamilyId;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::GeneratedSecret;
use crate::domain::user::UserId;
use crate::keys::jws;
use crate::keys::signing_keys::JwsType;
use crate::keys::SigningKeys;
use crate::storage::AccessTokenStore;
use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, TimeZone, Utc};
use claims::{AccessTokenClaims, Audience, Confirmation, IdTokenClaims};
use std::sync::Arc;
use tessera_verify::{AccessTokenPolicy, IdTokenPolicy, VerifyError};

/// A fresh `jti` (RFC 7519 §4.1.7): 122 random bits.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Mints tokens for one issuer, and verifies its own. Times come from the one clock the
/// whole server reads, so moving a test clock expires access tokens as it expires
/// families and codes.
pub struct TokenIssuer {
    pub issuer: Issuer,
    /// Bounded at load (1s to 1d).
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub keys: Arc<SigningKeys>,
    pub clock: Arc<dyn Clock>,
    /// Its own access tokens, of any audience (userinfo and introspection serve them all).
    access_tokens: AccessTokenPolicy,
    /// Its own ID tokens as `id_token_hint`s: expired ones too (RP-Initiated Logout §2).
    id_token_hints: IdTokenPolicy,
}

/// An access token and what the token response says about it (RFC 6749 §5.1).
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: u64,
    pub jti: String,
}

/// Who and what an access token is for.
pub struct AccessTokenSubject<'a> {
    /// The user id, or the client id for `client_credentials`.
    pub subject: &'a str,
    pub client: &'a Client,
    pub scope: &'a ScopeSet,
    pub audience: &'a [String],
    /// SSO session id and login time, for tokens issued to a user.
    pub session: Option<(&'a SessionId, i64)>,
    /// The refresh-token family, when the token comes from one.
    pub family: Option<&'a FamilyId>,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1), if any.
    pub dpop_jkt: Option<&'a str>,
}

/// The inputs of an ID token (OpenID Connect Core §3.1.3.6).
pub struct IdTokenSubject<'a> {
    pub user_id: &'a UserId,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub sid: &'a SessionId,
    pub auth_time: i64,
    pub access_token: &'a str,
}

impl TokenIssuer {
    pub fn new(
        issuer: Issuer,
        access_token_ttl: Duration,
        id_token_ttl: Duration,
        keys: Arc<SigningKeys>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let access_tokens = AccessTokenPolicy::any_audience(issuer.as_str());
        let id_token_hints = IdTokenPolicy::any_audience(issuer.as_str()).allow_expired();
        Self { issuer, access_token_ttl, id_token_ttl, keys, clock, access_tokens, id_token_hints }
    }

    /// An access token for `subject` (the user, or the client itself for
    /// `client_credentials`), valid for `audience`, in the client's `access_token_format`:
    /// an RFC 9068 §2.2 JWT, or an opaque reference stored in `storage`.
    pub async fn access_token(
        &self,
        storage: &dyn AccessTokenStore,
        to: AccessTokenSubject<'_>,
    ) -> anyhow::Result<IssuedAccessToken> {
        self.access_token_with_jti(storage, new_jti(), to).await
    }

    /// [`access_token`](Self::access_token) with a `jti` chosen beforehand, so it can be
    /// recorded before the token exists (a code's redemption records it for revocation).
    pub async fn access_token_with_jti(
        &self,
        storage: &dyn AccessTokenStore,
        jti: String,
        to: AccessTokenSubject<'_>,
    ) -> anyhow::Result<IssuedAccessToken> {
        match to.client.access_token_format {
            AccessTokenFormat::Jwt => self.jwt_access_token(jti, to),
            AccessTokenFormat::Opaque => self.opaque_access_token(storage, jti, to).await,
        }
    }

    fn jwt_access_token(&self, jti: String, to: AccessTokenSubject<'_>) -> anyhow::Result<IssuedAccessToken> {
        let now = self.clock.now().timestamp();
        let ttl = self.access_token_ttl.num_seconds();
        let scope = to.scope.to_string();
        let claims = AccessTokenClaims {
            iss: self.issuer.as_str(),
            sub: to.subject,
            aud: Audience::from_slice(to.audience, self.issuer.as_str()),
            client_id: to.client.id.as_str(),
            scope: (!scope.is_empty()).then_some(scope.as_str()),
            iat: now,
            exp: now.saturating_add(ttl),
            jti: &jti,
            sid: to.session.map(|(sid, _)| sid.as_str()),
            auth_time: to.session.map(|(_, auth_time)| auth_time),
            fid: to.family.map(FamilyId::as_str),
            cnf: to.dpop_jkt.map(|jkt| Confirmation { jkt }),
        };
        let keys = self.keys.snapshot();
        let token = jws::sign(&keys.current, JwsType::AccessToken, &claims)?;
        Ok(IssuedAccessToken { token, expires_in: ttl.unsigned_abs(), jti })
    }

    /// An opaque access token: 256 random bits, and a row holding what a JWT would carry
    /// (the same `aud` rule: the issuer when the client has no audience). The token
    /// itself is never stored, only its digest.
    async fn opaque_access_token(
        &self,
        storage: &dyn AccessTokenStore,
        jti: String,
        to: AccessTokenSubject<'_>,
    ) -> anyhow::Result<IssuedAccessToken> {
        let now = self.clock.now();
        // Whole seconds, as a JWT's NumericDates: introspection reports the same `iat`
        // and `exp` whichever format a client uses.
        let now = Utc.timestamp_opt(now.timestamp(), 0).single().unwrap_or(now);
        let token = GeneratedSecret::generate(OPAQUE_ACCESS_TOKEN_PREFIX);
        let record = OpaqueAccessToken {
            jti: jti.clone(),
            client_id: to.client.id.clone(),
            subject: to.subject.to_owned(),
            scope: to.scope.clone(),
            audiences: claims::Audience::from_slice(to.audience, self.issuer.as_str()).to_vec(),
            sid: to.session.map(|(sid, _)| sid.as_str().to_owned()),
            auth_time: to.session.and_then(|(_, auth_time)| Utc.timestamp_opt(auth_time, 0).single()),
            family_id: to.family.map(|fid| fid.as_str().to_owned()),
            dpop_jkt: to.dpop_jkt.map(str::to_owned),
            issued_at: now,
            expires_at: now + self.access_token_ttl,
        };
        storage.insert_opaque_access_token(&token.digest(), &record).await?;
        let expires_in = self.access_token_ttl.num_seconds().unsigned_abs();
        Ok(IssuedAccessToken { token: token.expose().to_owned(), expires_in, jti })
    }

    /// An ID token when `scope` includes `openid` (OpenID Connect Core §3.1.3.3), else `None`.
    pub fn id_token_if_openid(&self, scope: &ScopeSet, to: IdTokenSubject<'_>) -> anyhow::Result<Option<String>> {
        if scope.contains("openid") {
            self.id_token(to).map(Some)
        } else {
            Ok(None)
        }
    }

    /// OpenID Connect Core §3.1.3.6 ID token, bound to its access token by `at_hash`.
    pub fn id_token(&self, to: IdTokenSubject<'_>) -> anyhow::Result<String> {
        let now = self.clock.now().timestamp();
        let hash = digest(&SHA256, to.access_token.as_bytes());
        let at_hash = URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]);
        let claims = IdTokenClaims {
            iss: self.issuer.as_str(),
            sub: to.user_id.as_str(),
            aud: to.client_id,
            exp: now.saturating_add(self.id_token_ttl.num_seconds()),
            iat: now,
            auth_time: to.auth_time,
            nonce: to.nonce,
            azp: to.client_id,
            sid: to.sid.as_str(),
            at_hash: &at_hash,
        };
        jws::sign(&self.keys.snapshot().current, JwsType::IdToken, &claims)
    }

    /// Verifies one of our access tokens as a resource server would (RFC 9068 §4), with
    /// `tessera-verify`: signature, `typ`, issuer, expiry and the required claims, at the
    /// server's clock. Revocation is the caller's to check (`live::live_access_token`).
    pub fn verify_access_token(&self, token: &str) -> Result<tessera_verify::Claims, VerifyError> {
        // Bound tokens too: each endpoint checks the binding (`cnf.jkt`) with its proof.
        self.access_tokens.verify_token(&self.keys.snapshot().verifying, token, self.clock.now().into())
    }

    /// Verifies an `id_token_hint`: our signature, `typ` and issuer; expiry is not required
    /// (RP-Initiated Logout 1.0 §2 allows expired hints).
    pub fn verify_id_token_hint(&self, token: &str) -> Result<tessera_verify::IdTokenClaims, VerifyError> {
        self.id_token_hints.verify(&self.keys.snapshot().verifying, token, self.clock.now().into())
    }
}
