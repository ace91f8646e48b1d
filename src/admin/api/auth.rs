//! Who may call the admin API: a client of this issuer holding an access token it got for
//! itself with client credentials, with the scope `tessera:admin`.
//!
//! Why only client-credentials tokens: a token a user delegated to a client (the code
//! flow) would make admin power depend on what a user consented to at some client, and
//! on that user's session; an operator's automation is a client of its own. So the rule
//! is the Shared Signals receivers' (`tokens::live::own_client_token`), plus the scope.

use super::problem::{ApiError, ADMIN_SCOPE};
use crate::domain::client::ClientId;
use crate::http::bearer::bearer_token;
use crate::storage::Storage;
use crate::tokens::live::own_client_token;
use crate::tokens::TokenIssuer;
use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// The authenticated admin client: the actor of every change it makes.
pub struct AdminCaller {
    pub client_id: ClientId,
}

impl FromRequest for AdminCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = bearer_token(&req)?;
            let (Some(storage), Some(issuer)) =
                (req.app_data::<Data<dyn Storage>>(), req.app_data::<Data<TokenIssuer>>())
            else {
                return Err(ApiError::Unexpected(anyhow::anyhow!("the token issuer is not configured")));
            };
            let (client_id, claims) =
                own_client_token(token, &***storage, issuer).await?.map_err(ApiError::InvalidToken)?;
            if !claims.scope.contains(ADMIN_SCOPE) {
                return Err(ApiError::InsufficientScope);
            }
            // The token's scope is what the client held when it was issued; an operator who
            // takes `tessera:admin` away (PATCH of the client's scope) must not have to wait
            // for the token to expire, so the client's current registration decides too.
            let client = storage.find_client(&client_id).await?;
            if !client.is_some_and(|c| c.scopes.contains(ADMIN_SCOPE)) {
                return Err(ApiError::InsufficientScope);
            }
            Ok(Self { client_id })
        })
    }
}
