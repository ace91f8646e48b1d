//! Pushed authorization request endpoint (RFC 9126 §2): a client posts its authorization
//! request, authenticated as at the token endpoint, and gets a `request_uri` to send the
//! browser to `/authorize` with (§4). The request is validated here exactly as `/authorize`
//! validates it ([`parse_request`]), before anything is stored; what is stored is the
//! validated request, under the digest of the `request_uri`'s random part.
//!
//! Bounded per client, in total, and for a public client (whose id is all a stranger
//! needs) per client IP network (`par.max_per_ip`), so one stranger cannot take the
//! client's whole `max_per_client` from everyone else.

use super::authorize::{parse_request, RequestRefused};
use super::client_auth::{public_source, AuthenticatedClient};
use super::error::OAuthError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::redirect_uri;
use crate::domain::secret::{GeneratedSecret, SecretDigest};
use crate::keys::kek::KeyEncryptionKey;
use crate::storage::client_requests::{BoundRefused, RequestLimits, SourceBound};
use crate::storage::Storage;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{web, HttpRequest, HttpResponse};
use aws_lc_rs::hmac;
use serde_json::json;

/// RFC 9126 §2.2: the `request_uri` is a URN; Tessera's are this prefix and 256 random bits.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The settings of the endpoint, from `[par]`.
pub struct ParPolicy {
    pub lifetime: chrono::Duration,
    pub limits: RequestLimits,
    /// Unexpired pushed requests one public client may have from one client IP network.
    pub max_per_ip: i64,
    /// Take the client IP from `Forwarded` / `X-Forwarded-For` (behind a proxy only).
    pub trust_forwarded_headers: bool,
    /// Keys the digest of a public client's network ([`public_source`]).
    pub source_key: hmac::Key,
}

impl ParPolicy {
    pub fn from_settings(settings: &Settings, kek: &KeyEncryptionKey) -> Self {
        Self {
            lifetime: settings.par.lifetime.chrono(),
            limits: RequestLimits {
                max_per_client: i64::from(settings.par.max_per_client),
                max_total: i64::from(settings.par.max_total),
            },
            max_per_ip: i64::from(settings.par.max_per_ip),
            trust_forwarded_headers: settings.http.trust_forwarded_headers,
            source_key: kek.derive_hmac_key(b"tessera PAR request sources v1"),
        }
    }
}

/// The digest under which the pushed request of `request_uri` is stored; `None` when it is
/// not one of Tessera's request URIs.
pub fn request_uri_digest(request_uri: &str) -> Option<SecretDigest> {
    let random = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    let well_formed = (1..=128).contains(&random.len())
        && random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| SecretDigest::of(random))
}

pub async fn post(
    req: HttpRequest,
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
    policy: web::Data<ParPolicy>,
) -> Result<HttpResponse, OAuthError> {
    let AuthenticatedClient { client, form } = authenticated;
    // §2.1: "The request_uri authorization request parameter is one exception, and it MUST
    // NOT be provided."
    if form.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri must not be pushed"));
    }
    // The hint names a user at the time of the request; a pushed request is used later,
    // and Tessera does not store hints.
    if form.get("id_token_hint").is_some() {
        return Err(OAuthError::invalid_request("id_token_hint is not supported in pushed authorization requests"));
    }
    // §2.1: the redirect URI is checked here as /authorize would check it (exact match),
    // and a mismatch is an error to the client, which sent it directly.
    let redirect_uri = form.get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("missing redirect_uri"))?;
    if !redirect_uri::is_registered(redirect_uri, &client.redirect_uris) {
        return Err(OAuthError::invalid_request("redirect_uri is not registered for this client"));
    }
    let now = clock.now();
    let mut request = parse_request(&form, &client, redirect_uri, now).map_err(|refused| {
        let RequestRefused { code, description } = refused;
        match code {
            "invalid_request" => OAuthError::InvalidRequest(description),
            "invalid_scope" => OAuthError::InvalidScope(description),
            "unauthorized_client" => OAuthError::UnauthorizedClient(description),
            code => OAuthError::AuthorizationRequest { code, description },
        }
    })?;
    request.expires_at = now + policy.lifetime;
    let random = GeneratedSecret::generate("");
    let source = public_source(&req, &client, policy.trust_forwarded_headers, &policy.source_key);
    let bound = source.as_ref().map(|digest| SourceBound { digest, max: policy.max_per_ip });
    match storage.insert_pushed_request(&random.digest(), &request, policy.limits, bound, now).await? {
        Ok(()) => {}
        Err(BoundRefused::ClientLimit) => {
            return Err(OAuthError::TooManyRequests(
                "the client has as many unexpired pushed authorization requests as allowed; use or let them expire"
                    .into(),
            ))
        }
        Err(BoundRefused::SourceLimit) => {
            return Err(OAuthError::TooManyRequests(
                "this network has as many unexpired pushed authorization requests for the client as allowed; use or let them expire"
                    .into(),
            ))
        }
        Err(BoundRefused::TotalLimit) => {
            return Err(OAuthError::TooManyRequests(
                "the server holds as many pushed authorization requests as allowed; try again shortly".into(),
            ))
        }
    }
    // §2.2: 201 Created, `request_uri` and `expires_in`.
    Ok(HttpResponse::Created().insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache")).json(
        json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{}", random.expose()),
            "expires_in": policy.lifetime.num_seconds(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tessera_request_uris_have_a_digest() {
        let random = GeneratedSecret::generate("");
        let uri = format!("{REQUEST_URI_PREFIX}{}", random.expose());
        assert_eq!(request_uri_digest(&uri), Some(random.digest()));
        for other in [
            "https://client.example.com/request.jwt",
            "urn:ietf:params:oauth:request_uri:",
            "urn:ietf:params:oauth:request_uri:a b",
            &format!("{REQUEST_URI_PREFIX}{}", "x".repeat(129)),
        ] {
            assert_eq!(request_uri_digest(other), None, "{other}");
        }
    }
}
