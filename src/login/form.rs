//! The checks every login-page form post starts with, as an extractor.
//!
//! The double-submit cookie alone is not enough: a sibling host (`evil.example.com` next
//! to `login.example.com`) can plant cookies for the issuer's host, `__Secure-` ones
//! included, with `Domain=` (and under a path issuer, one path's pages can set cookies
//! for another's). So a browser's post must also come from the issuer's own origin, as
//! its `Origin` or, failing that, `Sec-Fetch-Site` header says (Fetch Metadata); a
//! client that sends neither (not a browser) is left to the double submit.

use crate::authorization::pages::PageError;
use crate::authorization::session::csrf_cookie_name;
use crate::authorization::FlowSettings;
use crate::config::Issuer;
use crate::http::form::FormParams;
use actix_web::dev::Payload;
use actix_web::http::header::ORIGIN;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

/// A login or consent form post that passed the first checks: a readable form carrying
/// `pending` (the signed request or the stored request's id) and `csrf_token`, the token
/// matching the CSRF cookie (double submit, compared in constant time). What `pending`
/// names, and whether it was issued with this token, each page checks next.
pub struct CheckedForm {
    pub params: FormParams,
    pub pending: String,
    pub csrf_token: String,
}

impl FromRequest for CheckedForm {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let settings = req.app_data::<Data<FlowSettings>>();
        let is_same_origin = settings.map(|settings| check_same_origin(req, &settings.issuer));
        let cookie_name = settings.map(|settings| csrf_cookie_name(settings));
        let cookie = cookie_name.and_then(|name| req.cookie(name)).map(|c| c.value().to_owned());
        let params = FormParams::from_request(req, payload);
        Box::pin(async move {
            is_same_origin.unwrap_or(Err(PageError::Forged))?;
            let params = params.await?;
            let (Some(pending), Some(csrf_token)) = (params.get("pending"), params.get("csrf_token")) else {
                return Err(PageError::MissingToken);
            };
            let (pending, csrf_token) = (pending.to_owned(), csrf_token.to_owned());
            if !cookie.is_some_and(|cookie| bool::from(cookie.as_bytes().ct_eq(csrf_token.as_bytes()))) {
                return Err(PageError::Forged);
            }
            Ok(Self { params, pending, csrf_token })
        })
    }
}

/// `Ok` unless the browser says the request comes from a page outside the issuer's origin:
/// an `Origin` other than [`Issuer::origin`] (`null` included, as sandboxed frames and
/// some redirects send it), or without `Origin` a `Sec-Fetch-Site` other than
/// `same-origin` (`same-site` is exactly the sibling host). Neither header: not a browser
/// (or a very old one), and the double submit decides.
pub fn check_same_origin(req: &HttpRequest, issuer: &Issuer) -> Result<(), PageError> {
    let headers = req.headers();
    if let Some(origin) = headers.get(ORIGIN) {
        // Browsers serialise the origin in lower case; the issuer is configured text.
        let is_ours = origin.to_str().is_ok_and(|origin| origin.eq_ignore_ascii_case(issuer.origin()));
        return if is_ours { Ok(()) } else { Err(PageError::CrossSite) };
    }
    match headers.get("sec-fetch-site") {
        Some(site) if site.as_bytes() != b"same-origin" => Err(PageError::CrossSite),
        _ => Ok(()),
    }
}
