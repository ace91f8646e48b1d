//! Provider metadata: OpenID Connect Discovery 1.0 §3 at `/.well-known/openid-configuration`
//! and RFC 8414 §2 at `/.well-known/oauth-authorization-server`. Lists only what is
//! implemented; serialised once at startup. Every URL in it is built from the issuer, so
//! an issuer under a path (`https://example.com/auth`) names endpoints below that path.

use crate::config::Issuer;
use crate::tokens::dpop::DPOP_ALGORITHMS;
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde::Serialize;

/// The `alg`s accepted for `private_key_jwt` assertions (`oauth::client_assertion`).
const ASSERTION_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];

pub struct Discovery {
    body: Bytes,
}

#[derive(Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: String,
    jwks_uri: String,
    /// RFC 7009 §2; RFC 8414 §2.
    revocation_endpoint: String,
    /// RFC 7662 §2; RFC 8414 §2.
    introspection_endpoint: String,
    /// RFC 9126 §5.
    pushed_authorization_request_endpoint: String,
    /// RFC 8628 §4.
    device_authorization_endpoint: String,
    require_pushed_authorization_requests: bool,
    revocation_endpoint_auth_methods_supported: &'a [&'a str],
    introspection_endpoint_auth_methods_supported: &'a [&'a str],
    /// OpenID Connect RP-Initiated Logout 1.0 §2.1.
    end_session_endpoint: String,
    /// OpenID Connect Back-Channel Logout 1.0 §2.1: Logout Tokens are sent, with `sid`.
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
    scopes_supported: &'a [&'a str],
    response_types_supported: &'a [&'a str],
    response_modes_supported: &'a [&'a str],
    grant_types_supported: &'a [&'a str],
    token_endpoint_auth_methods_supported: &'a [&'a str],
    /// RFC 8414 §2: the `alg`s of `private_key_jwt` assertions.
    token_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    revocation_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    introspection_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    /// RFC 7636: S256 only.
    code_challenge_methods_supported: &'a [&'a str],
    subject_types_supported: &'a [&'a str],
    id_token_signing_alg_values_supported: &'a [&'a str],
    claims_supported: &'a [&'a str],
    prompt_values_supported: &'a [&'a str],
    /// RFC 9207 §3: `iss` is in every authorization response.
    authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1.
    dpop_signing_alg_values_supported: &'a [&'a str],
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    /// Tessera's member (Discovery §3 allows others): where the OpenID Shared Signals
    /// transmitter metadata is (SSF 1.0 §7.2: the well-known suffix inserted before the
    /// issuer's path), when the transmitter is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    ssf_configuration_uri: Option<String>,
}

impl Discovery {
    pub fn new(issuer: &Issuer, is_ssf_enabled: bool, is_par_required: bool) -> Self {
        let metadata = Metadata {
            issuer: issuer.as_str(),
            authorization_endpoint: issuer.endpoint("/authorize"),
            token_endpoint: issuer.endpoint("/token"),
            userinfo_endpoint: issuer.endpoint("/userinfo"),
            jwks_uri: issuer.endpoint("/jwks.json"),
            end_session_endpoint: issuer.endpoint("/logout"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            revocation_endpoint: issuer.endpoint("/revoke"),
            introspection_endpoint: issuer.endpoint("/introspect"),
            pushed_authorization_request_endpoint: issuer.endpoint("/par"),
            device_authorization_endpoint: issuer.endpoint("/device_authorization"),
            require_pushed_authorization_requests: is_par_required,
            revocation_endpoint_auth_methods_supported: &[
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            introspection_endpoint_auth_methods_supported: &[
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
            revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
            introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS,
            scopes_supported: &["openid", "profile", "email", "offline_access"],
            response_types_supported: &["code"],
            response_modes_supported: &["query"],
            grant_types_supported: &[
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            token_endpoint_auth_methods_supported: &[
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ],
            code_challenge_methods_supported: &["S256"],
            subject_types_supported: &["public"],
            id_token_signing_alg_values_supported: &["RS256"],
            claims_supported: &[
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "azp",
                "sid",
                "at_hash",
                "name",
                "preferred_username",
                "updated_at",
                "email",
                "email_verified",
            ],
            // `select_account` is accepted but not advertised: there is one account per session.
            prompt_values_supported: &["none", "login", "consent"],
            authorization_response_iss_parameter_supported: true,
            dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            ssf_configuration_uri: is_ssf_enabled.then(|| issuer.well_known("ssf-configuration")),
        };
        let body = serde_json::to_vec(&metadata).expect("metadata serialises");
        Self { body: Bytes::from(body) }
    }
}

pub async fn get(discovery: web::Data<Discovery>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::Public, CacheDirective::MaxAge(3600)]))
        // A public document: any browser app may read it (no credentials are involved).
        .insert_header((actix_web::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .content_type("application/json")
        .body(discovery.body.clone())
}
