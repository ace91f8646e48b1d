//! Device authorization endpoint (RFC 8628 §3.1–3.2): a device without a usable browser
//! (a TV, a CLI) authenticates as at the token endpoint and gets a device code to poll
//! `/token` with, and a user code for the person to type at `{issuer}/device`.
//!
//! Bounded: each client, and the server in total, may hold a set number of unexpired
//! requests (`[device]`); past it the answer is 429 and nothing is stored. A public
//! client's id is all a stranger needs, so a public client's requests are also counted
//! per client IP network (`device.max_per_ip`): one stranger fills its own share, not the
//! client's whole `max_per_client`.

use super::client_auth::{public_source, AuthenticatedClient};
use super::error::OAuthError;
use crate::authorization::device::DevicePolicy;
use crate::clock::Clock;
use crate::domain::client::GrantType;
use crate::domain::device::{DeviceRequest, DeviceStatus, UserCode};
use crate::domain::scope::ScopeSet;
use crate::domain::secret::GeneratedSecret;
use crate::http::client_ip::{self, client_ip};
use crate::storage::client_requests::{BoundRefused, SourceBound};
use crate::storage::{Storage, StorageError};
use actix_web::http::header::{CACHE_CONTROL, PRAGMA};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// Device codes are recognisable to secret scanners, like Tessera's other secrets.
pub const DEVICE_CODE_PREFIX: &str = "tdc_";

/// User codes drawn before giving up on a free one: a collision among the unexpired
/// codes is about one in 2.5 million per draw at the default total bound.
const USER_CODE_DRAWS: usize = 4;

pub async fn post(
    req: HttpRequest,
    authenticated: AuthenticatedClient,
    storage: web::Data<dyn Storage>,
    clock: web::Data<dyn Clock>,
    policy: web::Data<DevicePolicy>,
) -> Result<HttpResponse, OAuthError> {
    let AuthenticatedClient { client, form } = authenticated;
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient(
            "the client may not use the device authorization grant (urn:ietf:params:oauth:grant-type:device_code)"
                .into(),
        ));
    }
    // §3.1: `scope` as in RFC 6749 §3.3; the client's registered scopes when absent.
    let scope = match form.get("scope") {
        Some(raw) => ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string().into()))?,
        None => client.scopes.clone(),
    };
    if !scope.is_subset_of(&client.scopes) {
        return Err(OAuthError::InvalidScope(
            "the requested scope exceeds the scopes registered for the client".into(),
        ));
    }
    let now = clock.now();
    let request = DeviceRequest {
        client_id: client.id.clone(),
        scope,
        status: DeviceStatus::Pending,
        created_at: now,
        expires_at: now + policy.lifetime,
        interval: policy.interval,
        // The first poll is welcome at once; the interval counts from each poll.
        next_poll_at: now,
    };
    let device_code = GeneratedSecret::generate(DEVICE_CODE_PREFIX);
    let ip = client_ip(&req, policy.trust_forwarded_headers);
    let source = public_source(&req, &client, policy.trust_forwarded_headers, &policy.source_key);
    let bound = source.as_ref().map(|digest| SourceBound { digest, max: policy.max_per_ip });
    let mut draws = 0;
    let user_code = loop {
        let user_code = UserCode::generate();
        let digest = policy.user_code_digest(&user_code);
        match storage.insert_device_request(&device_code.digest(), &digest, &request, policy.limits, bound, now).await {
                Ok(Ok(())) => break user_code,
                Ok(Err(BoundRefused::ClientLimit)) => return Err(OAuthError::TooManyRequests(
                    "the client has as many unexpired device authorization requests as allowed; use or let them expire"
                        .into(),
                )),
                Ok(Err(BoundRefused::SourceLimit)) => return Err(OAuthError::TooManyRequests(
                    "this network has as many unexpired device authorization requests for the client as allowed; use or let them expire"
                        .into(),
                )),
                Ok(Err(BoundRefused::TotalLimit)) => {
                    return Err(OAuthError::TooManyRequests(
                        "the server holds as many device authorization requests as allowed; try again shortly".into(),
                    ))
                }
                Err(StorageError::Conflict(_)) if draws + 1 < USER_CODE_DRAWS => draws += 1,
                Err(error) => return Err(error.into()),
            }
    };
    let ip = client_ip::shown(ip);
    crate::audit!(info, "device_authorization", "issued", client_id = %client.id, ip = %ip);
    let shown = user_code.display();
    // §3.2; `no-store` as for token responses: the body carries the device code.
    Ok(HttpResponse::Ok().insert_header((CACHE_CONTROL, "no-store")).insert_header((PRAGMA, "no-cache")).json(json!({
        "device_code": device_code.expose(),
        "user_code": shown,
        "verification_uri": policy.verification_uri,
        "verification_uri_complete": format!("{}?user_code={shown}", policy.verification_uri),
        "expires_in": policy.lifetime.num_seconds(),
        "interval": policy.interval.num_seconds(),
    })))
}
