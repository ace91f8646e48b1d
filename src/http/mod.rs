//! HTTP plumbing every surface shares and none owns: strict form and query parsing, the
//! client's IP address, and the request log. No protocol rules live here.

pub mod bearer;
pub mod client_ip;
pub mod form;
pub mod outbound;
pub mod request_log;
