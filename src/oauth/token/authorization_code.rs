//! Authorization code grant, token request (RFC 6749 §4.1.3; RFC 7636 §4.5–4.6;
//! OpenID Connect Core §3.1.3). A replayed code revokes what it issued (§4.1.2) when the
//! replay is the owner's: presented by the code's client with its verifier and redirect
//! URI. A wrong presentation (another client, redirect URI or verifier) changes nothing.

use super::{GrantContext, TokenResponse};
use crate::domain::authorization::{CodePresentation, CodeRedemption};
use crate::domain::client::{Client, ClientType, GrantType};
use crate::domain::pkce::CodeVerifier;
use crate::domain::secret::SecretDigest;
use crate::domain::signals::Reason;
use crate::oauth::error::OAuthError;
use crate::tokens::refresh::RefreshPolicy;
use crate::tokens::{new_jti, AccessTokenSubject, IdTokenSubject};
use chrono::{DateTime, Utc};

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
    // The access token's jti is chosen first, so that the statement that marks the code
    // used records it: a replay racing this exchange always finds it to revoke.
    let jti = new_jti();
    // Tokens are stamped by the same clock, so this is the access token's `exp`.
    let access_token_expires_at = now + ctx.issuer.access_token_ttl;
    let presentation = CodePresentation {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: verifier.s256_challenge(),
        access_token_jti: jti.clone(),
        access_token_expires_at,
        now,
    };
    let grant = match storage.redeem_code(&digest, &presentation).await? {
        CodeRedemption::Redeemed(grant) => grant,
        CodeRedemption::Replayed { owner, is_owners: false } => {
            ctx.metrics.code_replays.inc();
            // Another client (or one without the verifier) proves nothing about the owner's
            // tokens, and must not be able to end them: refused, nothing revoked.
            crate::audit!(warn, "code_replayed", "refused", client_id = %client.id, owner_client_id = %owner,
                revoked = false);
            return Err(used());
        }
        CodeRedemption::Replayed { owner, is_owners: true } => {
            ctx.metrics.code_replays.inc();
            revoke_what_it_issued(ctx, &digest, now).await?;
            crate::audit!(warn, "code_replayed", "refused", client_id = %client.id, owner_client_id = %owner,
                revoked = true);
            return Err(used());
        }
        CodeRedemption::WrongClient => {
            return Err(OAuthError::InvalidGrant("the authorization code was issued to another client".into()))
        }
        CodeRedemption::WrongRedirectUri => {
            return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request".into()))
        }
        CodeRedemption::WrongVerifier => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier does not match the code_challenge (RFC 7636 §4.6)".into(),
            ))
        }
        CodeRedemption::SessionEnded => {
            return Err(OAuthError::InvalidGrant(
                "the sign-in this code came from has ended (logout, revocation, disabled user or new password)".into(),
            ))
        }
        CodeRedemption::Invalid => {
            return Err(OAuthError::InvalidGrant("the authorization code is invalid or expired".into()))
        }
    };
    let refresh = if RefreshPolicy::should_issue(client, &grant.scope) {
        // RFC 9449 §5 (end): a public client's refresh tokens are bound to the DPoP key the
        // family started with; a confidential client's are bound by its authentication.
        let family_jkt = ctx.dpop_jkt.filter(|_| client.client_type() == ClientType::Public);
        match ctx.refresh.start_family(storage, &digest, client, &grant, family_jkt, now).await? {
            Some(started) => Some(started),
            // Replayed (or its session ended) between the redemption and now: the replay
            // revoked the access token's jti, and no family may start from the code.
            None => return Err(used()),
        }
    } else {
        None
    };
    let family_id = refresh.as_ref().map(|(_, family)| &family.id);
    let auth_time = grant.auth_time.timestamp();
    let access = ctx
        .issuer
        .access_token_with_jti(
            ctx.storage,
            jti,
            AccessTokenSubject {
                subject: grant.user_id.as_str(),
                client,
                scope: &grant.scope,
                audience: &client.audiences,
                session: Some((&grant.sid, auth_time)),
                family: family_id,
                dpop_jkt: ctx.dpop_jkt,
            },
        )
        .await?;
    let id_token = ctx.issuer.id_token_if_openid(
        &grant.scope,
        IdTokenSubject {
            user_id: &grant.user_id,
            client_id: client.id.as_str(),
            nonce: grant.nonce.as_deref(),
            sid: &grant.sid,
            auth_time,
            access_token: &access.token,
        },
    )?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: super::token_type(ctx.dpop_jkt),
        expires_in: access.expires_in,
        scope: grant.scope.to_string(),
        id_token,
        refresh_token: refresh.map(|(token, _)| token.expose().to_owned()),
    })
}

fn used() -> OAuthError {
    OAuthError::InvalidGrant("the authorization code was already used".into())
}

/// RFC 6749 §4.1.2: revokes the access token and the refresh-token family a replayed code
/// issued, in one transaction with the events that report it. The mark on the code also
/// keeps a family from starting after this.
async fn revoke_what_it_issued(
    ctx: &GrantContext<'_>,
    code: &SecretDigest,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    ctx.storage.revoke_replayed_code(code, &ctx.events.revocation(Reason::CodeReplayed, now)).await?;
    Ok(())
}
