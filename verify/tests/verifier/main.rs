//! Integration tests of `tessera-verify`: one binary, so the workspace links it once.

mod against_tessera;
mod extractor;
mod key_refresh;
mod support;
mod verification;
