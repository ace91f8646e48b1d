//! Authorization endpoint (RFC 6749 §3.1, §4.1.1; OpenID Connect Core §3.1.2), GET and POST.
//!
//! Validation follows §4.1.2.1: until `client_id` and `redirect_uri` are verified, errors
//! are an HTML page and never a redirect (an open redirector otherwise); after that,
//! errors go back to the client with `error`, `state` and `iss` (see [`AuthorizeError`]).

use super::error::AuthorizeError;
use super::par::request_uri_digest;
use crate::authorization::decision::{self, SignedIn, ValidRequest};
use crate::authorization::pending::{login_form, login_request_handle};
use crate::authorization::redirect::ClientRedirect;
use crate::authorization::{session, Context};
use crate::domain::authorization::{PendingAuthorization, Prompt};
use crate::domain::client::{Client, ClientId, GrantType};
use crate::domain::pkce::CodeChallenge;
use crate::domain::redirect_uri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretDigest;
use crate::domain::user::User;
use crate::http::form::{FormError, FormParams};
use crate::tokens::TokenIssuer;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// How long the person has to sign in and consent: time enough to type a password, not
/// to leave a form open overnight.
const PENDING_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Longest `state`, `nonce` or `login_hint` accepted; longer values are not legitimate.
const MAX_VALUE_LEN: usize = 2048;

pub async fn get(
    req: HttpRequest,
    ctx: Context,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, AuthorizeError> {
    let params = FormParams::parse_query(req.query_string())?;
    authorize(&req, &params, &ctx, &issuer).await
}

pub async fn post(
    req: HttpRequest,
    params: Result<FormParams, FormError>,
    ctx: Context,
    issuer: web::Data<TokenIssuer>,
) -> Result<HttpResponse, AuthorizeError> {
    authorize(&req, &params?, &ctx, &issuer).await
}

async fn authorize(
    req: &HttpRequest,
    params: &FormParams,
    ctx: &Context,
    issuer: &TokenIssuer,
) -> Result<HttpResponse, AuthorizeError> {
    let storage = ctx.storage();
    // §4.1.2.1 step one: the client and its redirect URI, or an error page.
    let raw_client_id =
        params.get("client_id").ok_or_else(|| AuthorizeError::invalid("The request has no client_id."))?;
    let client = match ClientId::parse(raw_client_id) {
        Ok(id) => storage.find_client(&id).await?,
        Err(_) => None,
    };
    let client = client
        .filter(|c| !c.is_disabled())
        .ok_or_else(|| AuthorizeError::invalid("The application that sent you here is not registered with Tessera."))?;
    let (pending, hinted_user, to) = match params.get("request_uri") {
        Some(request_uri) => (pushed_request(ctx, &client, request_uri).await?, None, None),
        None => {
            // RFC 9126 §5: a client that must push its requests may not send them here.
            if client.require_pushed_authorization_requests || ctx.settings.par_required {
                return Err(AuthorizeError::invalid(
                    "This application must start sign-in through a pushed authorization request (request_uri).",
                ));
            }
            let (pending, hinted_user, to) = direct_request(params, ctx, issuer, &client)?;
            (pending, hinted_user, Some(to))
        }
    };
    let to = to.unwrap_or_else(|| ClientRedirect {
        redirect_uri: pending.redirect_uri.clone(),
        state: pending.state.clone(),
        issuer: ctx.settings.issuer.as_str().to_owned(),
    });

    let now = ctx.now();
    let current = session::current(req, ctx).await?;
    let mut user = None;
    if let Some((_, session)) = &current {
        user = storage.find_user_by_id(&session.user_id).await?.filter(|u| u.disabled_at.is_none());
    }
    let is_fresh_enough =
        |auth_time: DateTime<Utc>| pending.max_age.is_none_or(|max_age| (now - auth_time).num_seconds() <= max_age);
    let is_hinted = |user: &User| hinted_user.as_deref().is_none_or(|sub| sub == user.id.as_str());
    match (&current, &user) {
        (Some((_, session)), Some(user))
            if !pending.prompt.login && is_fresh_enough(session.auth_time) && is_hinted(user) =>
        {
            let who = SignedIn { session, user, has_interacted: false };
            Ok(decision::obtain(ctx, &ValidRequest { client: &client, pending: &pending }, who).await?)
        }
        _ if pending.prompt.none => Err(AuthorizeError::Redirect {
            to,
            code: "login_required",
            description: "the user is not logged in".into(),
        }),
        _ => {
            // Nothing is stored until the person signs in: the request travels signed in
            // the form, so an unauthenticated request costs no row.
            let hint = pending.login_hint.clone().unwrap_or_default();
            let redirect_uri = pending.redirect_uri.clone();
            let handle = login_request_handle(ctx, pending);
            Ok(login_form(ctx, &client, &handle, &redirect_uri, &hint, None, StatusCode::OK))
        }
    }
}

/// The authorization request sent in the query or form, checked in the order of RFC 6749
/// §4.1.2.1: the redirect URI (an error page if it is not registered), then the rest
/// (reported to the client through the returned redirect).
fn direct_request(
    params: &FormParams,
    ctx: &Context,
    issuer: &TokenIssuer,
    client: &Client,
) -> Result<(PendingAuthorization, Option<String>, ClientRedirect), AuthorizeError> {
    let redirect_uri =
        params.get("redirect_uri").ok_or_else(|| AuthorizeError::invalid("The request has no redirect_uri."))?;
    if !redirect_uri::is_registered(redirect_uri, &client.redirect_uris) {
        return Err(AuthorizeError::invalid("The redirect URI is not registered for this application."));
    }
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_VALUE_LEN) {
        return Err(AuthorizeError::invalid("The state parameter is too long."));
    }
    let to = ClientRedirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        issuer: ctx.settings.issuer.as_str().to_owned(),
    };

    // Step two: everything else is reported to the client.
    let refused = |to: &ClientRedirect, refused: RequestRefused| AuthorizeError::Redirect {
        to: to.clone(),
        code: refused.code,
        description: refused.description,
    };
    let pending = parse_request(params, client, redirect_uri, ctx.now()).map_err(|r| refused(&to, r))?;
    // OIDC Core §3.1.2.1: `id_token_hint` names the user the client expects; a session of
    // anyone else does not answer this request (with prompt=none: `login_required`).
    let hinted_user = match params.get("id_token_hint") {
        Some(hint) => Some(
            issuer
                .verify_id_token_hint(hint)
                .map_err(|_| refused(&to, RequestRefused::invalid("id_token_hint is not an ID token of this issuer")))?
                .sub,
        ),
        None => None,
    };
    Ok((pending, hinted_user, to))
}

