//! What happens once an authorization request is valid, shared by `/authorize`, the
//! login form and the consent form: log in if needed, ask consent if needed, then
//! redirect back with a code (RFC 6749 §4.1.2) or an error (§4.1.2.1), always with
//! `iss` (RFC 9207 §2).

use super::pages::{self, ConsentPage, LoginPage, ScopeDescription};
use super::session;
use super::LoginConfig;
use crate::domain::authorization::{AuthorizationGrant, PendingAuthorization, Session};
use crate::domain::client::{Client, ClientType};
use crate::domain::secret::GeneratedSecret;
use crate::domain::user::User;
use crate::storage::Storage;
use actix_web::cookie::Cookie;
use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use url::Url;

/// Where and how to answer the client once `client_id` and `redirect_uri` are verified.
pub struct ClientRedirect<'a> {
    pub redirect_uri: &'a str,
    pub state: Option<&'a str>,
    pub issuer: &'a str,
}

impl ClientRedirect<'_> {
    fn to(&self, params: &[(&str, &str)]) -> HttpResponse {
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            // Registered URIs are validated as absolute URLs when the client is created.
            return pages::error_page(
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
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        HttpResponse::SeeOther()
            .insert_header((LOCATION, url.as_str()))
            .insert_header(("Cache-Control", "no-store"))
            .finish()
    }

    /// RFC 6749 §4.1.2.1 error redirect.
    pub fn error(&self, code: &str, description: &str) -> HttpResponse {
        self.to(&[("error", code), ("error_description", description)])
    }

    pub fn code(&self, code: &str) -> HttpResponse {
        self.to(&[("code", code)])
    }
}

/// The origin of a redirect URI, for CSP `form-action`.
pub fn origin_of(uri: &str) -> Option<String> {
    Url::parse(uri).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null")
}

/// What a form carries to identify its request — the signed request itself (login
/// stage) or the random id of a stored one (consent stage) — and its CSRF token.
pub struct PendingHandle {
    pub id: String,
    pub csrf_token: String,
}

/// The login form's handle for `pending`: nothing is stored (see `signed_form`).
pub fn login_request_handle(config: &LoginConfig, mut pending: PendingAuthorization) -> PendingHandle {
    let csrf = GeneratedSecret::generate("");
    pending.csrf_digest = csrf.digest();
    PendingHandle { id: config.forms.seal_login_request(&pending), csrf_token: csrf.expose().to_owned() }
}

/// Stores `pending` at the consent stage of session `sid` under a fresh id and CSRF token.
pub async fn save_consent_request(
    storage: &dyn Storage,
    mut pending: PendingAuthorization,
    sid: &str,
) -> anyhow::Result<PendingHandle> {
    let id = GeneratedSecret::generate("");
    let csrf = GeneratedSecret::generate("");
    pending.csrf_digest = csrf.digest();
    storage.insert_pending(&id.digest(), sid, &pending).await?;
    Ok(PendingHandle { id: id.expose().to_owned(), csrf_token: csrf.expose().to_owned() })
}

/// The login form for `pending`, setting the CSRF cookie that must accompany the post.
pub fn login_form(
    config: &LoginConfig,
    client: &Client,
    handle: &PendingHandle,
    redirect_uri: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let page =
        LoginPage { client_name: &client.name, pending: &handle.id, csrf_token: &handle.csrf_token, username, error };
    // The login post may answer with a 303 to the client (consent already given, or a
    // first-party client); CSP `form-action` governs that redirect too, so the client's
    // origin must be allowed beside 'self' or Chromium blocks the final hop.
    let form_target = origin_of(redirect_uri);
    let response = pages::render(status, &page, form_target.as_deref());
    with_csrf_cookie(config, handle, response)
}

/// Sets the CSRF cookie that must come back with the form's token (double submit).
fn with_csrf_cookie(config: &LoginConfig, handle: &PendingHandle, mut response: HttpResponse) -> HttpResponse {
    let cookie = session::cookie(config, session::csrf_cookie_name(config), handle.csrf_token.clone(), None);
    let _ = response.add_cookie(&cookie);
    response
}

/// Who the request is for, once known.
pub struct SignedIn<'a> {
    pub session: &'a Session,
    pub user: &'a User,
    /// The person acted in this request (entered their password), rather than an
    /// existing session answering silently.
    pub has_interacted: bool,
}

/// RFC 8252 §8.6: a public client's identity cannot be assured by its redirect URI when
/// it is a native app's (loopback or private-use scheme: any local process can listen
/// there), nor should a refresh token (`offline_access`) ever reach a public client
/// without the person seeing it happen. Such requests need the person's interaction:
/// remembered consent and `first_party` do not answer them silently.
pub fn needs_interaction(client: &Client, pending: &PendingAuthorization) -> bool {
    client.client_type() == ClientType::Public
        && (!pending.redirect_uri.starts_with("https://") || pending.scope.contains("offline_access"))
}

/// After the user is known: consent if needed, else the code.
pub async fn after_login(
    storage: &dyn Storage,
    config: &LoginConfig,
    client: &Client,
    pending: &PendingAuthorization,
    who: SignedIn<'_>,
    cookies: Vec<Cookie<'static>>,
) -> anyhow::Result<HttpResponse> {
    let redirect = ClientRedirect {
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        issuer: config.issuer.as_str(),
    };
    let granted = storage.find_consent(&who.user.id, &client.id).await?;
    let has_consent = client.is_first_party || granted.is_some_and(|g| pending.scope.is_subset_of(&g));
    let is_silent_allowed = who.has_interacted || !needs_interaction(client, pending);
    let mut response = if has_consent && !pending.prompt.consent && is_silent_allowed {
        let code = issue_code(storage, config, pending, who.session).await?;
        redirect.code(&code)
    } else if pending.prompt.none && !has_consent {
        redirect.error("consent_required", "the user has not granted this client the requested access")
    } else if pending.prompt.none {
        redirect.error("interaction_required", "this client needs the user to confirm the request (RFC 8252 §8.6)")
    } else {
        let handle = save_consent_request(storage, pending.clone(), &who.session.sid).await?;
        let page = ConsentPage {
            client_name: &client.name,
            username: who.user.username.as_str(),
            pending: &handle.id,
            csrf_token: &handle.csrf_token,
            scopes: pending.scope.iter().map(ScopeDescription::of).collect(),
        };
        let form_target = origin_of(&pending.redirect_uri);
        with_csrf_cookie(config, &handle, pages::render(StatusCode::OK, &page, form_target.as_deref()))
    };
    for cookie in &cookies {
        let _ = response.add_cookie(cookie);
    }
    Ok(response)
}

/// RFC 6749 §4.1.2: a random, single-use, short-lived code bound to everything the
/// token request must match. Only its digest is stored.
pub async fn issue_code(
    storage: &dyn Storage,
    config: &LoginConfig,
    pending: &PendingAuthorization,
    session: &Session,
) -> anyhow::Result<String> {
    let code = GeneratedSecret::generate("");
    let now = config.clock.now();
    let grant = AuthorizationGrant {
        client_id: pending.client_id.clone(),
        user_id: session.user_id.clone(),
        sid: session.sid.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        scope: pending.scope.clone(),
        nonce: pending.nonce.clone(),
        code_challenge: pending.code_challenge.clone(),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + config.code_ttl,
    };
    storage.insert_code(&code.digest(), &grant).await?;
    Ok(code.expose().to_owned())
}
