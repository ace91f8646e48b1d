//! The refresh token of a first-party single-page app, in a cookie its JavaScript cannot
//! read (`HttpOnly`), sent only to the token endpoint (`Path`) and only by pages of the
//! same site (`SameSite=Strict`, RFC 6265bis §5.4.7). A script injected into the app can
//! still use the session while the page is open, but cannot carry the refresh token away.
//!
//! The SPA calls `/token` with `fetch(…, { credentials: 'include' })` from its registered
//! origin, so the answers carry `Access-Control-Allow-Credentials: true` for such clients
//! only (`cors`). A cookie is sent whatever page starts the request, so a refresh that
//! relies on it must prove it comes from the app: its `Origin` is one of the client's web
//! origins and it carries [`CSRF_HEADER`], a header no form or simple request can set
//! (Fetch Standard §4.8: it forces a preflight, which only registered origins pass).

use crate::config::Issuer;
use crate::domain::client::Client;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::ORIGIN;
use actix_web::HttpRequest;

/// The custom header a cookie refresh must carry, with the value `1`.
pub const CSRF_HEADER: &str = "X-Tessera-Refresh";

/// Name, path and `Secure` of the cookie, from the issuer.
pub struct RefreshCookie {
    name: &'static str,
    path: String,
    secure: bool,
}

impl RefreshCookie {
    /// `__Secure-` over https (RFC 6265bis §4.1.3.1; `__Host-` would need `Path=/`); on an
    /// http issuer (loopback development) no prefix and no `Secure`, or the browser would
    /// drop it.
    pub fn for_issuer(issuer: &Issuer) -> Self {
        let secure = issuer.is_https();
        Self {
            name: if secure { "__Secure-tessera_refresh" } else { "tessera_refresh" },
            path: format!("{}/token", issuer.path()),
            secure,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cookie holding `token` (a session cookie: the family's own lifetimes bound it).
    pub fn holding(&self, token: String) -> Cookie<'static> {
        Cookie::build(self.name, token)
            .path(self.path.clone())
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .finish()
    }

    /// A cookie that replaces and expires the refresh cookie.
    pub fn cleared(&self) -> Cookie<'static> {
        let mut cookie = self.holding(String::new());
        cookie.make_removal();
        cookie
    }

    /// The refresh token in the request's cookie, if any.
    pub fn token(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(self.name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Does `req` come from a page of `client`'s app (the CSRF defence of a cookie refresh)?
pub fn from_the_app(req: &HttpRequest, client: &Client) -> bool {
    let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok());
    let marked = req.headers().get(CSRF_HEADER).is_some_and(|v| v.as_bytes() == b"1");
    marked && origin.is_some_and(|origin| client.has_web_origin(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_secure_and_prefixed_over_https_and_scoped_to_the_token_endpoint_below_the_issuer_path() {
        let https = RefreshCookie::for_issuer(&Issuer::parse("https://id.example.com/auth").unwrap());
        let cookie = https.holding("trt_x".into()).to_string();
        assert!(cookie.starts_with("__Secure-tessera_refresh=trt_x"), "{cookie}");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/auth/token"] {
            assert!(cookie.contains(attribute), "{attribute}: {cookie}");
        }
        let http = RefreshCookie::for_issuer(&Issuer::parse("http://127.0.0.1:8080").unwrap());
        let cookie = http.holding("trt_x".into()).to_string();
        assert!(cookie.starts_with("tessera_refresh=trt_x") && !cookie.contains("Secure"), "{cookie}");
        assert!(cookie.contains("Path=/token"), "{cookie}");
        let cleared = https.cleared().to_string();
        assert!(cleared.contains("Max-Age=0") && cleared.contains("Path=/auth/token"), "{cleared}");
    }
}
