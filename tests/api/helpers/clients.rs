//! Registering clients for tests, straight into storage (the CLI has its own tests).

use super::TestApp;
use chrono::Utc;
use tessera::domain::access_token::AccessTokenFormat;
use tessera::domain::client::{AuthMethod, Client, ClientId, GrantType, KeySource};
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::GeneratedSecret;
use tessera::domain::web_origin::WebOrigin;

pub const WEB_APP_REDIRECT_URI: &str = "https://app.example.com/callback";

/// What to register; `ClientSpec::service()` is a confidential client_credentials client.
pub struct ClientSpec {
    pub auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub scope: &'static str,
    pub audiences: Vec<&'static str>,
    /// Audiences it serves as a resource server (RFC 7662 §4: it may introspect their tokens).
    pub served_audiences: Vec<&'static str>,
    pub may_introspect_any: bool,
    pub disabled: bool,
    pub redirect_uris: Vec<&'static str>,
    pub post_logout_redirect_uris: Vec<&'static str>,
    pub is_first_party: bool,
    pub always_issue_refresh_token: bool,
    /// RFC 9126 §5: `/authorize` only with a pushed request.
    pub require_pushed_authorization_requests: bool,
    /// The public keys of a `private_key_jwt` client.
    pub keys: Option<KeySource>,
    /// RFC 9449 §5.2: token requests without a DPoP proof are refused.
    pub dpop_bound_access_tokens: bool,
    /// Back-Channel Logout 1.0 §2.2: where Logout Tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// Registered web origins (CORS); `None`: derived from the redirect URIs.
    pub web_origins: Option<Vec<&'static str>>,
    /// The refresh token in an HttpOnly cookie instead of the JSON body.
    pub first_party_spa: bool,
    /// JWT (the default) or opaque access tokens.
    pub access_token_format: AccessTokenFormat,
}

impl ClientSpec {
    pub fn service() -> Self {
        Self {
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::ClientCredentials],
            scope: "invoices:read invoices:write",
            audiences: vec!["https://api.example.com"],
            served_audiences: vec![],
            may_introspect_any: false,
            disabled: false,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            is_first_party: false,
            always_issue_refresh_token: false,
            require_pushed_authorization_requests: false,
            keys: None,
            dpop_bound_access_tokens: false,
            backchannel_logout_uri: None,
            web_origins: None,
            first_party_spa: false,
            access_token_format: AccessTokenFormat::Jwt,
        }
    }

    /// A confidential web app using the authorization code flow.
    pub fn web_app() -> Self {
        Self {
            grant_types: vec![GrantType::AuthorizationCode],
            scope: "openid profile email invoices:read",
            redirect_uris: vec![WEB_APP_REDIRECT_URI],
            post_logout_redirect_uris: vec!["https://app.example.com/logged-out"],
            ..Self::service()
        }
    }

    /// A first-party web app that may keep users signed in with refresh tokens.
    pub fn offline_app() -> Self {
        Self {
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scope: "openid profile email offline_access invoices:read invoices:write",
            is_first_party: true,
            ..Self::web_app()
        }
    }

    /// A public client (SPA or native app): no secret, PKCE only.
    pub fn public_app() -> Self {
        Self { auth_method: AuthMethod::None, ..Self::web_app() }
    }
}

/// A registered client and its secret (`None` for public clients).
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

impl TestClient {
    pub fn secret(&self) -> &str {
        self.secret.as_deref().expect("a confidential client")
    }
}

impl TestApp {
    pub async fn register_client(&self, spec: ClientSpec) -> TestClient {
        register(&*self.storage, spec).await
    }
}

/// Registers a client straight into `storage`.
pub async fn register(storage: &dyn tessera::storage::Storage, spec: ClientSpec) -> TestClient {
    {
        let has_secret = !matches!(spec.auth_method, AuthMethod::None | AuthMethod::PrivateKeyJwt);
        let secret = has_secret.then(|| GeneratedSecret::generate("tcs_"));
        let redirect_uris: Vec<String> = spec.redirect_uris.into_iter().map(String::from).collect();
        let client = Client {
            id: ClientId::generate(),
            name: "Test client".into(),
            auth_method: spec.auth_method,
            secret_digest: secret.as_ref().map(GeneratedSecret::digest),
            grant_types: spec.grant_types,
            scopes: ScopeSet::parse(spec.scope).unwrap(),
            audiences: spec.audiences.into_iter().map(String::from).collect(),
            served_audiences: spec.served_audiences.into_iter().map(String::from).collect(),
            may_introspect_any: spec.may_introspect_any,
            redirect_uris: redirect_uris.clone(),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.into_iter().map(String::from).collect(),
            is_first_party: spec.is_first_party,
            always_issue_refresh_token: spec.always_issue_refresh_token,
            require_pushed_authorization_requests: spec.require_pushed_authorization_requests,
            keys: spec.keys,
            dpop_bound_access_tokens: spec.dpop_bound_access_tokens,
            backchannel_logout_uri: spec.backchannel_logout_uri,
            backchannel_logout_session_required: true,
            web_origins_explicit: spec.web_origins.is_some(),
            first_party_spa: spec.first_party_spa,
            access_token_format: spec.access_token_format,
            web_origins: match spec.web_origins {
                Some(origins) => origins.into_iter().map(|o| WebOrigin::parse(o, false).unwrap()).collect(),
                None => WebOrigin::derive(&redirect_uris),
            },
            created_at: Utc::now(),
            disabled_at: spec.disabled.then(Utc::now),
        };
        storage.insert_client(&client).await.expect("insert client");
        TestClient { id: client.id.to_string(), secret: secret.map(|s| s.expose().to_owned()) }
    }
}
