//! Once the person is known — an SSO session answering `/authorize`, or a password just
//! typed — the authorization server "obtains an authorization decision" (RFC 6749 §4.1.1):
//! remembered consent (or a first-party client) answers with a code at once (§4.1.2);
//! otherwise the consent page asks; with `prompt=none` an error goes back instead (OpenID
//! Connect Core §3.1.2.6).

use super::pages::{self, ConsentPage, ScopeDescription};
use super::pending::{save_consent_request, with_csrf_cookie};
use super::redirect::{origin_of, ClientRedirect};
use super::{code, Context};
use crate::domain::authorization::{PendingAuthorization, Session};
use crate::domain::client::{Client, ClientType};
use crate::domain::user::User;
use crate::storage::StorageError;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

/// A verified authorization request: the client and what it asked for.
pub struct ValidRequest<'a> {
    pub client: &'a Client,
    pub pending: &'a PendingAuthorization,
}

impl ValidRequest<'_> {
    /// Where the answer goes: the request's verified redirect URI, with its `state`.
    pub fn redirect(&self, ctx: &Context) -> ClientRedirect {
        ClientRedirect {
            redirect_uri: self.pending.redirect_uri.clone(),
            state: self.pending.state.clone(),
            issuer: ctx.settings.issuer.as_str().to_owned(),
        }
    }
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

/// The answer to `request` for `who`: a code, the consent page, or (with `prompt=none`)
/// an error redirect.
pub async fn obtain(
    ctx: &Context,
    request: &ValidRequest<'_>,
    who: SignedIn<'_>,
) -> Result<HttpResponse, StorageError> {
    let (client, pending) = (request.client, request.pending);
    let redirect = request.redirect(ctx);
    let granted = ctx.storage().find_consent(&who.user.id, &client.id).await?;
    let has_consent = client.is_first_party || granted.is_some_and(|g| pending.scope.is_subset_of(&g));
    let is_silent_allowed = who.has_interacted || !needs_interaction(client, pending);
    if has_consent && !pending.prompt.consent && is_silent_allowed {
        let code = code::issue(ctx, pending, who.session).await?;
        return Ok(redirect.code(&code));
    }
    if pending.prompt.none && !has_consent {
        return Ok(redirect.error("consent_required", "the user has not granted this client the requested access"));
    }
    if pending.prompt.none {
        return Ok(
            redirect.error("interaction_required", "this client needs the user to confirm the request (RFC 8252 §8.6)")
        );
    }
    let handle = save_consent_request(ctx, pending.clone(), &who.session.sid).await?;
    let page = ConsentPage {
        base: &ctx.settings.base_path,
        client_name: &client.name,
        username: who.user.username.as_str(),
        pending: &handle.id,
        csrf_token: &handle.csrf_token,
        scopes: pending.scope.iter().map(ScopeDescription::of).collect(),
    };
    let form_target = origin_of(&pending.redirect_uri);
    Ok(with_csrf_cookie(ctx, &handle, pages::render(StatusCode::OK, &page, form_target.as_deref())))
}
