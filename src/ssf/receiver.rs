//! Who is calling: a receiver is a client of this issuer, authenticated by an access
//! token it got with client credentials (the CAEP interoperability profile §2.7). All
//! management operations take `ssf.manage`, reads `ssf.read` as well (§2.7.2); a receiver
//! sees and changes only its own streams (SSF §8.1).

use super::error::SsfError;
use crate::domain::client::ClientId;
use crate::domain::signals::{parse_stream_id, Stream};
use crate::http::bearer::bearer_token;
use crate::storage::Storage;
use crate::tokens::live::own_client_token;
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

    /// The receiver's stream `stream_id`; an id that cannot be one (control characters, too
    /// long) is as unknown as a missing stream rather than a query the database refuses.
    pub async fn find_stream(&self, storage: &dyn Storage, stream_id: &str) -> Result<Stream, SsfError> {
        let Ok(stream_id) = parse_stream_id(stream_id) else { return Err(SsfError::NotFound) };
        self.owns(storage.find_stream(stream_id).await?)
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
            let (client_id, claims) =
                own_client_token(token, &***storage, issuer).await?.map_err(SsfError::InvalidToken)?;
            Ok(Self { client_id, can_manage: claims.scope.contains(MANAGE), can_read: claims.scope.contains(READ) })
        })
    }
}
