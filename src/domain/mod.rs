//! Pure domain types: parsed at the edge, no I/O, no actix, no sqlx.

pub mod authorization;
pub mod client;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh;
pub mod scope;
pub mod secret;
pub mod signals;
pub mod user;

/// A request parameter or CLI argument that did not parse; names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {reason}")]
pub struct InvalidParameter {
    pub name: &'static str,
    pub reason: String,
}

impl InvalidParameter {
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self { name, reason: reason.into() }
    }
}
