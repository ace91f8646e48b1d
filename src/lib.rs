//! Tessera: an OAuth 2.0 / OpenID Connect authorization server.
//!
//! `main.rs` parses the command line and dispatches; everything else lives here so
//! the integration tests can start the real server in-process.
//!
//! # Layers
//!
//! Dependencies point one way. Each line is a layer; a module imports only from the
//! layers below its own, never from beside or above it (`oauth` and `login` both build on
//! `authorization` and never import each other). `.ci/check-layers` reads the block
//! below and fails CI on any import against it.
//!
//! ```text
//! cli
//! startup
//! admin
//! oauth login ssf housekeeping
//! authorization
//! tokens signals
//! keys
//! storage
//! domain
//! ```
//!
//! Utilities, usable from every layer above `domain` and importing only `domain` and each
//! other: `audit` `config` `clock` `http` `metrics` `password` `private_files` `telemetry`
//!
//! `domain` imports neither actix nor sqlx; `keys` and `tokens` import no actix.

pub mod admin;
pub mod audit;
pub mod authorization;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod housekeeping;
pub mod http;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod oauth;
pub mod password;
pub mod private_files;
pub mod signals;
pub mod ssf;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tokens;
