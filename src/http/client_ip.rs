//! The client's IP address, for login throttling.

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
