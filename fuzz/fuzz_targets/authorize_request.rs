//! `/authorize`: the query parsed by `FormParams::parse`, then checked by
//! `authorize::parse_request` for a fixed client (the redirect URI was matched before).
//!
//! An accepted request must stay within the client's registration: only the code flow,
//! a scope within the registered ones, PKCE S256, bounded `state`/`nonce`/`login_hint`.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::domain::client::{AuthMethod, Client, ClientId, GrantType};
use tessera::domain::scope::ScopeSet;
use tessera::oauth::authorize::{parse_request, RequestRefused};
use tessera::http::form::FormParams;

const REDIRECT_URI: &str = "https://app.example.com/callback";

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| Client {
        id: ClientId::parse("web-app").unwrap(),
        name: "Web app".into(),
        auth_method: AuthMethod::ClientSecretBasic,
        secret_digest: None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::parse("openid profile email offline_access invoices:read").unwrap(),
        audiences: vec!["https://api.example.com".into()],
        served_audiences: vec![],
        may_introspect_any: false,
        redirect_uris: vec![REDIRECT_URI.into()],
        post_logout_redirect_uris: vec![],
        is_first_party: false,
        always_issue_refresh_token: false,
        require_pushed_authorization_requests: false,
        keys: None,
        dpop_bound_access_tokens: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: true,
        web_origins: vec![],
        web_origins_explicit: false,
        first_party_spa: false,
        access_token_format: tessera::domain::access_token::AccessTokenFormat::Jwt,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        disabled_at: None,
    })
}

fuzz_target!(|query: &[u8]| {
    let Ok(params) = FormParams::parse(query) else { return };
    let client = client();
    let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    match parse_request(&params, client, REDIRECT_URI, now) {
        Ok(pending) => {
            assert_eq!(params.get("response_type"), Some("code"));
            assert_eq!(params.get("code_challenge_method"), Some("S256"));
            assert_eq!(pending.code_challenge.as_str().len(), 43);
            assert!(pending.scope.is_subset_of(&client.scopes));
            assert_eq!(pending.client_id, client.id);
            assert_eq!(pending.redirect_uri, REDIRECT_URI);
            for value in [&pending.state, &pending.nonce, &pending.login_hint].into_iter().flatten() {
                assert!(!value.is_empty() && value.len() <= 2048);
            }
            assert!(pending.max_age.is_none_or(|age| age >= 0));
            assert!(pending.expires_at > now);
        }
        Err(RequestRefused { code, description }) => {
            assert!(
                matches!(
                    code,
                    "invalid_request"
                        | "invalid_scope"
                        | "unsupported_response_type"
                        | "unauthorized_client"
                        | "request_not_supported"
                        | "request_uri_not_supported"
                ),
                "unexpected error code {code:?}"
            );
            assert!(!description.is_empty());
        }
    }
});
