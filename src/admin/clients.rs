//! Clients: register, list, show, change, disable, and rotate a confidential client's
//! secret. The `tessera client …` commands and `/admin/v1/clients` both call these.

use super::error::{invalid_as, ServiceError};
use super::Page;
use crate::domain::access_token::AccessTokenFormat;
use crate::domain::client::{parse_audience, AuthMethod, Client, ClientId, ClientType, GrantType, KeySource};
use crate::domain::redirect_uri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::GeneratedSecret;
use crate::domain::signals::Reason;
use crate::domain::web_origin::WebOrigin;
use crate::http::outbound::OutboundPolicy;
use crate::oauth::client_keys;
use crate::signals::{backchannel, Emitter};
use crate::storage::Storage;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Prefix of client secrets, so secret scanners can recognise leaked ones.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";
/// Longest client name (shown on consent pages).
const MAX_NAME: usize = 200;
/// Most values in one list of a registration (redirect URIs, audiences…): a registration
/// is read on every token request, so it stays small.
const MAX_VALUES: usize = 32;

/// Where URLs a client registers may point: its `jwks_uri` (`[private_key_jwt]`) and its
/// `backchannel_logout_uri` (`[backchannel_logout]`).
#[derive(Clone, Copy, Debug, Default)]
pub struct UrlPolicies {
    pub jwks_uri: OutboundPolicy,
    pub backchannel_logout_uri: OutboundPolicy,
}

impl UrlPolicies {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        Self {
            jwks_uri: client_keys::outbound_policy(settings),
            backchannel_logout_uri: backchannel::outbound_policy(settings),
        }
    }
}

/// A client to register. Unknown members are refused, so a misspelt option is an error
/// rather than silently the default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Human-readable name, shown on consent pages (1 to 200 characters).
    pub name: String,
    /// At least one of the grant types Tessera supports (`device_code` is accepted as short
    /// for the RFC 8628 URN).
    #[schema(schema_with = grant_types_schema)]
    pub grant_types: Vec<String>,
    /// Space-separated scopes the client may request (its default when it requests none).
    #[serde(default)]
    pub scope: String,
    /// Audiences of its access tokens; RFC 8707 `resource` values must be among them.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Resource identifiers it serves: it may introspect tokens whose `aud` names one (RFC 7662 §4).
    #[serde(default)]
    pub served_audiences: Vec<String>,
    /// A resource server that may introspect every token.
    #[serde(default)]
    pub introspect_any: bool,
    /// Exact redirect URIs (https, http to a loopback IP literal, or a private-use scheme).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Also allow plain http redirect URIs to other hosts (development only).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Users are not asked for consent.
    #[serde(default)]
    pub first_party: bool,
    /// A refresh token with every code exchange (needs the `refresh_token` grant).
    #[serde(default)]
    pub always_issue_refresh_token: bool,
    /// RFC 9449: every token request must carry a DPoP proof.
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// A public client (SPA, native app): no secret.
    #[serde(default)]
    pub public: bool,
    /// `client_secret_basic` (the default), `client_secret_post` or `private_key_jwt`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// `private_key_jwt`: the https URL of the client's JWK Set.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// `private_key_jwt`: the client's JWK Set (public keys only, at most 16 KB).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// RFC 9126: `/authorize` only with a pushed request.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2: where Logout Tokens are POSTed when a
    /// session the client took part in ends (https, no fragment).
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// §2.2: the client needs `sid` in Logout Tokens (default true; Tessera always sends it).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub backchannel_logout_session_required: bool,
    /// Origins of the client's browser app (`scheme://host[:port]`), which may call
    /// `/token`, `/revoke` and `/userinfo` from the browser (CORS). Absent: the origins of
    /// the https and loopback http redirect URIs. `*` and `null` are refused.
    #[serde(default)]
    pub web_origins: Option<Vec<String>>,
    /// A first-party SPA: the refresh token is set in an `HttpOnly; SameSite=Strict`
    /// cookie scoped to the token endpoint, never in the JSON body (needs the
    /// `refresh_token` grant and a web origin).
    #[serde(default)]
    pub first_party_spa: bool,
    /// `jwt` (the default) or `opaque`.
    #[serde(default)]
    pub access_token_format: TokenFormat,
}

fn yes() -> bool {
    true
}

/// What a client's access tokens are (README, "Choosing a token model").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// RFC 9068 JWTs, verified by resource servers with the JWK Set.
    #[default]
    Jwt,
    /// Random references, checked by introspection (RFC 7662) and revocable at once.
    Opaque,
}

