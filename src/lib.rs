//! Tessera: an OAuth 2.0 / OpenID Connect authorization server.
//!
//! `main.rs` parses the command line and dispatches; everything else lives here so
//! the integration tests can start the real server in-process.
#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod housekeeping;
pub mod keys;
pub mod login;
pub mod oauth;
pub mod password;
pub mod private_files;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tokens;
