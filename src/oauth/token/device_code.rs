//! Device authorization grant, token request (RFC 8628 §3.4–3.5): the device polls with
//! its device code until the person decides at the verification page. An approved code
//! is taken by one statement (single use: of concurrent polls exactly one gets tokens),
//! and its tokens are those the code exchange issues for the same approval: an access
//! token with the session's `sid`, an ID token for `openid`, a refresh token by the
//! client's rules in a new family tied to that session.

use super::{GrantContext, TokenResponse};
use crate::domain::client::{Client, ClientType, GrantType};
use crate::domain::device::DevicePoll;
use crate::domain::secret::SecretDigest;
use crate::oauth::error::OAuthError;
use crate::tokens::refresh::{FamilyOrigin, RefreshPolicy};
use crate::tokens::{new_jti, AccessTokenSubject, IdTokenSubject};

pub async fn exchange(client: &Client, device_code: &str, ctx: &GrantContext<'_>) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient("the client may not use the device_code grant".into()));
    }
    let now = ctx.clock.now();
    let poll = ctx.storage.poll_device_code(&SecretDigest::of(device_code), &client.id, now).await?;
    let (scope, user_id, sid, auth_time) = match poll {
        DevicePoll::Redeemed { scope, user_id, sid, auth_time, .. } => (scope, user_id, sid, auth_time),
        DevicePoll::Pending => return Err(OAuthError::AuthorizationPending),
        DevicePoll::SlowDown { interval } => {
            return Err(OAuthError::SlowDown { interval_seconds: interval.num_seconds() })
        }
        DevicePoll::Denied => {
            return Err(OAuthError::AccessDenied(
                "the user denied the request, or the sign-in that approved it has ended".into(),
            ))
        }
        DevicePoll::Expired => return Err(OAuthError::ExpiredToken),
        DevicePoll::Invalid => {
            return Err(OAuthError::InvalidGrant(
                "the device_code is invalid, already used, or was issued to another client".into(),
            ))
        }
    };
    let refresh = if RefreshPolicy::should_issue(client, &scope) {
        // RFC 9449 §5 (end), as for a code: a public client's family is bound to its key.
        let family_jkt = ctx.dpop_jkt.filter(|_| client.client_type() == ClientType::Public);
        let origin = FamilyOrigin { user_id: &user_id, sid: &sid, scope: &scope, auth_time };
        match ctx.refresh.start_family_for_session(ctx.storage, client, origin, family_jkt, now).await? {
            Some(started) => Some(started),
            None => {
                return Err(OAuthError::AccessDenied("the sign-in that approved this device has ended".into()));
            }
        }
    } else {
        None
    };
    let family_id = refresh.as_ref().map(|(_, family)| &family.id);
    let auth_time = auth_time.timestamp();
    let access = ctx
        .issuer
        .access_token_with_jti(
            ctx.storage,
            new_jti(),
            AccessTokenSubject {
                subject: user_id.as_str(),
                client,
                scope: &scope,
                audience: &client.audiences,
                session: Some((&sid, auth_time)),
                family: family_id,
                dpop_jkt: ctx.dpop_jkt,
            },
        )
        .await?;
    // No `nonce`: a device authorization request has none (RFC 8628 §3.1).
    let id_token = ctx.issuer.id_token_if_openid(
        &scope,
        IdTokenSubject {
            user_id: &user_id,
            client_id: client.id.as_str(),
            nonce: None,
            sid: &sid,
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
        refresh_token: refresh.map(|(token, _)| token.expose().to_owned()),
    })
}
