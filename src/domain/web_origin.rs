//! Web origins (RFC 6454 §6.2) a browser app of a client runs on: the `Origin` its
//! cross-origin requests carry (Fetch Standard §3.2), and so what CORS answers name.
//!
//! A client's origins are either registered explicitly or derived from its redirect URIs,
//! as Keycloak does: a single-page app usually receives its code on a page of its own
//! origin, so registering the redirect URI is enough.

use super::InvalidParameter;
use url::{Host, Url};

/// Longest origin: scheme, a 253-byte host name, a port, with room to spare. An `Origin`
/// header longer than this names no client and is not looked up.
pub const MAX_ORIGIN_LEN: usize = 300;

/// An origin as the browser serialises it (RFC 6454 §6.2): `scheme://host[:port]`,
/// lower-case, no default port, no path and no trailing slash. Stored and compared in that
/// form, so a request's `Origin` header matches by exact string comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebOrigin(String);

impl WebOrigin {
    /// Parses a registered origin. `https` always; `http` to a loopback host (`127.0.0.1`,
    /// `[::1]`, `localhost`: browsers treat those as secure contexts, W3C Secure Contexts
    /// §3.2) or, with `allow_insecure_http`, to any host. `*` and `null` are refused: a
    /// wildcard would answer every site, and `null` is what sandboxed frames and `file:`
    /// pages send, so any of them could claim it.
    pub fn parse(raw: &str, allow_insecure_http: bool) -> Result<Self, InvalidParameter> {
        let invalid = |reason: &str| Err(InvalidParameter::new("web_origin", format!("`{raw}` {reason}")));
        if raw == "*" || raw.eq_ignore_ascii_case("null") {
            return invalid("is not allowed: register each origin of the app");
        }
        if raw.is_empty() || raw.len() > MAX_ORIGIN_LEN || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid(&format!("must be 1 to {MAX_ORIGIN_LEN} characters without whitespace"));
        }
        let Ok(url) = Url::parse(raw) else {
            return invalid("must be an origin such as https://app.example.com");
        };
        let serialised = url.origin().ascii_serialization();
        // Only the origin itself: a path, query, user name, trailing slash or explicit
        // default port would never equal what a browser sends.
        if !raw.eq_ignore_ascii_case(&serialised) || url.origin().is_tuple() && raw.ends_with('/') {
            return invalid("must be scheme://host[:port] only (no path, no trailing slash, no default port)");
        }
        match url.scheme() {
            "https" => Ok(Self(serialised)),
            "http" if is_loopback(&url) || allow_insecure_http => Ok(Self(serialised)),
            "http" => invalid(
                "must use https (plain http only to 127.0.0.1, [::1] or localhost, or with --allow-insecure-http)",
            ),
            _ => invalid("must be an https (or loopback http) origin"),
        }
    }

    /// Restores a value stored by Tessera (parsed when it was registered).
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The origins derived from redirect URIs: that of each `https` URI and each `http`
    /// one to a loopback host, without duplicates. A native app's private-use scheme
    /// (`com.example.app:/cb`) has no web origin, nor has plain http elsewhere: a
    /// browser app served in clear gets no CORS answers unless registered explicitly.
    pub fn derive(redirect_uris: &[String]) -> Vec<Self> {
        let mut origins: Vec<Self> = Vec::new();
        for uri in redirect_uris {
            let Ok(url) = Url::parse(uri) else { continue };
            let secure = url.scheme() == "https" || url.scheme() == "http" && is_loopback(&url);
            let origin = Self(url.origin().ascii_serialization());
            if secure && url.origin().is_tuple() && !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        origins
    }
}

impl std::fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_stored_as_browsers_send_them() {
        assert_eq!(WebOrigin::parse("https://app.example", false).unwrap().as_str(), "https://app.example");
        assert_eq!(WebOrigin::parse("HTTPS://App.Example:8443", false).unwrap().as_str(), "https://app.example:8443");
        assert_eq!(WebOrigin::parse("http://127.0.0.1:5173", false).unwrap().as_str(), "http://127.0.0.1:5173");
        assert_eq!(WebOrigin::parse("http://localhost:3000", false).unwrap().as_str(), "http://localhost:3000");
        assert_eq!(WebOrigin::parse("http://[::1]:3000", false).unwrap().as_str(), "http://[::1]:3000");
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for raw in [
            "*",
            "null",
            "NULL",
            "",
            "https://app.example/",
            "https://app.example/path",
            "https://app.example?x=1",
            "https://user@app.example",
            "https://app.example:443",
            "http://app.example",
            "com.example.app:/cb",
            "app.example",
            "ftp://app.example",
            "https://app .example",
        ] {
            assert!(WebOrigin::parse(raw, false).is_err(), "{raw}");
        }
        assert!(WebOrigin::parse(&format!("https://{}.example", "a".repeat(300)), false).is_err());
        assert!(WebOrigin::parse("http://app.example", true).is_ok());
    }

    #[test]
    fn derived_origins_are_those_of_https_and_loopback_redirect_uris() {
        let uris = [
            "https://app.example/callback",
            "https://app.example/other",
            "https://APP.example:8443/cb",
            "http://127.0.0.1:5173/cb",
            "http://intranet.example/cb",
            "com.example.app:/oauth2redirect",
        ]
        .map(String::from);
        let derived: Vec<String> = WebOrigin::derive(&uris).iter().map(|o| o.as_str().to_owned()).collect();
        assert_eq!(derived, ["https://app.example", "https://app.example:8443", "http://127.0.0.1:5173"]);
    }
}