impl From<TokenFormat> for AccessTokenFormat {
    fn from(format: TokenFormat) -> Self {
        match format {
            TokenFormat::Jwt => Self::Jwt,
            TokenFormat::Opaque => Self::Opaque,
        }
    }
}

impl From<AccessTokenFormat> for TokenFormat {
    fn from(format: AccessTokenFormat) -> Self {
        match format {
            AccessTokenFormat::Jwt => Self::Jwt,
            AccessTokenFormat::Opaque => Self::Opaque,
        }
    }
}

/// A change to a client: each member given replaces the stored value; the others stay.
/// Grant types, the authentication method and keys are fixed at registration (register
/// a new client to change them: tokens already issued were issued under those).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub scope: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub served_audiences: Option<Vec<String>>,
    pub introspect_any: Option<bool>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Applies to the URIs of this change only.
    #[serde(default)]
    pub allow_insecure_http: bool,
    pub first_party: Option<bool>,
    pub always_issue_refresh_token: Option<bool>,
    pub dpop_bound_access_tokens: Option<bool>,
    pub require_pushed_authorization_requests: Option<bool>,
    /// A new `backchannel_logout_uri`; `""` removes it.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    /// Replaces the registered web origins (CORS); from then on they no longer follow the
    /// redirect URIs.
    pub web_origins: Option<Vec<String>>,
    pub first_party_spa: Option<bool>,
    /// Tokens issued from then on take the new format; those already issued keep theirs.
    pub access_token_format: Option<TokenFormat>,
}

