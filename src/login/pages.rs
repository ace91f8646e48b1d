//! Server-rendered pages (askama, auto-escaped) and the security headers every page gets.

use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
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
    pub client_name: &'a str,
    pub username: &'a str,
    pub pending: &'a str,
    pub csrf_token: &'a str,
    pub scopes: Vec<ScopeDescription>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage;

/// Asks before logging out when the request has no `id_token_hint`.
#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    /// The request parameters carried through the confirmation form.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The stylesheet, compiled in.
pub const STYLESHEET: &str = include_str!("../../templates/tessera.css");

/// Headers for every HTML page: no inline script, no framing (clickjacking), no
/// referrer (the URL may carry `state`), no caching. `form_target` is the origin a form
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
        .insert_header((REFERRER_POLICY, "no-referrer"))
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

/// An error page (for browser endpoints, where JSON would help nobody).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(status, &ErrorPage { title, message }, None)
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