/// The pushed request `request_uri` of `client` (RFC 9126 §4), taken from storage: it is
/// used once, and the other parameters of the request are ignored. Unknown, expired, used
/// or another client's: an error page, since no redirect URI is known to be the client's.
/// Once taken, the request continues as a direct one would: the login form carries it
/// signed, so signing in never needs the `request_uri` again.
async fn pushed_request(
    ctx: &Context,
    client: &Client,
    request_uri: &str,
) -> Result<PendingAuthorization, AuthorizeError> {
    let gone = || {
        AuthorizeError::invalid(
            "The sign-in request has expired or was used already. Go back to the application and start again.",
        )
    };
    let digest = request_uri_digest(request_uri).ok_or_else(gone)?;
    let now = ctx.now();
    let mut pending = ctx.storage().claim_pushed_request(&digest, &client.id, now).await?.ok_or_else(gone)?;
    // The registration may have changed since the push.
    if !redirect_uri::is_registered(&pending.redirect_uri, &client.redirect_uris) {
        return Err(AuthorizeError::invalid("The redirect URI is not registered for this application."));
    }
    pending.created_at = now;
    pending.expires_at = now + PENDING_LIFETIME;
    Ok(pending)
}

/// Why an authorization request with a verified client and redirect URI was refused: an
/// RFC 6749 §4.1.2.1 (or OpenID Connect Core §3.1.2.6) error code and a description, both
/// sent back to the client.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestRefused {
    pub code: &'static str,
    pub description: Cow<'static, str>,
}

impl RequestRefused {
    fn new(code: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self { code, description: description.into() }
    }

    pub fn invalid(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_request", description)
    }
}

/// Parses the request parameters that are reported by redirect (OIDC Core §3.1.2.6).
pub fn parse_request(
    params: &FormParams,
    client: &Client,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<PendingAuthorization, RequestRefused> {
    if params.get("request").is_some() {
        return Err(RequestRefused::new("request_not_supported", "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(RequestRefused::new("request_uri_not_supported", "request_uri is not supported"));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(RequestRefused::new("unsupported_response_type", "only response_type=code is supported"))
        }
        None => return Err(RequestRefused::invalid("missing response_type")),
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(RequestRefused::invalid("only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(RequestRefused::new("unauthorized_client", "the client may not use the authorization code flow"));
    }
    let code_challenge = CodeChallenge::parse(params.get("code_challenge"), params.get("code_challenge_method"))
        .map_err(|e| RequestRefused::invalid(e.to_string()))?;
    let scope = match params.get("scope") {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| RequestRefused::new("invalid_scope", e.to_string()))?,
        None => client.scopes.clone(),
    };
    if !scope.is_subset_of(&client.scopes) {
        return Err(RequestRefused::new(
            "invalid_scope",
            "the requested scope exceeds the scopes registered for the client",
        ));
    }
    let prompt = Prompt::parse(params.get("prompt")).map_err(|e| RequestRefused::invalid(e.to_string()))?;
    let max_age = params
        .get("max_age")
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .ok_or_else(|| RequestRefused::invalid("max_age must be a non-negative integer"))
        })
        .transpose()?;
    let bounded = |name: &'static str| -> Result<Option<String>, RequestRefused> {
        match params.get(name) {
            Some(value) if value.len() > MAX_VALUE_LEN => Err(RequestRefused::invalid(format!("{name} is too long"))),
            other => Ok(other.map(str::to_owned)),
        }
    };
    Ok(PendingAuthorization {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: bounded("state")?,
        nonce: bounded("nonce")?,
        code_challenge,
        login_hint: bounded("login_hint")?,
        max_age,
        prompt,
        csrf_digest: SecretDigest::from_stored(String::new()),
        created_at: now,
        expires_at: now + PENDING_LIFETIME,
    })
}