/// A client as operators see it: never its secret (only its digest is stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// `confidential` or `public`.
    pub client_type: &'static str,
    pub token_endpoint_auth_method: &'static str,
    pub grant_types: Vec<&'static str>,
    pub scope: String,
    pub audiences: Vec<String>,
    pub served_audiences: Vec<String>,
    pub may_introspect_any: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub first_party: bool,
    pub always_issue_refresh_token: bool,
    pub require_pushed_authorization_requests: bool,
    pub jwks_uri: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub dpop_bound_access_tokens: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// The origins CORS answers name (registered, or derived from the redirect URIs).
    pub web_origins: Vec<String>,
    /// Whether `web_origins` were registered (true) or derived from the redirect URIs.
    pub web_origins_explicit: bool,
    pub first_party_spa: bool,
    pub access_token_format: TokenFormat,
    /// RFC 3339.
    pub created_at: String,
    pub disabled_at: Option<String>,
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        Self {
            client_id: client.id.as_str().to_owned(),
            name: client.name.clone(),
            client_type: match client.client_type() {
                ClientType::Confidential => "confidential",
                ClientType::Public => "public",
            },
            token_endpoint_auth_method: client.auth_method.as_str(),
            grant_types: client.grant_types.iter().map(|g| g.as_str()).collect(),
            scope: client.scopes.to_string(),
            audiences: client.audiences.clone(),
            served_audiences: client.served_audiences.clone(),
            may_introspect_any: client.may_introspect_any,
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            first_party: client.is_first_party,
            always_issue_refresh_token: client.always_issue_refresh_token,
            require_pushed_authorization_requests: client.require_pushed_authorization_requests,
            jwks_uri: match &client.keys {
                Some(KeySource::Uri(uri)) => Some(uri.clone()),
                _ => None,
            },
            jwks: match &client.keys {
                Some(KeySource::Jwks(jwks)) => serde_json::from_str(jwks).ok(),
                _ => None,
            },
            dpop_bound_access_tokens: client.dpop_bound_access_tokens,
            backchannel_logout_uri: client.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: client.backchannel_logout_session_required,
            web_origins: client.web_origins.iter().map(|o| o.as_str().to_owned()).collect(),
            web_origins_explicit: client.web_origins_explicit,
            first_party_spa: client.first_party_spa,
            access_token_format: client.access_token_format.into(),
            created_at: client.created_at.to_rfc3339(),
            disabled_at: client.disabled_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// A client just registered, or with a new secret: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    /// Shown once; only its hash is stored. Absent for public and `private_key_jwt` clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// Registers a client. `outbound` says where its `jwks_uri` and `backchannel_logout_uri`
/// may point.
pub async fn create(
    storage: &dyn Storage,
    outbound: UrlPolicies,
    new: NewClient,
) -> Result<(Client, Option<GeneratedSecret>), ServiceError> {
    let name = checked_name(&new.name)?;
    if new.grant_types.is_empty() {
        return Err(ServiceError::invalid("grant_types", "at least one grant type is needed"));
    }
    let mut grant_types = Vec::new();
    for raw in &new.grant_types {
        // `device_code` is short for RFC 8628's URN, which is the grant's only name on the wire.
        let grant: GrantType = match raw.trim() {
            "device_code" => GrantType::DeviceCode,
            other => other.parse().map_err(invalid_as("grant_types"))?,
        };
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    grant_types.sort();
    let requested = new.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic");
    let auth_method = if new.public {
        AuthMethod::None
    } else {
        match requested.parse::<AuthMethod>().map_err(invalid_as("token_endpoint_auth_method"))? {
            AuthMethod::None => {
                return Err(ServiceError::invalid(
                    "token_endpoint_auth_method",
                    "none is for public clients: set public instead",
                ))
            }
            method => method,
        }
    };
    let keys = match (auth_method, &new.jwks_uri, &new.jwks) {
        (AuthMethod::PrivateKeyJwt, Some(uri), None) => Some(KeySource::Uri(
            client_keys::check_jwks_uri(uri, outbound.jwks_uri).map_err(|e| invalid("jwks_uri", e))?,
        )),
        (AuthMethod::PrivateKeyJwt, None, Some(jwks)) => {
            Some(KeySource::Jwks(client_keys::check_jwks(&jwks.to_string()).map_err(|e| invalid("jwks", e))?))
        }
        (AuthMethod::PrivateKeyJwt, _, _) => {
            return Err(invalid("jwks_uri", "private_key_jwt needs exactly one of a jwks_uri and a jwks"))
        }
        (_, None, None) => None,
        _ => return Err(invalid("jwks_uri", "a jwks_uri or jwks is for token_endpoint_auth_method private_key_jwt")),
    };
    if new.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "public",
            "a public client cannot use client_credentials (RFC 6749 §4.4): drop public or the grant",
        ));
    }
    let redirect_uris = registered_uris(&new.redirect_uris, "redirect_uris", new.allow_insecure_http)?;
    let (web_origins, web_origins_explicit) = match &new.web_origins {
        Some(values) => (web_origins(values, new.allow_insecure_http)?, true),
        None => (WebOrigin::derive(&redirect_uris), false),
    };
    let has_secret = matches!(auth_method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost);
    let secret = has_secret.then(|| GeneratedSecret::generate(CLIENT_SECRET_PREFIX));
    let client = Client {
        id: ClientId::generate(),
        name,
        auth_method,
        secret_digest: secret.as_ref().map(GeneratedSecret::digest),
        grant_types,
        scopes: ScopeSet::parse(&new.scope).map_err(invalid_as("scope"))?,
        audiences: audiences(&new.audiences, "audiences")?,
        served_audiences: audiences(&new.served_audiences, "served_audiences")?,
        may_introspect_any: new.introspect_any,
        redirect_uris,
        post_logout_redirect_uris: registered_uris(
            &new.post_logout_redirect_uris,
            "post_logout_redirect_uris",
            new.allow_insecure_http,
        )?,
        is_first_party: new.first_party,
        always_issue_refresh_token: new.always_issue_refresh_token,
        require_pushed_authorization_requests: new.require_pushed_authorization_requests,
        keys,
        dpop_bound_access_tokens: new.dpop_bound_access_tokens,
        backchannel_logout_uri: new
            .backchannel_logout_uri
            .as_deref()
            .map(|raw| backchannel_logout_uri(raw, outbound))
            .transpose()?,
        backchannel_logout_session_required: new.backchannel_logout_session_required,
        web_origins,
        web_origins_explicit,
        first_party_spa: new.first_party_spa,
        access_token_format: new.access_token_format.into(),
        created_at: Utc::now(),
        disabled_at: None,
    };
    check_consistent(&client)?;
    storage.insert_client(&client).await?;
    Ok((client, secret))
}

/// Applies `patch` to the client `id`; the client as it is now.
pub async fn update(
    storage: &dyn Storage,
    outbound: UrlPolicies,
    id: &str,
    patch: ClientPatch,
) -> Result<Client, ServiceError> {
    // Optimistic concurrency: the revision is read before the client, and the write only
    // lands if nothing changed in between; otherwise the patch is applied again to what the
    // other change left, so two PATCHes of different fields both take effect.
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let client_id = ClientId::parse(id).map_err(invalid_as("client_id"))?;
        let revision =
            storage.client_revision(&client_id).await?.ok_or_else(|| ServiceError::not_found("client", id))?;
        let client = apply(find(storage, id).await?, &patch, outbound)?;
        if storage.update_client(&client, revision, Utc::now()).await? {
            return Ok(client);
        }
    }
    Err(ServiceError::Conflict(format!("client {id} is being changed by others: try again")))
}

