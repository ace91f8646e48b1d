//! Integration tests of `tessera-verify`: one binary, so the workspace links it once.
//! What needs the network (`fetch`) or actix-web (`actix`) builds only with that feature;
//! `offline` runs whatever the features.

#[cfg(all(feature = "actix", feature = "fetch"))]
mod dpop;
#[cfg(all(feature = "actix", feature = "fetch"))]
mod extractor;
mod interop;
#[cfg(feature = "fetch")]
mod introspection;
#[cfg(feature = "fetch")]
mod key_refresh;
mod offline;
#[cfg(feature = "revocations")]
mod revocations;
mod support;
#[cfg(feature = "fetch")]
mod verification;
