//! Requests Tessera makes to URLs that others registered (Shared Signals push endpoints),
//! guarded against server-side request forgery: a receiver must not be able to make
//! Tessera reach its own network (the cloud metadata service at 169.254.169.254, an
//! admin port on localhost, a database on 10.0.0.5).
//!
//! Two checks, because one is not enough:
//! - when a URL is registered ([`OutboundPolicy::check_url`]): https only (http to a
//!   loopback host in development), and an IP-literal host must be public;
//! - when a request is sent: every address a host name resolves to is checked by the DNS
//!   resolver the client uses ([`GuardedResolver`]), so a name that resolved to a public
//!   address at registration and to 127.0.0.1 later (DNS rebinding) is refused then.
//!   Redirects are not followed (a 3xx is an answer, not a new request), and every request
//!   is bounded in time.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// Which destinations outbound requests may reach besides the public internet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Loopback addresses (127.0.0.0/8, ::1) and plain http to them: development and tests.
    pub allow_loopback: bool,
    /// Private, shared and link-local ranges (RFC 1918, RFC 6598, RFC 4193, 169.254/16):
    /// receivers inside the operator's own network.
    pub allow_private: bool,
}

/// Why a URL or an address is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL must use https (plain http only to a loopback host, when allowed)")]
    NotHttps,
    #[error("the URL must not carry credentials or a fragment")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host is this machine (loopback), which is not allowed by the configuration")]
    Loopback,
    #[error("the address {0} is not public and not allowed by the configuration")]
    Address(IpAddr),
}

/// What kind of destination an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    Public,
    Loopback,
    Private,
    /// Never: unspecified, multicast, broadcast, reserved.
    Never,
}

fn reach(ip: IpAddr) -> Reach {
    match ip.to_canonical() {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => reach_v6(v6),
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || a == 0 || a >= 240 {
        Reach::Never
    } else if ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
    {
        // RFC 1918, 169.254/16 (where cloud metadata services answer), RFC 6598 shared space,
        // RFC 6890's 192.0.0/24 (protocol assignments, DS-Lite and NAT64 discovery) and RFC
        // 2544's 198.18/15 (benchmarking networks, used inside data centres).
        Reach::Private
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    let segments = ip.segments();
    let first = segments[0];
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // RFC 6052 NAT64: a translator on the path turns it into the IPv4 address it
        // embeds (64:ff9b::a9fe:a9fe is 169.254.169.254), so it reaches what that reaches.
        reach_v4(embedded(segments[6], segments[7]))
    } else if first == 0x2002 {
        // RFC 3056 6to4: the IPv4 address of the relay is embedded the same way.
        reach_v4(embedded(segments[1], segments[2]))
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] && (segments[6] != 0 || segments[7] > 1) {
        // RFC 4291 §2.5.5.1 IPv4-compatible addresses (::a.b.c.d): deprecated, but some stacks
        // still reach the IPv4 address they embed (::7f00:1 is 127.0.0.1).
        reach_v4(embedded(segments[6], segments[7]))
    } else if first == 0x2001 && segments[1] == 0 {
        // RFC 4380 Teredo: a tunnel to an IPv4 address obfuscated in the address; no
        // receiver needs one, and where it leads cannot be told from here.
        Reach::Never
    } else if first == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        // RFC 8215: NAT64 prefixes for local use, which translate into the local network.
        Reach::Private
    } else if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_unspecified() || ip.is_multicast() {
        Reach::Never
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0 {
        // Unique local (RFC 4193), link-local, and the deprecated site-local fec0::/10
        // (RFC 3879), which old networks still route internally.
        Reach::Private
    } else {
        Reach::Public
    }
}

impl OutboundPolicy {
    /// Whether requests may go to `ip`.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refused> {
        let allowed = match reach(ip) {
            Reach::Public => true,
            Reach::Loopback => self.allow_loopback,
            Reach::Private => self.allow_private,
            Reach::Never => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused::Address(ip))
        }
    }

    /// Whether `url` may be registered as a destination: https (or http to a loopback host
    /// when loopback is allowed), no userinfo or fragment, and an IP-literal host that the
    /// policy allows. Host names are checked when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(Refused::Credentials);
        }
        let host = url.host().ok_or(Refused::NoHost)?;
        let literal = match host {
            Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
            Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
            Host::Domain(_) => None,
        };
        // RFC 6761 §6.3: `localhost` and names under it are the loopback interface.
        let is_localhost_name = |name: &str| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        };
        let is_loopback_host = match (&host, literal) {
            (_, Some(ip)) => reach(ip) == Reach::Loopback,
            (Host::Domain(name), None) => is_localhost_name(name),
            _ => false,
        };
        if is_loopback_host && !self.allow_loopback {
            return Err(Refused::Loopback);
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback && is_loopback_host => {}
            _ => return Err(Refused::NotHttps),
        }
        match literal {
            Some(ip) => self.check_address(ip),
            None => Ok(()),
        }
    }

    /// An HTTP client that enforces this policy on every address it connects to, follows no
    /// redirect, and gives up after `timeout`.
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { policy: *self }))
            .redirect(reqwest::redirect::Policy::none())
            // No proxy from the environment (`HTTPS_PROXY`, `ALL_PROXY`): a proxy resolves
            // names itself, past the guarded resolver, and would reach what it refuses.
            .no_proxy()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Resolves host names with the system resolver and keeps only the addresses the policy
