//! HTTP plumbing every surface shares and none owns: strict form and query parsing, the
//! client's IP address, the request log, and readiness. No protocol rules live here.

pub mod bearer;
pub mod client_ip;
pub mod form;
pub mod outbound;
pub mod readiness;
pub mod request_log;
