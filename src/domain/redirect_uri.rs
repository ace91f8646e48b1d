//! Redirect URIs: which may be registered (RFC 6749 §3.1.2, RFC 8252 §7), and matching
//! by exact string comparison (RFC 9700 §4.1.3), except that a registered loopback URI
//! matches any port (RFC 8252 §7.3), because native apps bind an ephemeral port at run time.

use super::InvalidParameter;
use url::{Host, Url};

/// Schemes no redirect may use, whatever the operator allows: the browser does not deliver
/// the code to an app but runs (`javascript`, `vbscript`), renders (`data`, `blob`,
/// `about`) or reads (`file`) it, in a page reached from Tessera.
const DANGEROUS_SCHEMES: [&str; 6] = ["javascript", "data", "vbscript", "file", "blob", "about"];

/// Validates a redirect URI (or post-logout redirect URI) at registration and returns it
/// unchanged, since requests must then repeat it byte for byte.
///
/// - It is an absolute URI without a fragment (RFC 6749 §3.1.2), without userinfo (RFC 3986
///   §3.2.1 deprecates it; `https://app.example.com@evil.example/` misleads readers), and
///   without whitespace or control characters, which URL parsers strip or trim, so that
///   ` javascript:` or `java\tscript:` cannot slip past the scheme check.
/// - `https` is allowed (RFC 6749 §3.1.2.1).
/// - `http` is allowed to a loopback IP literal, for native apps (RFC 8252 §7.3; `localhost`
///   is not one, §8.3), and elsewhere only with `allow_insecure_http`: a code sent in clear
///   can be read on the way.
/// - A private-use scheme of a native app is allowed when it is a reverse domain name,
///   with at least one `.` (RFC 8252 §7.1, e.g. `com.example.app:/oauth2redirect`).
/// - Every other scheme is refused, [`DANGEROUS_SCHEMES`] always.
pub fn parse_registered(raw: &str, allow_insecure_http: bool) -> Result<String, InvalidParameter> {
    let invalid = |reason: String| Err(InvalidParameter::new("redirect_uri", reason));
    if raw.is_empty() || raw.len() > 2048 {
        return invalid("must be 1 to 2048 characters".into());
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("must not contain whitespace or control characters".into());
    }
    let Ok(url) = Url::parse(raw) else {
        return invalid("must be an absolute URI (RFC 6749 §3.1.2)".into());
    };
    let scheme = url.scheme();
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return invalid(format!("the `{scheme}:` scheme is never allowed"));
    }
    if url.fragment().is_some() {
        return invalid("must not have a fragment (RFC 6749 §3.1.2)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not contain a user name or password (RFC 3986 §3.2.1)".into());
    }
    match scheme {
        "https" => Ok(raw.to_owned()),
        "http" if is_loopback_ip(&url) || allow_insecure_http => Ok(raw.to_owned()),
        "http" => invalid(
            "plain http is allowed only to a loopback IP literal such as http://127.0.0.1/ or http://[::1]/ \
             (RFC 8252 §7.3); use https, or pass --allow-insecure-http to allow it anyway"
                .into(),
        ),
        private if is_reverse_domain(private) => Ok(raw.to_owned()),
        other => invalid(format!(
            "the `{other}:` scheme is not allowed: use https, http to a loopback IP, or a native app's \
             private-use scheme in reverse-domain form such as com.example.app (RFC 8252 §7.1)"
        )),
    }
}

/// `com.example.app`: two or more non-empty labels (RFC 8252 §7.1).
fn is_reverse_domain(scheme: &str) -> bool {
    scheme.contains('.') && scheme.split('.').all(|label| !label.is_empty())
}

/// An IP literal of the loopback interface (RFC 8252 §7.3); never a name, not even
/// `localhost`, which a resolver may send elsewhere (§8.3).
fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Is `requested` allowed by the `registered` list?
pub fn is_registered(requested: &str, registered: &[String]) -> bool {
    registered.iter().any(|r| r == requested || loopback_matches(requested, r))
}

