//! Client credentials grant (RFC 6749 §4.4): a confidential client gets an access token
//! for itself (`sub` = its client id). No refresh token (§4.4.3). With a DPoP proof, the
//! token is bound to its key (RFC 9449 §5).

use super::{GrantContext, TokenResponse};
use crate::domain::client::{Client, ClientType, GrantType};
use crate::domain::scope::ScopeSet;
use crate::oauth::error::OAuthError;
use crate::tokens::AccessTokenSubject;

pub async fn issue(
    client: &Client,
    requested: Option<ScopeSet>,
    resources: &[String],
    ctx: &GrantContext<'_>,
) -> Result<TokenResponse, OAuthError> {
    let dpop_jkt = ctx.dpop_jkt;
    // §4.4: "The client credentials grant type MUST only be used by confidential clients."
    if client.client_type() == ClientType::Public || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient("the client may not use the client_credentials grant".into()));
    }
    let scope = match requested {
        Some(scope) if !scope.is_subset_of(&client.scopes) => {
            return Err(OAuthError::InvalidScope(
                "the requested scope exceeds the scopes registered for the client".into(),
            ))
        }
        Some(scope) => scope,
        None => client.scopes.clone(),
    };
    // RFC 8707 §2: the audience is what was asked for, if the client may have it.
    if let Some(unknown) = resources.iter().find(|r| !client.audiences.contains(r)) {
        return Err(OAuthError::InvalidTarget(
            format!("the client may not request tokens for resource `{unknown}`").into(),
        ));
    }
    let audience = if resources.is_empty() { &client.audiences[..] } else { resources };
    let token = ctx
        .issuer
        .access_token(
            ctx.storage,
            AccessTokenSubject {
                subject: client.id.as_str(),
                client,
                scope: &scope,
                audience,
                session: None,
                family: None,
                dpop_jkt,
            },
        )
        .await?;
    Ok(TokenResponse {
        access_token: token.token,
        token_type: super::token_type(dpop_jkt),
        expires_in: token.expires_in,
        scope: scope.to_string(),
        id_token: None,
        refresh_token: None,
    })
}
