//! The checks every login-page form post starts with, as an extractor.

use crate::authorization::pages::PageError;
use crate::authorization::session::csrf_cookie_name;
use crate::authorization::FlowSettings;
use crate::http::form::FormParams;
use actix_web::dev::Payload;
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
        let cookie_name = req.app_data::<Data<FlowSettings>>().map(|settings| csrf_cookie_name(settings));
        let cookie = cookie_name.and_then(|name| req.cookie(name)).map(|c| c.value().to_owned());
        let params = FormParams::from_request(req, payload);
        Box::pin(async move {
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
