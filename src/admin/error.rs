//! The one error of the service layer, whichever surface (CLI or HTTP) called it. Each
//! surface renders it its own way: the CLI as a message naming the flag, the API as an
//! RFC 9457 problem naming the field.

use crate::domain::InvalidParameter;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing; `what` names its kind and `id` what was asked for.
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    /// An input was refused; `field` is its name in the API (the CLI maps it to its flag).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// The change contradicts what is stored (a username that is taken, a client without a
    /// secret asked to rotate it).
    #[error("{0}")]
    Conflict(String),
    /// The database or another dependency failed: never the caller's doing.
    #[error("unexpected failure")]
    Unexpected(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field, message: message.into() }
    }

    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { what, id: id.into() }
    }
}

impl From<StorageError> for ServiceError {
    fn from(error: StorageError) -> Self {
        Self::Unexpected(error.into())
    }
}

/// A value parsed by `domain` is refused under the name `field` has here (the domain
/// names the parameter as the protocol does, e.g. `redirect_uri` for one of `redirect_uris`).
pub(crate) fn invalid_as(field: &'static str) -> impl Fn(InvalidParameter) -> ServiceError {
    move |e| ServiceError::invalid(field, e.reason)
}
