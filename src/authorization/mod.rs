//! The browser side of the authorization code flow (RFC 6749 §4.1; OpenID Connect Core
//! §3.1.2), as far as `/authorize` and the login pages share it: the request while the
//! person signs in and consents (`pending`), the SSO session (`session`), the decision
//! once the person is known (`decision`), the code (`code`), the answer to the client
//! (`redirect`), and the pages with their error type (`pages`).
//!
//! It imports neither `oauth` nor `login`: both build on it, so neither imports the other.

pub mod code;
pub mod decision;
pub mod device;
pub mod pages;
pub mod pending;
pub mod redirect;
pub mod session;
pub mod signed_form;

use crate::clock::Clock;
use crate::config::{Issuer, Settings};
use crate::signals::Emitter;
use crate::storage::Storage;
use actix_web::dev::Payload;
use actix_web::web::Data;
use actix_web::{FromRequest, HttpRequest};
use chrono::Duration;
use pages::PageError;
use signed_form::FormSigner;
use std::future::{ready, Ready};

/// The settings of the browser flow, derived once from [`Settings`] (bounded at load, so
/// no request can overflow them).
pub struct FlowSettings {
    pub issuer: Issuer,
    /// Cookies are `Secure` with a prefix when the issuer is https (`session`).
    pub is_https: bool,
    /// The issuer's path (`""` or e.g. `"/auth"`): the pages link below it and the cookies
    /// are scoped to it.
    pub base_path: String,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub code_ttl: Duration,
    /// RFC 9126 §5 for every client (`par.required`).
    pub par_required: bool,
}

impl FlowSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            issuer: settings.issuer.clone(),
            is_https: settings.issuer.is_https(),
            base_path: settings.issuer.path().to_owned(),
            session_idle: settings.sessions.idle_timeout.chrono(),
            session_absolute: settings.sessions.absolute_timeout.chrono(),
            code_ttl: settings.tokens.authorization_code_ttl.chrono(),
            par_required: settings.par.required,
        }
    }
}

/// What every browser request of the flow works with, taken from the application's data
/// once per request: storage, the clock, the signer of browser-carried state, the settings
/// and what ending a session records. An extractor, so handlers name one parameter instead of four.
#[derive(Clone)]
pub struct Context {
    pub storage: Data<dyn Storage>,
    pub clock: Data<dyn Clock>,
    pub forms: Data<FormSigner>,
    pub settings: Data<FlowSettings>,
    /// What ending a session records (Shared Signals).
    pub events: Data<Emitter>,
}

impl Context {
    pub fn storage(&self) -> &dyn Storage {
        &**self.storage
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

impl FromRequest for Context {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let context = (|| {
            Some(Self {
                storage: req.app_data::<Data<dyn Storage>>()?.clone(),
                clock: req.app_data::<Data<dyn Clock>>()?.clone(),
                forms: req.app_data::<Data<FormSigner>>()?.clone(),
                settings: req.app_data::<Data<FlowSettings>>()?.clone(),
                events: req.app_data::<Data<Emitter>>()?.clone(),
            })
        })();
        ready(context.ok_or_else(|| PageError::unexpected(anyhow::anyhow!("the browser flow's app data is missing"))))
    }
}
