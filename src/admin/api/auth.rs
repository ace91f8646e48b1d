//! Who may call the admin API: a client of this issuer holding an access token it got for
//! itself with client credentials, with the scope `tessera:admin`.
//!
//! Why only client-credentials tokens: a token a user delegated to a client (the code
//! flow) would make admin power depend on what a user consented to at some client, and
//! on that user's session; an operator's automation is a client of its own. So the rule
//! is the Shared Signals receivers' (`tokens::live::own_client_token`), plus the scope.

use super::problem::{ApiError, ADMIN_SCOPE};
use super::{AdminSettings, ApiListener};
use crate::domain::client::ClientId;
use crate::http::bearer::bearer_token;
use crate::http::client_ip;
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
            let authenticated = authenticate(&req).await;
            if let Err(refusal) = &authenticated {
                audit_refusal(&req, refusal);
            }
            authenticated.map_err(|refusal| refusal.error)
        })
    }
}

/// Why a caller was refused, and the client it authenticated as, if it got that far.
struct Refusal {
    error: ApiError,
    client_id: Option<ClientId>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self { error, client_id: None }
    }
}

async fn authenticate(req: &HttpRequest) -> Result<AdminCaller, Refusal> {
    let token = bearer_token(req).map_err(ApiError::from)?;
    let (Some(storage), Some(issuer)) = (req.app_data::<Data<dyn Storage>>(), req.app_data::<Data<TokenIssuer>>())
    else {
        return Err(ApiError::Unexpected(anyhow::anyhow!("the token issuer is not configured")).into());
    };
    let (client_id, claims) =
        own_client_token(token, &***storage, issuer).await.map_err(ApiError::from)?.map_err(ApiError::InvalidToken)?;
    let under_scoped = |client_id: ClientId| Refusal { error: ApiError::InsufficientScope, client_id: Some(client_id) };
    if !claims.scope.contains(ADMIN_SCOPE) {
        return Err(under_scoped(client_id));
    }
    // The token's scope is what the client held when it was issued; an operator who takes
    // `tessera:admin` away (PATCH of the client's scope) must not have to wait for the
    // token to expire, so the client's current registration decides too.
    let client = storage.find_client(&client_id).await.map_err(ApiError::from)?;
    if !client.is_some_and(|c| c.scopes.contains(ADMIN_SCOPE)) {
        return Err(under_scoped(client_id));
    }
    Ok(AdminCaller { client_id })
}

/// An `admin_auth` audit event for a refused caller (README, "Audit events"): a missing,
/// malformed or invalid token, or a client without `tessera:admin`. Internal failures are
/// not refusals and are logged as errors by the response. The token itself never appears.
fn audit_refusal(req: &HttpRequest, refusal: &Refusal) {
    let reason = match &refusal.error {
        ApiError::MissingToken => "missing_token",
        ApiError::BadRequest { .. } => "malformed_authorization",
        ApiError::InvalidToken(_) => "invalid_token",
        ApiError::InsufficientScope => "insufficient_scope",
        ApiError::NotFound(_) | ApiError::Conflict(_) | ApiError::Unexpected(_) => return,
    };
    let on_public =
        req.app_data::<Data<ApiListener>>().is_none_or(|listener| *listener.get_ref() == ApiListener::Public);
    let trust_forwarded_headers =
        on_public && req.app_data::<Data<AdminSettings>>().is_some_and(|a| a.trust_forwarded_headers);
    let ip = client_ip::shown(client_ip::client_ip(req, trust_forwarded_headers));
    match &refusal.client_id {
        Some(client_id) => {
            crate::audit!(warn, "admin_auth", "refused", reason, client_id = %client_id, client_ip = %ip)
        }
        None => crate::audit!(info, "admin_auth", "refused", reason, client_ip = %ip),
    }
}
