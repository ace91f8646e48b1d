//! Server-rendered pages (askama, auto-escaped), the security headers every page gets,
//! and [`PageError`], the error of every browser endpoint: an HTML page, never JSON.

use super::FlowSettings;
use crate::http::form::FormError;
use crate::storage::StorageError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;
use std::borrow::Cow;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// The issuer's path (`FlowSettings::base_path`): links and form actions start with it.
    pub base: &'a str,
    pub client_name: &'a str,
    pub pending: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub struct ScopeDescription {
    pub name: String,
    pub description: &'static str,
    pub is_known: bool,
}

impl ScopeDescription {
    /// Plain words for a scope (OpenID Connect Core §5.4 for the standard ones).
    pub fn of(name: &str) -> Self {
        let description = match name {
            "openid" => Some("Sign you in with your Tessera account"),
            "profile" => Some("See your name and username"),
            "email" => Some("See your e-mail address"),
            "offline_access" => Some("Stay connected when you are not using it"),
            _ => None,
        };
        Self { name: name.to_owned(), description: description.unwrap_or("Access"), is_known: description.is_some() }
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub base: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub pending: &'a str,
    pub csrf_token: &'a str,
    pub scopes: Vec<ScopeDescription>,
}

/// The device verification page's code form (RFC 8628 §3.3).
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub base: &'a str,
    pub username: &'a str,
    pub csrf_token: &'a str,
    /// Prefilled from `verification_uri_complete`, or what was typed.
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

/// Approve or deny the device's request: who asks, for what, and the code to compare.
#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub base: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    /// `XXXX-XXXX`, for the person to compare with the device's screen (§5.4).
    pub user_code: &'a str,
    pub pending: &'a str,
    pub csrf_token: &'a str,
    pub scopes: Vec<ScopeDescription>,
}

/// The end of the device verification: approved or denied.
#[derive(Template)]
#[template(path = "device_done.html")]
pub struct DeviceDonePage<'a> {
    pub base: &'a str,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub base: &'a str,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage<'a> {
    pub base: &'a str,
}

/// Asks before logging out when the request has no `id_token_hint`.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub base: &'a str,
    /// The request parameters carried through the confirmation form.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The stylesheet, compiled in.
pub const STYLESHEET: &str = include_str!("../../templates/tessera.css");

