//! Refresh token grant (RFC 6749 §6) with rotation on every use and family-wide reuse
//! detection (RFC 9700 §4.14.2), plus an idempotent-retry window for lost responses. A
//! public client's family bound to a DPoP key is refreshed only with a proof of that key
//! (RFC 9449 §5).

use super::{GrantContext, TokenResponse};
use crate::domain::client::{Client, GrantType};
use crate::domain::refresh::{Rotation, RotationRequest, TokenFamily, REFRESH_TOKEN_PREFIX};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::{GeneratedSecret, SecretDigest};
use crate::domain::signals::Reason;
use crate::oauth::error::OAuthError;
use crate::tokens::{AccessTokenSubject, IdTokenSubject};

pub async fn rotate(
    client: &Client,
    presented: &str,
    requested: Option<ScopeSet>,
    ctx: &GrantContext<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient("the client may not use the refresh_token grant".into()));
    }
    let now = ctx.clock.now();
    let successor = GeneratedSecret::generate(REFRESH_TOKEN_PREFIX);
    // Sealed for the retry window, bound to the token it succeeds.
    let presented = SecretDigest::of(presented);
    let aad = presented.as_str().as_bytes();
    let sealed = ctx.refresh.kek.seal(successor.expose().as_bytes(), aad)?;
    let reuse = ctx.events.revocation(Reason::RefreshTokenReused, now);
    let request = RotationRequest {
        presented: &presented,
        client_id: &client.id,
        now,
        successor: successor.expose(),
        successor_sealed: &sealed,
        idle_ttl: ctx.refresh.idle_ttl,
        retry_window: ctx.refresh.retry_window,
        requested_scope: requested.as_ref(),
        reuse: &reuse,
        dpop_jkt: ctx.dpop_jkt,
    };
    let (family, refresh_token) = match ctx.storage.rotate_refresh_token(&request).await? {
        Rotation::Rotated(family) => {
            ctx.metrics.refresh_rotations.with_label_values(&["rotated"]).inc();
            (family, successor.expose().to_owned())
        }
        Rotation::Retried { family, successor_sealed } => {
            ctx.metrics.refresh_rotations.with_label_values(&["retried"]).inc();
            let raw = ctx
                .refresh
                .kek
                .open(&successor_sealed, aad)
                .map_err(|_| anyhow::anyhow!("the sealed successor of a refresh token does not decrypt"))?;
            (family, String::from_utf8(raw).map_err(|_| anyhow::anyhow!("sealed successor is not UTF-8"))?)
        }
        Rotation::Reused(family) => {
            ctx.metrics.refresh_rotations.with_label_values(&["reuse_detected"]).inc();
            crate::audit!(warn, "refresh_token_reuse", "family_revoked", family_id = %family.id,
                client_id = %client.id, user_id = %family.user_id);
            return Err(OAuthError::InvalidGrant("the refresh token was already used; its grant is revoked".into()));
        }
        Rotation::Invalid => {
            ctx.metrics.refresh_rotations.with_label_values(&["invalid"]).inc();
            return Err(OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into()));
        }
        // RFC 6749 §6: the scope may be narrowed per access token, never widened.
        Rotation::ScopeExceeded => {
            return Err(OAuthError::InvalidScope("the requested scope exceeds the original grant".into()))
        }
        // RFC 9449 §5: neither rotated nor counted as reuse (see `refresh::decide`).
        Rotation::WrongDpopKey => {
            return Err(OAuthError::InvalidGrant(
                "the refresh token is bound to a DPoP key: present a DPoP proof made with that key".into(),
            ))
        }
    };
    // A scope the operator has since taken from the client (admin PATCH) is no longer
    // issued, as Keycloak does: the grant outlives the registration it was made under, its
    // tokens do not. The family keeps its scope, so giving the scope back restores it.
    let scope = requested.unwrap_or_else(|| family.scope.clone()).intersection(&client.scopes);
    // A disabled user's tokens come back `Invalid` from the rotation itself.
    issue(client, &family, &scope, refresh_token, ctx).await
}

async fn issue(
    client: &Client,
    family: &TokenFamily,
    scope: &ScopeSet,
    refresh_token: String,
    ctx: &GrantContext<'_>,
) -> Result<TokenResponse, OAuthError> {
    let auth_time = family.auth_time.timestamp();
    let access = ctx
        .issuer
        .access_token(
            ctx.storage,
            AccessTokenSubject {
                subject: family.user_id.as_str(),
                client,
                scope,
                audience: &client.audiences,
                session: Some((&family.sid, auth_time)),
                family: Some(&family.id),
                dpop_jkt: ctx.dpop_jkt,
            },
        )
        .await?;
    // OpenID Connect Core §12.2: an ID token may accompany a refresh; no nonce.
    let id_token = ctx.issuer.id_token_if_openid(
        scope,
        IdTokenSubject {
            user_id: &family.user_id,
            client_id: client.id.as_str(),
            nonce: None,
            sid: &family.sid,
            auth_time,
            access_token: &access.token,
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(ctx.dpop_jkt),
        expires_in: access.expires_in,
        scope: scope.to_string(),
        id_token,
        refresh_token: Some(refresh_token),
    })
}
