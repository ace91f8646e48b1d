//! Pure domain types: parsed at the edge, no I/O, no actix, no sqlx.

pub mod access_token;
pub mod authorization;
pub mod client;
pub mod device;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh;
pub mod scope;
pub mod secret;
pub mod signals;
pub mod user;
pub mod web_origin;

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

/// Checks an identifier presented from outside (a CLI argument, a request): 1 to 255 bytes
/// without control characters. Tessera generates UUIDs; anything else is refused before it
/// reaches a lookup or a log line.
fn parse_identifier(name: &'static str, raw: &str) -> Result<String, InvalidParameter> {
    if raw.is_empty() || raw.len() > 255 || raw.chars().any(char::is_control) {
        return Err(InvalidParameter::new(name, "must be 1 to 255 bytes without control characters"));
    }
    Ok(raw.to_owned())
}
