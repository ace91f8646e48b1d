//! Signing keys: generated or imported once, stored encrypted in the database (so every
//! replica signs with the same keys), parsed once into ready-to-use key pairs.

pub mod jwk;
pub mod jws;
pub mod kek;
pub mod refresher;
pub mod rotation;
pub mod signing_keys;

pub use signing_keys::{KeySet, SigningKey, SigningKeys};