/// allows; none left is a connection error. reqwest does not consult the resolver for an
/// IP-literal host, which is why [`OutboundPolicy::check_url`] checks those (and the
/// sender checks them again before each request).
struct GuardedResolver {
    policy: OutboundPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|addr| policy.check_address(addr.ip()).is_ok()).collect();
            if allowed.is_empty() {
                let reason = match resolved.first() {
                    Some(addr) => Refused::Address(addr.ip()).to_string(),
                    None => "the name did not resolve".to_owned(),
                };
                return Err(format!("{host}: {reason}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn only_public_addresses_by_default() {
        let strict = OutboundPolicy::default();
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822", "2002:5db8:d822::1"] {
            assert_eq!(strict.check_address(ip.parse().unwrap()), Ok(()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::a00:5",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.254",
            "::7f00:1",
            "::a9fe:a9fe",
            "::0.0.1.0",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
        ] {
            assert!(strict.check_address(ip.parse().unwrap()).is_err(), "{ip}");
        }
    }

    #[test]
    fn loopback_and_private_ranges_only_when_allowed() {
        let dev = OutboundPolicy { allow_loopback: true, allow_private: false };
        assert!(dev.check_address("127.0.0.1".parse().unwrap()).is_ok());
        assert!(dev.check_address("10.0.0.1".parse().unwrap()).is_err());
        let internal = OutboundPolicy { allow_loopback: false, allow_private: true };
        assert!(internal.check_address("10.0.0.1".parse().unwrap()).is_ok());
        assert!(internal.check_address("127.0.0.1".parse().unwrap()).is_err());
        let all = OutboundPolicy { allow_loopback: true, allow_private: true };
        assert!(all.check_address("0.0.0.0".parse().unwrap()).is_err(), "never the unspecified address");
    }

    #[test]
    fn urls_must_be_https_except_to_loopback_in_development() {
        let strict = OutboundPolicy::default();
        assert_eq!(strict.check_url(&url("https://receiver.example.com/events")), Ok(()));
        assert_eq!(strict.check_url(&url("http://receiver.example.com/events")), Err(Refused::NotHttps));
        assert_eq!(strict.check_url(&url("http://127.0.0.1:9000/events")), Err(Refused::Loopback));
        assert!(strict.check_url(&url("https://127.0.0.1/events")).is_err(), "a loopback literal");
        assert_eq!(strict.check_url(&url("https://localhost/events")), Err(Refused::Loopback));
        assert_eq!(strict.check_url(&url("https://api.LocalHost./events")), Err(Refused::Loopback));
        assert!(strict.check_url(&url("https://[::ffff:10.0.0.1]/events")).is_err());
        assert_eq!(strict.check_url(&url("https://user:pw@receiver.example.com/")), Err(Refused::Credentials));
        assert_eq!(strict.check_url(&url("ftp://receiver.example.com/")), Err(Refused::NotHttps));
        let dev = OutboundPolicy { allow_loopback: true, allow_private: false };
        assert_eq!(dev.check_url(&url("http://127.0.0.1:9000/events")), Ok(()));
        assert_eq!(dev.check_url(&url("http://localhost:9000/events")), Ok(()));
        assert_eq!(dev.check_url(&url("http://receiver.example.com/events")), Err(Refused::NotHttps));
    }

    #[tokio::test]
    async fn the_resolver_drops_addresses_the_policy_refuses() {
        let strict = GuardedResolver { policy: OutboundPolicy::default() };
        let refused = strict.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err(), "localhost resolves to loopback only");
        let dev = GuardedResolver { policy: OutboundPolicy { allow_loopback: true, allow_private: false } };
        let addrs: Vec<SocketAddr> = dev.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