/// `patch` applied to `client`, checked.
fn apply(mut client: Client, patch: &ClientPatch, outbound: UrlPolicies) -> Result<Client, ServiceError> {
    if let Some(raw) = &patch.backchannel_logout_uri {
        client.backchannel_logout_uri =
            if raw.is_empty() { None } else { Some(backchannel_logout_uri(raw, outbound)?) };
    }
    client.backchannel_logout_session_required =
        patch.backchannel_logout_session_required.unwrap_or(client.backchannel_logout_session_required);
    if let Some(name) = &patch.name {
        client.name = checked_name(name)?;
    }
    if let Some(scope) = &patch.scope {
        client.scopes = ScopeSet::parse(scope).map_err(invalid_as("scope"))?;
    }
    if let Some(values) = &patch.audiences {
        client.audiences = audiences(values, "audiences")?;
    }
    if let Some(values) = &patch.served_audiences {
        client.served_audiences = audiences(values, "served_audiences")?;
    }
    if let Some(values) = &patch.redirect_uris {
        client.redirect_uris = registered_uris(values, "redirect_uris", patch.allow_insecure_http)?;
    }
    if let Some(values) = &patch.web_origins {
        client.web_origins = web_origins(values, patch.allow_insecure_http)?;
        client.web_origins_explicit = true;
    } else if !client.web_origins_explicit {
        client.web_origins = WebOrigin::derive(&client.redirect_uris);
    }
    if let Some(values) = &patch.post_logout_redirect_uris {
        client.post_logout_redirect_uris =
            registered_uris(values, "post_logout_redirect_uris", patch.allow_insecure_http)?;
    }
    client.may_introspect_any = patch.introspect_any.unwrap_or(client.may_introspect_any);
    client.is_first_party = patch.first_party.unwrap_or(client.is_first_party);
    client.always_issue_refresh_token = patch.always_issue_refresh_token.unwrap_or(client.always_issue_refresh_token);
    client.dpop_bound_access_tokens = patch.dpop_bound_access_tokens.unwrap_or(client.dpop_bound_access_tokens);
    client.first_party_spa = patch.first_party_spa.unwrap_or(client.first_party_spa);
    client.access_token_format = patch.access_token_format.map_or(client.access_token_format, Into::into);
    client.require_pushed_authorization_requests =
        patch.require_pushed_authorization_requests.unwrap_or(client.require_pushed_authorization_requests);
    check_consistent(&client)?;
    // The secret and the disabled mark are not written: a rotation or a disable running
    // at the same time is never undone by a change made from an older read.
    Ok(client)
}

/// How often a change is applied again after others won the race, before 409. Each round
/// of a race has a winner, so n changes racing on one row all land within n attempts: this
/// bounds the work of one request while letting a few dozen concurrent changes (an
/// operator's script in parallel) through without 409s.
const MAX_UPDATE_ATTEMPTS: usize = 32;

/// The rules that tie a registration's parts together, for a new client and a changed one.
fn check_consistent(client: &Client) -> Result<(), ServiceError> {
    let public = client.client_type() == ClientType::Public;
    if public && (client.may_introspect_any || !client.served_audiences.is_empty()) {
        return Err(invalid(
            "introspect_any",
            "introspect_any and served_audiences need a confidential client: a public client cannot introspect",
        ));
    }
    if client.always_issue_refresh_token && !client.grant_types.contains(&GrantType::RefreshToken) {
        return Err(invalid("always_issue_refresh_token", "always_issue_refresh_token needs the refresh_token grant"));
    }
    if client.first_party_spa && !client.grant_types.contains(&GrantType::RefreshToken) {
        return Err(invalid("first_party_spa", "first_party_spa needs the refresh_token grant"));
    }
    if client.first_party_spa && client.web_origins.is_empty() {
        return Err(invalid(
            "first_party_spa",
            "first_party_spa needs a web origin (an https redirect URI, or web_origins): the refresh cookie is \
             only accepted from one",
        ));
    }
    if client.grant_types.contains(&GrantType::AuthorizationCode) && client.redirect_uris.is_empty() {
        return Err(invalid("redirect_uris", "the authorization_code grant needs at least one redirect URI"));
    }
    Ok(())
}

/// Every client, oldest first (the CLI's list).
pub async fn list_all(storage: &dyn Storage) -> Result<Vec<Client>, ServiceError> {
    Ok(storage.list_clients().await?)
}

