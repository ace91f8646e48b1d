//! OAuth clients (RFC 6749 §2): their registration as stored, and the typed values in it.

use super::access_token::AccessTokenFormat;
use super::scope::ScopeSet;
use super::secret::SecretDigest;
use super::web_origin::WebOrigin;
use super::InvalidParameter;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// A client identifier (RFC 6749 §2.2). Tessera generates UUIDs; anything printable
/// up to 255 bytes is accepted when presented, so lookups never fail on shape alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidParameter> {
        let printable = raw.bytes().all(|b| (0x20..=0x7E).contains(&b));
        if raw.is_empty() || raw.len() > 255 || !printable {
            return Err(InvalidParameter::new("client_id", "must be 1 to 255 printable ASCII characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 6749 §2.1 client types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    /// Can keep a secret (a server-side app or service).
    Confidential,
    /// Cannot (SPA, native app): identified by `client_id`, protected by PKCE.
    Public,
}

/// Grant types Tessera knows (RFC 6749 §4, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// RFC 8628 §3.4.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 4] =
        [Self::AuthorizationCode, Self::ClientCredentials, Self::RefreshToken, Self::DeviceCode];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

impl FromStr for GrantType {
    type Err = InvalidParameter;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw).ok_or_else(|| {
            InvalidParameter::new(
                "grant_type",
                format!(
                    "`{raw}` is not one of authorization_code, client_credentials, refresh_token, \
                     urn:ietf:params:oauth:grant-type:device_code"
                ),
            )
        })
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client authenticates at the token endpoint (OAuth Dynamic Client Registration,
/// RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A signed JWT assertion (RFC 7523 §2.2; OpenID Connect Core §9 `private_key_jwt`),
    /// checked with the public keys the client registered ([`KeySource`]).
    PrivateKeyJwt,
    /// A public client: no secret.
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = InvalidParameter;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            "none" => Ok(Self::None),
            other => Err(InvalidParameter::new(
                "token_endpoint_auth_method",
                format!("`{other}` is not one of client_secret_basic, client_secret_post, private_key_jwt, none"),
            )),
        }
    }
}

/// Where the public keys of a `private_key_jwt` client are (RFC 7591 §2 `jwks`, `jwks_uri`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A JWK Set registered with the client (JSON text, checked at registration).
    Jwks(String),
    /// A URL Tessera fetches the JWK Set from (https; checked at registration).
    Uri(String),
}

/// A registered client, as stored.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub auth_method: AuthMethod,
    /// `None` for public clients.
    pub secret_digest: Option<SecretDigest>,
    pub grant_types: Vec<GrantType>,
    /// The scopes the client may request; also its default when it requests none.
    pub scopes: ScopeSet,
    /// Audiences (`aud`) of its access tokens (RFC 9068 §3, RFC 8707).
    pub audiences: Vec<String>,
    /// The resource identifiers this client serves, as a resource server: it may introspect
    /// access tokens whose `aud` names one of them (RFC 7662 §4).
    pub served_audiences: Vec<String>,
    /// A resource server that may introspect every token (RFC 7662 §4), whoever it was
    /// issued to and for.
    pub may_introspect_any: bool,
    pub redirect_uris: Vec<String>,
    /// RP-Initiated Logout 1.0 §3: where the client may send the browser after logout.
    pub post_logout_redirect_uris: Vec<String>,
    /// A first-party client skips the consent page.
    pub is_first_party: bool,
    /// Issue a refresh token with every code exchange, even without `offline_access`.
    pub always_issue_refresh_token: bool,
    /// RFC 9126 §6 `require_pushed_authorization_requests`: `/authorize` only with a
    /// `request_uri` from the PAR endpoint.
    pub require_pushed_authorization_requests: bool,
    /// The public keys of a `private_key_jwt` client; `None` for the others.
    pub keys: Option<KeySource>,
    /// RFC 9449 §5.2 (`dpop_bound_access_tokens`): the client must present a DPoP proof
    /// at the token endpoint; without one its token requests are refused.
    pub dpop_bound_access_tokens: bool,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2: where Tessera POSTs a Logout Token
    /// when a session the client took part in ends (https; checked at registration).
    pub backchannel_logout_uri: Option<String>,
    /// §2.2 `backchannel_logout_session_required`: the client needs `sid` in its Logout
    /// Tokens. Tessera always sends it; the flag is kept and shown for the RP's benefit.
    pub backchannel_logout_session_required: bool,
    /// The origins its browser app runs on: CORS answers from `/token`, `/revoke` and
    /// `/userinfo` name them (Fetch Standard §3.2). Derived from `redirect_uris` unless
    /// registered explicitly ([`WebOrigin::derive`]).
    pub web_origins: Vec<WebOrigin>,
    /// `web_origins` was registered, rather than derived from the redirect URIs (and then
    /// follows them when they change).
    pub web_origins_explicit: bool,
    /// A first-party single-page app whose refresh token lives in an `HttpOnly` cookie
    /// scoped to the token endpoint instead of the JSON body, out of the reach of its
    /// JavaScript (OAuth 2.0 for Browser-Based Apps §6.1's aim without a backend).
    pub first_party_spa: bool,
    /// What its access tokens are: JWTs resource servers verify themselves, or opaque
    /// references they introspect.
    pub access_token_format: AccessTokenFormat,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

