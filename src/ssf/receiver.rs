//! Who is calling: a receiver is a client of this issuer, authenticated by an access
//! token it got with client credentials (the CAEP interoperability profile §2.7). All
//! management operations take `ssf.manage`, reads `ssf.read` as well (§2.7.2); a receiver
//! sees and changes only its own streams (SSF §8.1).

use super::error::SsfError;
use crate::domain::client::ClientId;
use crate::domain::signals::Stream;
use crate::http::bearer::bearer_token;
use crate::storage::Storage;
use crate::tokens::live::{bound_jkt, live_access_token};
use crate::tokens::TokenIssuer;
use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

pub const MANAGE: &str = "ssf.manage";
pub const READ: &str = "ssf.read";

/// An authenticated receiver and what its token allows.
pub struct Receiver {
    pub client_id: ClientId,
    can_manage: bool,
    can_read: bool,
}

impl Receiver {
    /// For operations that change a stream.
    pub fn manages(&self) -> Result<(), SsfError> {
        if self.can_manage {
            Ok(())
        } else {
            Err(SsfError::InsufficientScope(MANAGE))
        }
    }

    /// For operations that only read (configuration, status, polling).
    pub fn reads(&self) -> Result<(), SsfError> {
        if self.can_read || self.can_manage {
            Ok(())
        } else {
            Err(SsfError::InsufficientScope(READ))
        }
    }

    /// The stream if it is this receiver's; another's is as unknown as a missing one.
    pub fn owns(&self, stream: Option<Stream>) -> Result<Stream, SsfError> {
        stream.filter(|s| s.receiver == self.client_id).ok_or(SsfError::NotFound)
    }
}

impl FromRequest for Receiver {
    type Error = SsfError;
    type Future = LocalBoxFuture<'static, Result<Self, SsfError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = bearer_token(&req)?;
            let (Some(storage), Some(issuer)) =
                (req.app_data::<Data<dyn Storage>>(), req.app_data::<Data<TokenIssuer>>())
            else {
                return Err(SsfError::Unexpected(anyhow::anyhow!("the token issuer is not configured")));
            };
            let invalid = SsfError::InvalidToken("the access token is invalid, expired or revoked");
            let claims = live_access_token(token, &***storage, issuer).await?.ok_or(invalid)?;
            // RFC 9449 §7.1: a DPoP-bound token is worth nothing without a proof of its key.
            // These endpoints take Bearer tokens only, so a bound one is refused here rather
            // than accepted from whoever holds it.
            if bound_jkt(&claims).is_some() {
                return Err(SsfError::InvalidToken("the access token is DPoP-bound: receivers use Bearer tokens"));
            }
            // A receiver acts for itself: a token from client credentials, meant for this
            // issuer (RFC 9068 §4: the resource server checks `aud`; here, Tessera is it).
            let is_client_token = claims.sid.is_none() && claims.sub == claims.client_id;
            if !is_client_token {
                return Err(SsfError::InvalidToken("a receiver authenticates with a client credentials token"));
            }
            if !claims.aud.iter().any(|aud| aud == issuer.issuer.as_str()) {
                return Err(SsfError::InvalidToken("the access token is not meant for this issuer"));
            }
            let client_id = ClientId::parse(&claims.client_id)
                .map_err(|_| SsfError::InvalidToken("the access token names no valid client"))?;
            Ok(Self { client_id, can_manage: claims.scope.contains(MANAGE), can_read: claims.scope.contains(READ) })
        })
    }
}
