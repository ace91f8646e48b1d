//! The client's IP address, for login throttling and the per-source bounds on what
//! unauthenticated requests may store.

use actix_web::HttpRequest;
use std::net::{IpAddr, SocketAddr};

/// The peer address, or the proxy-reported one when `trust_forwarded_headers` is set
/// (`http.trust_forwarded_headers`: only behind a proxy that overwrites the headers, or
/// clients could pick their own address).
pub fn client_ip(req: &HttpRequest, trust_forwarded_headers: bool) -> Option<IpAddr> {
    if trust_forwarded_headers {
        if let Some(ip) = req.connection_info().realip_remote_addr() {
            // `realip_remote_addr` may carry a port ("1.2.3.4:5678", "[::1]:80").
            let host = ip.parse::<SocketAddr>().map(|a| a.ip()).or_else(|_| ip.parse::<IpAddr>());
            if let Ok(ip) = host {
                return Some(ip);
            }
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// A client IP as audit events show it: the address, or `unknown` without one.
pub fn shown(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// The network a client IP stands for: the address itself for IPv4, the /64 prefix for
/// IPv6 (a client usually holds a whole /64; counting by address would give each of its
/// 2^64 addresses a budget of its own). An IPv4-mapped IPv6 address is the IPv4 client it
/// maps. `unknown` without an address.
pub fn ip_prefix(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V4(v4)) => v4.to_string(),
        None => "unknown".to_owned(),
    }
}
