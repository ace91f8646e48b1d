//! The answer to the client once `client_id` and `redirect_uri` are verified: a 303 to the
//! redirect URI with a code (RFC 6749 §4.1.2) or an error (§4.1.2.1), always with `state`
//! when the request had one and `iss` (RFC 9207 §2).

use super::pages;
use actix_web::http::header::{CACHE_CONTROL, LOCATION};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use url::Url;

/// Where and how to answer the client. Only built from a redirect URI that was checked
/// against the client's registration (exact match, RFC 9700 §4.1).
#[derive(Clone, Debug)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub issuer: String,
}

impl ClientRedirect {
    fn to(&self, params: &[(&str, &str)]) -> HttpResponse {
        let Ok(mut url) = Url::parse(&self.redirect_uri) else {
            // Registered URIs are validated as absolute URLs when the client is created.
            let issuer = crate::config::Issuer::parse(&self.issuer);
            return pages::error_page(
                issuer.as_ref().map_or("", |issuer| issuer.path()),
                StatusCode::BAD_REQUEST,
                "Invalid redirect URI",
                "The application's redirect URI is not a valid URL.",
            );
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        HttpResponse::SeeOther()
            .insert_header((LOCATION, url.as_str()))
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish()
    }

    /// RFC 6749 §4.1.2.1 error redirect.
    pub fn error(&self, code: &str, description: &str) -> HttpResponse {
        self.to(&[("error", code), ("error_description", description)])
    }

    /// RFC 6749 §4.1.2 authorization response.
    pub fn code(&self, code: &str) -> HttpResponse {
        self.to(&[("code", code)])
    }
}

/// The origin of a redirect URI, for CSP `form-action`.
pub fn origin_of(uri: &str) -> Option<String> {
    Url::parse(uri).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null")
}
