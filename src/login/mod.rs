//! The login pages: sign-in (`/login`), consent (`/consent`), logout (`/logout`) and the
//! device verification page (`/device`, RFC 8628 §3.3), built on the browser flow in
//! `authorization`.

pub mod consent;
pub mod device;
mod form;
pub mod logout;
pub mod sign_in;
pub mod throttle;

use crate::authorization::pages;
use crate::config::Settings;
use actix_web::web;
use chrono::Duration;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub use form::{check_same_origin, CheckedForm};

/// How password guessing is throttled (`[login]` settings), derived once from `Settings`.
#[derive(Clone)]
pub struct LoginSettings {
    /// Failed checks for one account within `failure_window` before it is locked (a client
    /// IP gets `ThrottleSubject::IP_FACTOR` times as many).
    pub max_failures: u32,
    pub failure_window: Duration,
    /// The first lockout; doubled with each further failure, up to `max_lockout`.
    pub lockout: Duration,
    pub max_lockout: Duration,
    /// Take the client IP from `Forwarded` / `X-Forwarded-For` (behind a proxy only).
    pub trust_forwarded_headers: bool,
    /// Attempts running now, login and device forms together, at most
    /// [`throttle::MAX_ATTEMPTS_IN_FLIGHT`].
    pub attempts_in_flight: Arc<Semaphore>,
}

impl LoginSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_failures: settings.login.max_failures.max(1),
            failure_window: settings.login.failure_window.chrono(),
            lockout: settings.login.lockout.chrono(),
            max_lockout: settings.login.max_lockout.chrono(),
            trust_forwarded_headers: settings.http.trust_forwarded_headers,
            attempts_in_flight: Arc::new(Semaphore::new(throttle::MAX_ATTEMPTS_IN_FLIGHT)),
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(sign_in::post))
        .route("/consent", web::post().to(consent::post))
        .route("/device", web::get().to(device::get))
        .route("/device", web::post().to(device::post))
        .route("/device/decision", web::post().to(device::decide))
        .route("/logout", web::get().to(logout::get))
        .route("/logout", web::post().to(logout::post))
        .route("/static/tessera.css", web::get().to(pages::stylesheet));
}