fn loopback_matches(requested: &str, registered: &str) -> bool {
    let (Ok(requested), Ok(registered)) = (Url::parse(requested), Url::parse(registered)) else {
        return false;
    };
    let is_loopback = |u: &Url| u.scheme() == "http" && is_loopback_ip(u);
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
    use proptest::prelude::*;

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

    fn refusal(raw: &str, allow_insecure_http: bool) -> String {
        match parse_registered(raw, allow_insecure_http) {
            Ok(uri) => panic!("`{raw}` was accepted as {uri}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn https_loopback_http_and_private_use_schemes_are_registered_unchanged() {
        for uri in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?tenant=a",
            "HTTPS://App.Example.com/cb",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:3000/callback",
            "http://[::1]/cb",
            "com.example.app:/oauth2redirect/example-provider",
            "com.example.app://callback",
        ] {
            assert_eq!(parse_registered(uri, false).as_deref(), Ok(uri), "{uri}");
        }
    }

    #[test]
    fn dangerous_schemes_are_refused_even_with_the_insecure_http_flag() {
        for uri in [
            "javascript:alert(document.domain)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "blob:https://app.example.com/0b8d3e1c",
            "about:blank",
        ] {
            assert!(refusal(uri, true).contains("is never allowed"), "{uri}");
        }
    }

    #[test]
    fn plain_http_elsewhere_than_a_loopback_ip_needs_the_flag() {
        for uri in ["http://app.example.com/cb", "http://localhost:3000/cb", "http://10.0.0.7/cb"] {
            assert!(refusal(uri, false).contains("--allow-insecure-http"), "{uri}");
            assert_eq!(parse_registered(uri, true).as_deref(), Ok(uri), "{uri}");
        }
    }

    #[test]
    fn fragments_userinfo_relative_and_unknown_schemes_are_refused() {
        assert!(refusal("https://app.example.com/cb#x", true).contains("fragment"));
        assert!(refusal("https://app.example.com/cb#", true).contains("fragment"));
        assert!(refusal("https://app.example.com@evil.example/cb", true).contains("user name"));
        assert!(refusal("https://user:pw@app.example.com/cb", true).contains("user name"));
        assert!(refusal("http://u@127.0.0.1/cb", true).contains("user name"));
        assert!(refusal("/callback", true).contains("absolute"));
        assert!(refusal("", true).contains("1 to 2048"));
        assert!(refusal(&format!("https://app.example.com/{}", "a".repeat(2048)), true).contains("1 to 2048"));
        for uri in ["myapp:/cb", "ftp://files.example.com/", "wss://app.example.com/", "com.:/cb", ".com.app:/cb"] {
            assert!(parse_registered(uri, true).is_err(), "{uri}");
        }
        assert!(refusal("myapp:/cb", true).contains("RFC 8252 §7.1"));
    }

    /// What `url` does with the usual tricks, which is what browsers (WHATWG URL) do too:
    /// case and surrounding spaces do not change the scheme, tabs and newlines are
    /// removed anywhere, and a percent-encoded scheme is no scheme at all.
    #[test]
    fn url_parsing_of_scheme_tricks() {
        assert_eq!(Url::parse("JavaScript:alert(1)").unwrap().scheme(), "javascript");
        assert_eq!(Url::parse(" javascript:alert(1)").unwrap().scheme(), "javascript");
        assert_eq!(Url::parse("\u{0}javascript:alert(1)").unwrap().scheme(), "javascript");
        assert_eq!(Url::parse("java\tscr\nipt:alert(1)").unwrap().scheme(), "javascript");
        assert_eq!(Url::parse("java%73cript:alert(1)"), Err(url::ParseError::RelativeUrlWithoutBase));
        // So the first is refused by its scheme, the next three for their characters
        // before the scheme is even looked at, and the last as not absolute.
        assert!(refusal("JavaScript:alert(1)", true).contains("never allowed"));
        for uri in [" javascript:alert(1)", "\u{0}javascript:alert(1)", "java\tscr\nipt:alert(1)"] {
            assert!(refusal(uri, true).contains("whitespace or control"), "{uri:?}");
        }
        assert!(refusal("java%73cript:alert(1)", true).contains("absolute"));
    }

    /// Loopback hosts, as they appear in a URI.
    const LOOPBACK_HOSTS: [&str; 2] = ["127.0.0.1", "[::1]"];

    /// `/a/b-c`: segments without `.`, so no two different paths normalise alike.
    fn path() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-z0-9_-]{0,6}", 1..4).prop_map(|segments| format!("/{}", segments.join("/")))
    }

    fn query() -> impl Strategy<Value = String> {
        proptest::option::of("[a-z0-9=&]{0,8}").prop_map(|q| q.map(|q| format!("?{q}")).unwrap_or_default())
    }

    /// Registered-looking URIs of every kind, loopback ones included.
    fn uri() -> impl Strategy<Value = String> {
        let host = prop_oneof![
            Just("app.example.com".to_owned()),
            Just("App.example.com".to_owned()),
            Just("127.0.0.1".to_owned()),
            Just("[::1]".to_owned()),
            Just("localhost".to_owned()),
        ];
        let scheme = prop_oneof![Just("https"), Just("http"), Just("HTTP"), Just("com.example.app")];
        let port = proptest::option::of(prop_oneof![Just(80u16), Just(443), any::<u16>()])
            .prop_map(|p| p.map(|p| format!(":{p}")).unwrap_or_default());
        let fragment = proptest::option::of("[a-z]{0,3}").prop_map(|f| f.map(|f| format!("#{f}")).unwrap_or_default());
        (scheme, host, port, path(), query(), fragment)
            .prop_map(|(s, h, p, path, q, f)| format!("{s}://{h}{p}{path}{q}{f}"))
    }

    /// Does the `url` crate see a loopback http URI here (the only kind matched loosely)?
    fn is_loopback_http(raw: &str) -> bool {
        Url::parse(raw).is_ok_and(|u| u.scheme() == "http" && is_loopback_ip(&u))
    }

    /// `uri` itself or a variant that a lenient comparison would take for it: one letter's
    /// case flipped, one letter percent-encoded, or a `/`, `?`, `#` or default port added.
    fn near_miss(uri: &str, how: usize, at: prop::sample::Index) -> String {
        let letters: Vec<usize> = uri.char_indices().filter(|(_, c)| c.is_ascii_alphabetic()).map(|(i, _)| i).collect();
        let letter = letters[at.index(letters.len())]; // every generated URI has a scheme
        let (before, after) = uri.split_at(letter);
        let (c, rest) = after.split_at(1);
        match how {
            0 => uri.to_owned(),
            1 => {
                let flipped = if c == c.to_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
                format!("{before}{flipped}{rest}")
            }
            2 => format!("{before}%{:02X}{rest}", c.as_bytes()[0]),
            3 => format!("{uri}/"),
            4 => format!("{uri}?"),
            5 => format!("{uri}#"),
            _ => uri.replacen("app.example.com", "app.example.com:443", 1),
        }
    }

    /// A dangerous scheme dressed up: random case, and maybe a percent-encoded letter, a
    /// leading control or space character, or a tab or newline inside.
    fn disguised_dangerous_uri() -> impl Strategy<Value = String> {
        let scheme = proptest::sample::select(DANGEROUS_SCHEMES.to_vec());
        let prefix = proptest::sample::select(vec!["", " ", "\t", "\n", "\r", "\u{0}", "\u{b}", "\u{c}", "\u{1f}"]);
        let inner = proptest::sample::select(vec!["", "\t", "\n", "\r"]);
        let rest = proptest::sample::select(vec![
            ":alert(1)",
            "://app.example.com/cb",
            ":text/html,<script>alert(1)</script>",
            ":///etc/passwd",
            ":https://app.example.com/uuid",
            ":blank",
        ]);
        (
            scheme,
            proptest::collection::vec(any::<bool>(), 10),
            prefix,
            inner,
            any::<prop::sample::Index>(),
            any::<bool>(),
            rest,
        )
            .prop_map(|(scheme, upper, prefix, inner, at, encode, rest)| {
                let mut chars: Vec<String> = scheme
                    .chars()
                    .zip(upper.iter().cycle())
                    .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c }.to_string())
                    .collect();
                let at = at.index(chars.len());
                if encode {
                    chars[at] = format!("%{:02X}", chars[at].as_bytes()[0]);
                }
                chars.insert(at, inner.to_owned());
                format!("{prefix}{}{rest}", chars.concat())
            })
    }

    proptest! {
        #[test]
        fn a_registered_uri_always_matches_itself(list in proptest::collection::vec(uri(), 1..5), pick in any::<prop::sample::Index>()) {
            let chosen = list[pick.index(list.len())].clone();
            prop_assert!(is_registered(&chosen, &list));
        }

        #[test]
        fn a_uri_other_than_loopback_http_matches_only_byte_for_byte(
            list in proptest::collection::vec(uri(), 1..5),
            unrelated in uri(),
            pick in any::<prop::sample::Index>(),
            how in 0..7usize,
            at in any::<prop::sample::Index>(),
        ) {
            let near_miss = near_miss(&list[pick.index(list.len())], how, at);
            for requested in [unrelated, near_miss] {
                if !is_loopback_http(&requested) {
                    prop_assert_eq!(is_registered(&requested, &list), list.contains(&requested), "{}", requested);
                }
            }
        }

        #[test]
        fn a_loopback_registration_matches_any_port_and_nothing_else(
            host in proptest::sample::select(LOOPBACK_HOSTS.to_vec()),
            path in path(),
            query in query(),
            port in any::<u16>(),
            other_host in proptest::sample::select(vec!["127.0.0.1", "127.0.0.2", "[::1]", "localhost", "app.example.com"]),
            other_path in path(),
            other_query in query(),
        ) {
            let list = vec![format!("http://{host}{path}{query}")];
            let same = format!("http://{host}:{port}{path}{query}");
            prop_assert!(is_registered(&same, &list), "{} must match {:?}", same, list);
            let mut others = vec![
                format!("https://{host}:{port}{path}{query}"),
                format!("http://{host}:{port}{path}{query}#x"),
                format!("http://u@{host}:{port}{path}{query}"),
            ];
            if other_path != path {
                others.push(format!("http://{host}:{port}{other_path}{query}"));
            }
            if other_query != query {
                others.push(format!("http://{host}:{port}{path}{other_query}"));
            }
            if other_host != host {
                others.push(format!("http://{other_host}:{port}{path}{query}"));
            }
            for other in others {
                prop_assert!(!is_registered(&other, &list), "{} must not match {:?}", other, list);
            }
        }

        #[test]
        fn a_dangerous_scheme_is_never_registered(raw in disguised_dangerous_uri(), allow_insecure_http in any::<bool>()) {
            prop_assert!(parse_registered(&raw, allow_insecure_http).is_err(), "{:?} was accepted", raw);
        }

        #[test]
        fn whatever_is_registered_has_an_allowed_scheme(raw in prop_oneof![disguised_dangerous_uri(), uri(), "\\PC{0,40}"]) {
            if let Ok(uri) = parse_registered(&raw, true) {
                prop_assert_eq!(&uri, &raw);
                let url = Url::parse(&uri).unwrap();
                prop_assert!(!DANGEROUS_SCHEMES.contains(&url.scheme()));
                prop_assert!(["https", "http"].contains(&url.scheme()) || is_reverse_domain(url.scheme()));
                prop_assert!(url.fragment().is_none() && url.username().is_empty() && url.password().is_none());
            }
        }
    }
}
