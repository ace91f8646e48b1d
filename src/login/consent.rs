//! POST /consent: the user allows or denies the client's requested scopes. Allowing is
//! remembered per user and client; a later request for more scopes asks again.
//!
//! Only a request that reached the consent stage in this browser's session is accepted,
//! and it is taken (deleted) in the statement that finds it: a login-stage request cannot
//! skip `prompt=login` or `max_age` by posting here (OIDC Core §3.1.2.1), another
//! session's request is not found, and a form submitted twice issues one code.

use super::CheckedForm;
use crate::authorization::decision::ValidRequest;
use crate::authorization::pages::PageError;
use crate::authorization::{code, session, Context};
use crate::domain::secret::SecretDigest;
use actix_web::{HttpRequest, HttpResponse};

pub async fn post(req: HttpRequest, form: CheckedForm, ctx: Context) -> Result<HttpResponse, PageError> {
    let storage = ctx.storage();
    let Some((_, session)) = session::current(&req, &ctx).await? else {
        return Err(PageError::bad_request(
            "You are not signed in",
            "Your session ended before you answered. Start again from the application.",
        ));
    };
    let claimed = storage.claim_pending(&SecretDigest::of(&form.pending), &session.sid, ctx.now()).await?;
    let pending = claimed.ok_or(PageError::Expired)?;
    if !pending.csrf_digest.matches(&form.csrf_token) {
        return Err(PageError::Forged);
    }
    let client = storage.find_client(&pending.client_id).await?.filter(|c| !c.is_disabled());
    let client = client.ok_or(PageError::Expired)?;
    let redirect = ValidRequest { client: &client, pending: &pending }.redirect(&ctx);
    if form.params.get("decision") != Some("allow") {
        return Ok(redirect.error("access_denied", "the user denied the request"));
    }
    let granted = storage.find_consent(&session.user_id, &client.id).await?.unwrap_or_default();
    storage.save_consent(&session.user_id, &client.id, &granted.union(&pending.scope), ctx.now()).await?;
    let code = code::issue(&ctx, &pending, &session).await?;
    Ok(redirect.code(&code))
}
