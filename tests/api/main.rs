//! Black-box tests: the real server over HTTP. One binary, so the crate links once.

mod helpers;

mod attacks;
mod authorization_code;
mod authorize_errors;
mod browser_login;
mod cascades;
mod cli;
mod client_cache;
mod client_credentials;
mod code_exchange;
mod crash_safety;
mod discovery;
mod dpop;
mod file_permissions;
mod health;
mod housekeeping;
mod interop;
mod introspection;
mod jwks;
mod key_rotation;
mod logout;
mod refresh_tokens;
mod request_ids;
mod revocation;
mod revocation_events;
mod shared_signals;
mod sign_in;
mod signing_keys;
mod ssf_interop;
mod startup_errors;
mod token_errors;
mod transport_security;
mod userinfo;
mod verify_against_tessera;
mod verify_revocations;
