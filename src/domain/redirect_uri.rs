//! Redirect URI matching: exact string comparison (RFC 9700 §4.1.3), except that a
//! registered loopback URI matches any port (RFC 8252 §7.3), because native apps bind
//! an ephemeral port at run time.

use url::{Host, Url};

/// Is `requested` allowed by the `registered` list?
pub fn is_registered(requested: &str, registered: &[String]) -> bool {
    registered.iter().any(|r| r == requested || loopback_matches(requested, r))
}

fn loopback_matches(requested: &str, registered: &str) -> bool {
    let (Ok(requested), Ok(registered)) = (Url::parse(requested), Url::parse(registered)) else {
        return false;
    };
    let is_loopback = |u: &Url| {
        u.scheme() == "http"
            && match u.host() {
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                _ => false,
            }
    };
    is_loopback(&requested)
        && is_loopback(&registered)
        && requested.host() == registered.host()
        && requested.path() == registered.path()
        && requested.query() == registered.query()
        && requested.fragment().is_none()
        && requested.username().is_empty()
        && requested.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(uris: &[&str]) -> Vec<String> {
        uris.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_match_only_for_web_uris() {
        let list = registered(&["https://app.example.com/cb"]);
        assert!(is_registered("https://app.example.com/cb", &list));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x=1",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb#f",
        ] {
            assert!(!is_registered(bad, &list), "{bad}");
        }
    }

    #[test]
    fn loopback_matches_any_port() {
        let list = registered(&["http://127.0.0.1/callback", "http://[::1]/cb"]);
        assert!(is_registered("http://127.0.0.1:51234/callback", &list));
        assert!(is_registered("http://[::1]:9000/cb", &list));
        assert!(!is_registered("http://127.0.0.1:51234/other", &list));
        assert!(!is_registered("http://localhost:51234/callback", &list), "localhost is not a loopback literal");
        assert!(!is_registered("https://127.0.0.1:51234/callback", &list));
    }
}