/// Up to `limit` clients after the client `after` (oldest first); `Invalid` when `after`
/// names no client (a cursor that was tampered with).
pub async fn list_page(storage: &dyn Storage, after: Option<&str>, limit: u32) -> Result<Page<Client>, ServiceError> {
    let after = match after {
        Some(raw) => {
            let id = ClientId::parse(raw).map_err(|_| invalid("cursor", "the cursor is not one this server gave"))?;
            if storage.find_client(&id).await?.is_none() {
                return Err(invalid("cursor", "the cursor is not one this server gave"));
            }
            Some(id)
        }
        None => None,
    };
    // One more than asked: whether there is a next page, without a second query.
    let mut items = storage.list_clients_page(after.as_ref(), i64::from(limit) + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().map(|c| c.id.as_str().to_owned()) } else { None };
    Ok(Page { items, next })
}

pub async fn find(storage: &dyn Storage, raw_id: &str) -> Result<Client, ServiceError> {
    let id = ClientId::parse(raw_id).map_err(invalid_as("client_id"))?;
    storage.find_client(&id).await?.ok_or_else(|| ServiceError::not_found("client", raw_id))
}

/// Disables a client and records the Shared Signals events that end its tokens. False
/// when it was disabled already.
pub async fn disable(storage: &dyn Storage, events: &Emitter, raw_id: &str) -> Result<bool, ServiceError> {
    let id = ClientId::parse(raw_id).map_err(invalid_as("client_id"))?;
    if storage.disable_client(&id, &events.revocation(Reason::ClientDisabled, Utc::now())).await? {
        return Ok(true);
    }
    find(storage, raw_id).await?;
    Ok(false)
}

/// Replaces a confidential client's secret; the old one stops working at once.
pub async fn rotate_secret(storage: &dyn Storage, raw_id: &str) -> Result<(Client, GeneratedSecret), ServiceError> {
    let client = find(storage, raw_id).await?;
    match client.auth_method {
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {}
        AuthMethod::PrivateKeyJwt => {
            return Err(ServiceError::Conflict(format!(
                "client {raw_id} authenticates with private_key_jwt: it has no secret"
            )))
        }
        AuthMethod::None => return Err(ServiceError::Conflict(format!("client {raw_id} is public and has no secret"))),
    }
    let secret = GeneratedSecret::generate(CLIENT_SECRET_PREFIX);
    if !storage.set_client_secret(&client.id, &secret.digest(), Utc::now()).await? {
        return Err(ServiceError::not_found("client", raw_id));
    }
    Ok((client, secret))
}

/// The schema of `grant_types`: the names [`GrantType`] parses, from the type itself so
/// the document never lags behind a new grant.
fn grant_types_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let names = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(GrantType::ALL.map(GrantType::as_str)));
    ArrayBuilder::new().items(names).min_items(Some(1)).build()
}

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

fn backchannel_logout_uri(raw: &str, outbound: UrlPolicies) -> Result<String, ServiceError> {
    backchannel::check_uri(raw, outbound.backchannel_logout_uri).map_err(|e| invalid("backchannel_logout_uri", e))
}

fn checked_name(raw: &str) -> Result<String, ServiceError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid("name", format!("must be 1 to {MAX_NAME} characters, none of them control characters")));
    }
    Ok(name.to_owned())
}

fn audiences(values: &[String], field: &'static str) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_VALUES {
        return Err(invalid(field, format!("at most {MAX_VALUES} values")));
    }
    values.iter().map(|a| parse_audience(a).map_err(invalid_as(field))).collect()
}

/// Parses each origin with [`WebOrigin::parse`], without duplicates.
fn web_origins(values: &[String], allow_insecure_http: bool) -> Result<Vec<WebOrigin>, ServiceError> {
    if values.len() > MAX_VALUES {
        return Err(invalid("web_origins", format!("at most {MAX_VALUES} values")));
    }
    let mut origins: Vec<WebOrigin> = Vec::new();
    for raw in values {
        let origin = WebOrigin::parse(raw.trim(), allow_insecure_http).map_err(|e| invalid("web_origins", e.reason))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// Checks each value with [`redirect_uri::parse_registered`], naming the field on failure.
fn registered_uris(
    values: &[String],
    field: &'static str,
    allow_insecure_http: bool,
) -> Result<Vec<String>, ServiceError> {
    if values.len() > MAX_VALUES {
        return Err(invalid(field, format!("at most {MAX_VALUES} values")));
    }
    values
        .iter()
        .map(|raw| {
            redirect_uri::parse_registered(raw, allow_insecure_http)
                .map_err(|e| invalid(field, format!("`{raw}` {}", e.reason)))
        })
        .collect()
}
