//! Authorization code grant, token request (RFC 6749 §4.1.3; RFC 7636 §4.5–4.6;
//! OpenID Connect Core §3.1.3). A replayed code revokes what it issued (§4.1.2).

use super::{GrantContext, TokenResponse};
use crate::domain::authorization::CodeRedemption;
use crate::domain::client::{Client, GrantType};
use crate::domain::pkce::CodeVerifier;
use crate::domain::secret::SecretDigest;
use crate::oauth::error::OAuthError;
use crate::tokens::refresh::RefreshPolicy;
use crate::tokens::{AccessTokenSubject, IdTokenSubject};
use chrono::{TimeZone, Utc};

pub async fn exchange(
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: &CodeVerifier,
    ctx: &GrantContext<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("the client may not use the authorization_code grant".into()));
    }
    let storage = ctx.storage;
    let now = ctx.clock.now();
    let digest = SecretDigest::of(code);
    let grant = match storage.redeem_code(&digest, now).await? {
        CodeRedemption::Redeemed(grant) => grant,
        CodeRedemption::Replayed { access_token_jti, access_token_expires_at, family_id } => {
            if let (Some(jti), Some(expires_at)) = (access_token_jti, access_token_expires_at) {
                storage.revoke_access_token(&jti, expires_at).await?;
            }
            if let Some(family_id) = family_id {
                storage.revoke_family(&family_id, now, "authorization code replayed").await?;
            }
            tracing::warn!(event = "code_replayed", client_id = %client.id, "authorization code presented twice; its tokens are revoked");
            return Err(OAuthError::InvalidGrant("the authorization code was already used".into()));
        }
        CodeRedemption::Invalid => {
            return Err(OAuthError::InvalidGrant("the authorization code is invalid or expired".into()))
        }
    };
    if grant.client_id != client.id {
        return Err(OAuthError::InvalidGrant("the authorization code was issued to another client".into()));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request".into()));
    }
    if !grant.code_challenge.is_satisfied_by(verifier) {
        return Err(OAuthError::InvalidGrant("code_verifier does not match the code_challenge (RFC 7636 §4.6)".into()));
    }
    let user = storage.find_user_by_id(&grant.user_id).await?.filter(|u| u.disabled_at.is_none());
    let Some(user) = user else {
        return Err(OAuthError::InvalidGrant("the user is disabled".into()));
    };
    let refresh = if RefreshPolicy::should_issue(client, &grant.scope) {
        Some(ctx.refresh.start_family(storage, client, &grant, now).await?)
    } else {
        None
    };
    let family_id = refresh.as_ref().map(|(_, family)| family.id.as_str());
    let auth_time = grant.auth_time.timestamp();
    let access = ctx.issuer.access_token(AccessTokenSubject {
        subject: &user.id,
        client,
        scope: &grant.scope,
        audience: &client.audiences,
        session: Some((&grant.sid, auth_time)),
        family: family_id,
    })?;
    let expires_at = Utc.timestamp_opt(access.expires_at, 0).single().unwrap_or_else(Utc::now);
    storage.record_code_tokens(&digest, &access.jti, expires_at, family_id).await?;
    let id_token = ctx.issuer.id_token_if_openid(
        &grant.scope,
        IdTokenSubject {
            user_id: &user.id,
            client_id: client.id.as_str(),
            nonce: grant.nonce.as_deref(),
            sid: &grant.sid,
            auth_time,
            access_token: &access.token,
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope: grant.scope.to_string(),
        id_token,
        refresh_token: refresh.map(|(token, _)| token.expose().to_owned()),
    })
}
