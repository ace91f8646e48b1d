//! Row shapes as both backends return them, and their conversion to domain types.
//! Backend quirks stop here: past `TryFrom`, nothing knows how a value was stored.

use super::timestamp::Timestamp;
use super::{KeyState, StorageError, StoredKey};
use crate::domain::authorization::{AuthorizationGrant, PendingAuthorization, Prompt, Session, SessionId};
use crate::domain::client::{AuthMethod, Client, ClientId, GrantType, KeySource};
use crate::domain::pkce::CodeChallenge;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::{User, UserId, Username};
use crate::domain::web_origin::WebOrigin;
use sqlx::types::Json;

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {error}"))
}

#[derive(sqlx::FromRow)]
pub(super) struct ClientRow {
    pub id: String,
    pub name: String,
    pub token_endpoint_auth_method: String,
    pub secret_digest: Option<String>,
    pub grant_types: Json<Vec<String>>,
    pub scopes: String,
    pub audiences: Json<Vec<String>>,
    pub served_audiences: Json<Vec<String>>,
    pub may_introspect_any: bool,
    pub redirect_uris: Json<Vec<String>>,
    pub post_logout_redirect_uris: Json<Vec<String>>,
    pub is_first_party: bool,
    pub always_issue_refresh_token: bool,
    pub require_pushed_authorization_requests: bool,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub dpop_bound_access_tokens: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// NULL: derived from the redirect URIs.
    pub web_origins: Option<Json<Vec<String>>>,
    pub first_party_spa: bool,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
    pub access_token_format: String,
}

impl TryFrom<ClientRow> for Client {
    type Error = StorageError;
    fn try_from(row: ClientRow) -> Result<Self, StorageError> {
        let grant_types = row
            .grant_types
            .0
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("clients.grant_types", e))?;
        let (web_origins, web_origins_explicit) = match row.web_origins {
            Some(Json(stored)) => (stored.into_iter().map(WebOrigin::from_stored).collect(), true),
            None => (WebOrigin::derive(&row.redirect_uris.0), false),
        };
        Ok(Client {
            id: ClientId::parse(&row.id).map_err(|e| corrupt("clients.id", e))?,
            name: row.name,
            auth_method: row
                .token_endpoint_auth_method
                .parse::<AuthMethod>()
                .map_err(|e| corrupt("clients.token_endpoint_auth_method", e))?,
            secret_digest: row.secret_digest.map(SecretDigest::from_stored),
            grant_types,
            scopes: ScopeSet::parse(&row.scopes).map_err(|e| corrupt("clients.scopes", e))?,
            audiences: row.audiences.0,
            served_audiences: row.served_audiences.0,
            may_introspect_any: row.may_introspect_any,
            redirect_uris: row.redirect_uris.0,
            post_logout_redirect_uris: row.post_logout_redirect_uris.0,
            is_first_party: row.is_first_party,
            always_issue_refresh_token: row.always_issue_refresh_token,
            require_pushed_authorization_requests: row.require_pushed_authorization_requests,
            keys: match (row.jwks, row.jwks_uri) {
                (Some(jwks), None) => Some(KeySource::Jwks(jwks)),
                (None, Some(uri)) => Some(KeySource::Uri(uri)),
                (None, None) => None,
                (Some(_), Some(_)) => return Err(corrupt("clients.jwks", "both jwks and jwks_uri are set")),
            },
            dpop_bound_access_tokens: row.dpop_bound_access_tokens,
            backchannel_logout_uri: row.backchannel_logout_uri,
            backchannel_logout_session_required: row.backchannel_logout_session_required,
            web_origins,
            web_origins_explicit,
            first_party_spa: row.first_party_spa,
            access_token_format: row
                .access_token_format
                .parse()
                .map_err(|e| corrupt("clients.access_token_format", e))?,
            created_at: row.created_at.into(),
            disabled_at: row.disabled_at.map(Into::into),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

impl TryFrom<UserRow> for User {
    type Error = StorageError;
    fn try_from(row: UserRow) -> Result<Self, StorageError> {
        Ok(User {
            id: UserId::from_stored(row.id),
            username: Username::parse(&row.username).map_err(|e| corrupt("users.username", e))?,
            email: row.email,
            email_verified: row.email_verified,
            name: row.name,
            password_hash: row.password_hash,
            created_at: row.created_at.into(),
            updated_at: row.updated_at.into(),
            disabled_at: row.disabled_at.map(Into::into),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub state: String,
    pub encrypted_private_key: Vec<u8>,
    pub public_jwk: Json<serde_json::Value>,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
}

impl TryFrom<SigningKeyRow> for StoredKey {
    type Error = StorageError;
    fn try_from(row: SigningKeyRow) -> Result<Self, StorageError> {
        let state = match row.state.as_str() {
            "next" => KeyState::Next,
            "current" => KeyState::Current,
            "retired" => KeyState::Retired,
            other => return Err(corrupt("signing_keys.state", other)),
        };
        Ok(StoredKey {
            kid: row.kid,
            algorithm: row.algorithm,
            state,
            encrypted_private_key: row.encrypted_private_key,
            public_jwk: row.public_jwk.0,
            created_at: row.created_at.into(),
            activated_at: row.activated_at.map(Into::into),
            retired_at: row.retired_at.map(Into::into),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct SessionRow {
    pub sid: String,
    pub user_id: String,
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            sid: SessionId::from_stored(row.sid),
            user_id: UserId::from_stored(row.user_id),
            auth_time: row.auth_time.into(),
            created_at: row.created_at.into(),
            last_seen_at: row.last_seen_at.into(),
            expires_at: row.expires_at.into(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PendingRow {
    pub csrf_digest: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub login_hint: Option<String>,
    pub max_age: Option<i64>,
    pub prompt: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl TryFrom<PendingRow> for PendingAuthorization {
    type Error = StorageError;
    fn try_from(row: PendingRow) -> Result<Self, StorageError> {
        Ok(PendingAuthorization {
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("pending_authorizations.client_id", e))?,
            redirect_uri: row.redirect_uri,
            scope: ScopeSet::parse(&row.scope).map_err(|e| corrupt("pending_authorizations.scope", e))?,
            state: row.state,
            nonce: row.nonce,
            code_challenge: CodeChallenge::from_stored(row.code_challenge),
            login_hint: row.login_hint,
            max_age: row.max_age,
            prompt: Prompt::parse(Some(&row.prompt)).map_err(|e| corrupt("pending_authorizations.prompt", e))?,
            csrf_digest: SecretDigest::from_stored(row.csrf_digest),
            created_at: row.created_at.into(),
            expires_at: row.expires_at.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CodeRow {
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl TryFrom<CodeRow> for AuthorizationGrant {
    type Error = StorageError;
    fn try_from(row: CodeRow) -> Result<Self, StorageError> {
        Ok(AuthorizationGrant {
            client_id: ClientId::parse(&row.client_id).map_err(|e| corrupt("authorization_codes.client_id", e))?,
            user_id: UserId::from_stored(row.user_id),
            sid: SessionId::from_stored(row.sid),
            redirect_uri: row.redirect_uri,
            scope: ScopeSet::parse(&row.scope).map_err(|e| corrupt("authorization_codes.scope", e))?,
            nonce: row.nonce,
            code_challenge: CodeChallenge::from_stored(row.code_challenge),
            auth_time: row.auth_time.into(),
            created_at: row.created_at.into(),
            expires_at: row.expires_at.into(),
        })
    }
}