/// Headers for every HTML page: no inline script, no framing (clickjacking), no
/// referrer to other origins (the URL may carry `state`), no caching. `same-origin`, not
/// `no-referrer`: under `no-referrer` browsers send `Origin: null` with the pages' own
/// form posts, and the forms check `Origin` (`login::check_same_origin`). `base.html`'s
/// `<meta name="referrer">` says the same, and must. `form_target` is the origin a form
/// may redirect to after submission (CSP `form-action` also governs those redirects).
pub fn secure_html(status: StatusCode, form_target: Option<&str>) -> HttpResponseBuilder {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((
            CONTENT_SECURITY_POLICY,
            format!("default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .insert_header((X_FRAME_OPTIONS, "DENY"))
        .insert_header((REFERRER_POLICY, "same-origin"))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((CACHE_CONTROL, "no-store"));
    response
}

/// Renders `page` with the security headers.
pub fn render(status: StatusCode, page: &impl Template, form_target: Option<&str>) -> HttpResponse {
    match page.render() {
        Ok(body) => secure_html(status, form_target).body(body),
        Err(error) => {
            tracing::error!(error = %error, "rendering a page failed");
            secure_html(StatusCode::INTERNAL_SERVER_ERROR, None).body("Internal error")
        }
    }
}

/// An error page (for browser endpoints, where JSON would help nobody); `base` is the
/// issuer's path, which its stylesheet link starts with.
pub fn error_page(base: &str, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(status, &ErrorPage { base, title, message }, None)
}

type Text = Cow<'static, str>;

/// The error of the browser endpoints (`/authorize` before the client is verified, the
/// login, consent and logout pages): rendered as `error.html` with the page headers. The
/// texts are for the person in front of the browser; causes go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A request the page cannot act on: `title` and `message` say why (400).
    #[error("{title}: {message}")]
    BadRequest { title: &'static str, message: Text },
    /// A form without its `pending` or `csrf_token` field (400).
    #[error("the form is missing its security token")]
    MissingToken,
    /// The sign-in or consent request is gone: expired, used, or not this session's (400).
    #[error("the sign-in request has expired")]
    Expired,
    /// The form's CSRF token does not match (403).
    #[error("the form's security token does not match")]
    Forged,
    /// The browser says another site sent the form (`Origin`, `Sec-Fetch-Site`) (403).
    #[error("the form was sent from another site")]
    CrossSite,
    /// The body is not a form, or not a readable one (400).
    #[error("the form could not be read")]
    Unreadable,
    /// Shown as "Something went wrong" (500); the cause chain goes to the log only.
    #[error("unexpected failure")]
    Unexpected(#[source] anyhow::Error),
}

impl PageError {
    pub fn bad_request(title: &'static str, message: impl Into<Text>) -> Self {
        Self::BadRequest { title, message: message.into() }
    }

    pub fn unexpected(cause: impl Into<anyhow::Error>) -> Self {
        Self::Unexpected(cause.into())
    }

    fn title_and_message(&self) -> (&str, &str) {
        match self {
            Self::BadRequest { title, message } => (title, message),
            Self::MissingToken => ("Invalid form", "The form is missing its security token."),
            Self::Expired => {
                ("This sign-in request has expired", "Sign-in requests are valid for 15 minutes and only once.")
            }
            Self::Forged => (
                "Invalid form",
                "The form's security token does not match. Go back to the application and start again.",
            ),
            Self::CrossSite => {
                ("Invalid form", "The form was sent from another site. Go back to the application and start again.")
            }
            Self::Unreadable => ("Invalid form", "The form could not be read."),
            Self::Unexpected(_) => ("Something went wrong", "Tessera could not complete the request."),
        }
    }
}

impl From<StorageError> for PageError {
    fn from(error: StorageError) -> Self {
        Self::unexpected(error)
    }
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        Self::Unexpected(error)
    }
}

/// A login or consent post whose body is not a readable form.
impl From<FormError> for PageError {
    fn from(_: FormError) -> Self {
        Self::Unreadable
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Forged | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(cause) = self {
            tracing::error!(error = ?cause, "browser request failed");
        }
        let (title, message) = self.title_and_message();
        // No request here, so no issuer path: `rebase_error_pages` renders the page again
        // with it when the issuer has one, from what is kept in the response's extensions
        // (the error itself may be wrapped in another type by then, `AuthorizeError`).
        let mut response = error_page("", self.status_code(), title, message);
        response.extensions_mut().insert(PathlessErrorPage { title: title.to_owned(), message: message.to_owned() });
        response
    }
}

/// An error page rendered without the issuer's path (`PageError::error_response`).
struct PathlessErrorPage {
    title: String,
    message: String,
}

/// Middleware, for an issuer under a path: renders a [`PageError`]'s page again with the
/// issuer's path, which `ResponseError::error_response` cannot know, so that its
/// stylesheet link points below the path too. Headers set on the way (the request id,
/// HSTS) are set outside this middleware, so none is lost.
pub async fn rebase_error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let page = {
        let extensions = response.response().extensions();
        let settings = response.request().app_data::<Data<FlowSettings>>();
        match (extensions.get::<PathlessErrorPage>(), settings) {
            (Some(page), Some(settings)) => {
                Some(error_page(&settings.base_path, response.status(), &page.title, &page.message))
            }
            _ => None,
        }
    };
    Ok(match page {
        Some(page) => response.into_response(page),
        None => response,
    })
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(STYLESHEET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let html = LoginPage {
            base: "",
            client_name: "<script>x</script>",
            pending: "p",
            csrf_token: "c",
            username: "\"a",
            error: None,
        }
        .render()
        .unwrap();
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("value=\"\"a\""));
    }
}