impl Client {
    pub fn client_type(&self) -> ClientType {
        match self.auth_method {
            AuthMethod::None => ClientType::Public,
            _ => ClientType::Confidential,
        }
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    /// Is `origin` (a request's `Origin` header) one of this client's web origins?
    pub fn has_web_origin(&self, origin: &str) -> bool {
        self.web_origins.iter().any(|o| o.as_str() == origin)
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// May this client learn that an access token issued to `token_client` for
    /// `token_audiences` is active? RFC 7662 §4: the server must decide which tokens a
    /// client may introspect, or a stolen token's owner, scope and lifetime leak to any
    /// client. A client sees the tokens issued to it and those meant for an audience it
    /// serves; only one registered to introspect any token sees the rest.
    pub fn may_introspect(&self, token_client: &str, token_audiences: &[&str]) -> bool {
        self.may_introspect_any
            || self.id.as_str() == token_client
            || token_audiences.iter().any(|aud| self.served_audiences.iter().any(|served| served == aud))
    }
}

/// Validates an audience value: an identifier without whitespace (usually an absolute URI).
pub fn parse_audience(raw: &str) -> Result<String, InvalidParameter> {
    if raw.is_empty() || raw.len() > 2048 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidParameter::new("audience", format!("`{raw}` must be non-empty with no whitespace")));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_types_round_trip() {
        for grant in GrantType::ALL {
            assert_eq!(grant.as_str().parse::<GrantType>().unwrap(), grant);
        }
        assert!("password".parse::<GrantType>().is_err());
    }

    #[test]
    fn client_id_rejects_control_characters_and_empty() {
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a\nb").is_err());
        assert!(ClientId::parse(&"x".repeat(256)).is_err());
        assert!(ClientId::parse("billing-worker").is_ok());
    }

    fn resource_server(served: &[&str], may_introspect_any: bool) -> Client {
        Client {
            id: ClientId::parse("invoices-api").unwrap(),
            name: "Invoices API".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            secret_digest: None,
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("").unwrap(),
            audiences: vec![],
            served_audiences: served.iter().map(|s| s.to_string()).collect(),
            may_introspect_any,
            redirect_uris: vec![],
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
            access_token_format: AccessTokenFormat::Jwt,
            created_at: Utc::now(),
            disabled_at: None,
        }
    }

    #[test]
    fn a_client_introspects_its_own_tokens_and_those_of_audiences_it_serves() {
        let api = resource_server(&["https://invoices.example.com"], false);
        assert!(api.may_introspect("invoices-api", &["https://other.example.com"]), "its own token");
        assert!(api.may_introspect("web-app", &["https://invoices.example.com"]));
        assert!(api.may_introspect("web-app", &["https://other.example.com", "https://invoices.example.com"]));
        assert!(!api.may_introspect("web-app", &["https://other.example.com"]));
        assert!(!api.may_introspect("web-app", &[]));
        assert!(!api.may_introspect("web-app", &["https://invoices.example.com/"]), "audiences compare exactly");
        assert!(resource_server(&[], true).may_introspect("web-app", &["https://other.example.com"]));
    }

    #[test]
    fn audiences_must_be_single_tokens() {
        assert!(parse_audience("https://api.example.com").is_ok());
        assert!(parse_audience("a b").is_err());
        assert!(parse_audience("").is_err());
    }
}
