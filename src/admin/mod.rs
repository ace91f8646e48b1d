//! Administration: the one service layer behind both the operator commands (`cli`) and
//! the admin REST API (`api`, under `/admin/v1/`). Each operation is written once here,
//! with typed inputs (`NewClient`, `ClientPatch`…), typed views (serialised by the CLI's
//! `--json` and by the API alike) and one error, [`ServiceError`]; the surfaces parse
//! arguments or requests and render results, nothing more.
//!
//! Its layer sits above `oauth`: a client registration is checked with the same JWK Set
//! and `jwks_uri` rules (`oauth::client_keys`) that `private_key_jwt` authentication later
//! relies on, and the API verifies its callers' tokens with `tokens`. Nothing below
//! imports it; `cli` and `startup` do.

pub mod api;
pub mod clients;
mod error;
pub mod keys;
pub mod sessions;
pub mod streams;
pub mod users;

pub use error::ServiceError;

/// One page of a list in a stable order, and the last item's key when more follow.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The key to continue after (the API wraps it in an opaque cursor).
    pub next: Option<String>,
}
