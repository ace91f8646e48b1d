//! `tessera client …`: register, inspect, disable clients and rotate their secrets.

use super::{print_json, when};
use crate::domain::client::{parse_audience, AuthMethod, Client, ClientId, ClientType, GrantType, KeySource};
use crate::domain::redirect_uri;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::GeneratedSecret;
use crate::domain::signals::Reason;
use crate::http::outbound::OutboundPolicy;
use crate::oauth::client_keys;
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::{bail, Context};
use chrono::Utc;
use clap::{Args, Subcommand};
use serde_json::json;

/// Prefix of client secrets, so secret scanners can recognise leaked ones.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and (for confidential clients) a secret, once.
    Create(Box<CreateArgs>),
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a client: its token requests are refused from now on.
    Disable { client_id: String },
    /// Replace a confidential client's secret; prints the new one, once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Human-readable name, shown on consent pages.
    #[arg(long)]
    name: String,
    /// Allowed grant type (repeat or comma-separate): client_credentials, authorization_code, refresh_token,
    /// device_code (short for urn:ietf:params:oauth:grant-type:device_code, RFC 8628).
    #[arg(long = "grant", value_delimiter = ',', required = true)]
    grants: Vec<String>,
    /// Space-separated scopes the client may request (its default when it requests none).
    #[arg(long, default_value = "")]
    scope: String,
    /// Audience of its access tokens (repeatable); RFC 8707 `resource` values must be among them.
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// A resource identifier this client serves as a resource server (repeatable): it may
    /// introspect access tokens whose `aud` names it (RFC 7662 §4).
    #[arg(long = "serves-audience")]
    served_audiences: Vec<String>,
    /// A resource server that may introspect every token, whoever it was issued to.
    #[arg(long)]
    introspect_any: bool,
    /// Redirect URI for the authorization code flow (repeatable; exact match): https, http to a
    /// loopback IP literal, or a native app's private-use scheme such as com.example.app.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Where the client may send the browser after logout (repeatable; exact match; the same
    /// schemes as --redirect-uri).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Also allow plain http redirect URIs to hosts other than a loopback IP (development only:
    /// codes and logout redirects then cross the network in clear).
    #[arg(long)]
    allow_insecure_http: bool,
    /// A first-party client: users are not asked for consent.
    #[arg(long)]
    first_party: bool,
    /// Issue a refresh token with every code exchange, even without the offline_access scope
    /// (needs --grant refresh_token).
    #[arg(long)]
    always_refresh_token: bool,
    /// Require DPoP (RFC 9449): every token request must carry a DPoP proof, so every access
    /// token is bound to the client's key (without it a proof is optional).
    #[arg(long)]
    dpop_bound_access_tokens: bool,
    /// A public client (SPA, native app): no secret, token_endpoint_auth_method none.
    #[arg(long)]
    public: bool,
    /// client_secret_basic (default), client_secret_post or private_key_jwt (with --jwks-uri
    /// or --jwks-file: no secret, the client signs assertions with its private key).
    #[arg(long, alias = "auth", default_value = "client_secret_basic")]
    auth_method: String,
    /// private_key_jwt: the https URL of the client's JWK Set, fetched when needed.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// private_key_jwt: a file holding the client's JWK Set (public keys only, at most 16 KB).
    #[arg(long)]
    jwks_file: Option<std::path::PathBuf>,
    /// Require pushed authorization requests (RFC 9126): /authorize only with a request_uri
    /// from the PAR endpoint.
    #[arg(long)]
    require_par: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `outbound` is the policy `jwks_uri`s are checked against (`[private_key_jwt]`).
pub async fn run(
    command: ClientCommand,
    storage: &dyn Storage,
    events: &Emitter,
    outbound: OutboundPolicy,
) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => create(*args, storage, outbound).await,
        ClientCommand::List { json } => {
            let clients = storage.list_clients().await?;
            if json {
                return print_json(&json!(clients.iter().map(describe).collect::<Vec<_>>()));
            }
            if clients.is_empty() {
                println!("No clients yet. Create one with `tessera client create --help`.");
            }
            for client in &clients {
                let status = if client.is_disabled() { "disabled" } else { "active" };
                let grants: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
                println!("{}  {:<24} {:<8} {}", client.id, client.name, status, grants.join(","));
            }
            Ok(())
        }
        ClientCommand::Show { client_id, json } => {
            let client = find(storage, &client_id).await?;
            if json {
                return print_json(&describe(&client));
            }
            print_human(&client, None);
            Ok(())
        }
        ClientCommand::Disable { client_id } => {
            let id = ClientId::parse(&client_id)?;
            if !storage.disable_client(&id, &events.revocation(Reason::ClientDisabled, Utc::now())).await? {
                find(storage, &client_id).await?;
                println!("Client {client_id} was already disabled.");
            } else {
                println!("Client {client_id} is disabled.");
            }
            Ok(())
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let client = find(storage, &client_id).await?;
            match client.auth_method {
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {}
                AuthMethod::PrivateKeyJwt => {
                    bail!("client {client_id} authenticates with private_key_jwt: it has no secret")
                }
                AuthMethod::None => bail!("client {client_id} is public and has no secret"),
            }
            let secret = GeneratedSecret::generate(CLIENT_SECRET_PREFIX);
            storage.set_client_secret(&client.id, &secret.digest(), Utc::now()).await?;
            if json {
                return print_json(&json!({ "client_id": client.id.as_str(), "client_secret": secret.expose() }));
            }
            println!(
                "New secret for {client_id} (the old one stops working now; shown once, store it now):\n  {}",
                secret.expose()
            );
            Ok(())
        }
    }
}

async fn create(args: CreateArgs, storage: &dyn Storage, outbound: OutboundPolicy) -> anyhow::Result<()> {
    let name = args.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        bail!("--name must be 1 to 200 characters");
    }
    let mut grant_types = Vec::new();
    for raw in &args.grants {
        // `device_code` is short for RFC 8628's URN, which is the grant's only name on the wire.
        let grant: GrantType = match raw.trim() {
            "device_code" => GrantType::DeviceCode,
            other => other.parse()?,
        };
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    grant_types.sort();
    let auth_method = if args.public {
        AuthMethod::None
    } else {
        match args.auth_method.parse::<AuthMethod>()? {
            AuthMethod::None => bail!("--auth-method none is for public clients: use --public"),
            method => method,
        }
    };
    let keys = match (auth_method, &args.jwks_uri, &args.jwks_file) {
        (AuthMethod::PrivateKeyJwt, Some(uri), None) => Some(KeySource::Uri(
            client_keys::check_jwks_uri(uri, outbound).map_err(|e| anyhow::anyhow!("--jwks-uri {e}"))?,
        )),
        (AuthMethod::PrivateKeyJwt, None, Some(path)) => {
            let text = read_bounded(path)?;
            Some(KeySource::Jwks(client_keys::check_jwks(&text).map_err(|e| anyhow::anyhow!("--jwks-file {e}"))?))
        }
        (AuthMethod::PrivateKeyJwt, _, _) => bail!("private_key_jwt needs exactly one of --jwks-uri and --jwks-file"),
        (_, None, None) => None,
        _ => bail!("--jwks-uri and --jwks-file are for --auth-method private_key_jwt"),
    };
    if args.public && grant_types.contains(&GrantType::ClientCredentials) {
        bail!("a public client cannot use client_credentials (RFC 6749 §4.4): drop --public or the grant");
    }
    let scopes = ScopeSet::parse(&args.scope)?;
    let audiences = args.audiences.iter().map(|a| parse_audience(a)).collect::<Result<Vec<_>, _>>()?;
    let served_audiences = args.served_audiences.iter().map(|a| parse_audience(a)).collect::<Result<Vec<_>, _>>()?;
    if args.public && (args.introspect_any || !served_audiences.is_empty()) {
        bail!("--introspect-any and --serves-audience need a confidential client: a public client cannot introspect");
    }
    let redirect_uris = registered_uris(&args.redirect_uris, "--redirect-uri", args.allow_insecure_http)?;
    let post_logout_redirect_uris =
        registered_uris(&args.post_logout_redirect_uris, "--post-logout-redirect-uri", args.allow_insecure_http)?;
    if args.always_refresh_token && !grant_types.contains(&GrantType::RefreshToken) {
        bail!("--always-refresh-token needs --grant refresh_token");
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        bail!("the authorization_code grant needs at least one --redirect-uri");
    }
    let has_secret = matches!(auth_method, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost);
    let secret = has_secret.then(|| GeneratedSecret::generate(CLIENT_SECRET_PREFIX));
    let client = Client {
        id: ClientId::generate(),
        name,
        auth_method,
        secret_digest: secret.as_ref().map(GeneratedSecret::digest),
        grant_types,
        scopes,
        audiences,
        served_audiences,
        may_introspect_any: args.introspect_any,
        redirect_uris,
        post_logout_redirect_uris,
        is_first_party: args.first_party,
        always_issue_refresh_token: args.always_refresh_token,
        require_pushed_authorization_requests: args.require_par,
        keys,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        created_at: Utc::now(),
        disabled_at: None,
    };
    storage.insert_client(&client).await?;
    if args.json {
        let mut value = describe(&client);
        if let Some(secret) = &secret {
            value["client_secret"] = json!(secret.expose());
        }
        return print_json(&value);
    }
    print_human(&client, secret.as_ref());
    if secret.is_some() {
        println!("The secret is shown once and stored only as a hash: copy it now.");
    }
    Ok(())
}

/// Reads a JWK Set file, refusing one larger than [`client_keys::MAX_JWKS_BYTES`].
fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
    let mut text = String::new();
    file.take(client_keys::MAX_JWKS_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read --jwks-file {} as UTF-8 text", path.display()))?;
    Ok(text)
}

/// Checks each value with [`redirect_uri::parse_registered`], naming the flag on failure.
fn registered_uris(values: &[String], flag: &str, allow_insecure_http: bool) -> anyhow::Result<Vec<String>> {
    values
        .iter()
        .map(|raw| match redirect_uri::parse_registered(raw, allow_insecure_http) {
            Ok(uri) => Ok(uri),
            Err(e) => bail!("{flag} `{raw}` {}", e.reason),
        })
        .collect()
}

async fn find(storage: &dyn Storage, raw_id: &str) -> anyhow::Result<Client> {
    let id = ClientId::parse(raw_id)?;
    storage.find_client(&id).await?.with_context(|| format!("no client with id {raw_id}"))
}

fn describe(client: &Client) -> serde_json::Value {
    json!({
        "client_id": client.id.as_str(),
        "name": client.name,
        "client_type": match client.client_type() { ClientType::Confidential => "confidential", ClientType::Public => "public" },
        "token_endpoint_auth_method": client.auth_method.as_str(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": client.scopes.to_string(),
        "audiences": client.audiences,
        "served_audiences": client.served_audiences,
        "may_introspect_any": client.may_introspect_any,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "first_party": client.is_first_party,
        "always_issue_refresh_token": client.always_issue_refresh_token,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "jwks_uri": match &client.keys { Some(KeySource::Uri(uri)) => Some(uri.as_str()), _ => None },
        "jwks": match &client.keys {
            Some(KeySource::Jwks(jwks)) => serde_json::from_str::<serde_json::Value>(jwks).ok(),
            _ => None,
        },
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "created_at": client.created_at.to_rfc3339(),
        "disabled_at": client.disabled_at.map(|t| t.to_rfc3339()),
    })
}

fn print_human(client: &Client, secret: Option<&GeneratedSecret>) {
    println!("client_id:     {}", client.id);
    if let Some(secret) = secret {
        println!("client_secret: {}", secret.expose());
    }
    println!("name:          {}", client.name);
    println!("auth method:   {}", client.auth_method.as_str());
    println!("grant types:   {}", client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" "));
    println!("scope:         {}", client.scopes);
    println!("audiences:     {}", client.audiences.join(" "));
    if !client.served_audiences.is_empty() {
        println!("serves:        {}", client.served_audiences.join(" "));
    }
    if client.may_introspect_any {
        println!("introspects:   any token");
    }
    match &client.keys {
        Some(KeySource::Uri(uri)) => println!("jwks_uri:      {uri}"),
        Some(KeySource::Jwks(_)) => println!("jwks:          registered (see --json)"),
        None => {}
    }
    if client.require_pushed_authorization_requests {
        println!("requires PAR:  yes");
    }
    if !client.redirect_uris.is_empty() {
        println!("redirect URIs: {}", client.redirect_uris.join(" "));
    }
    if client.dpop_bound_access_tokens {
        println!("DPoP:          required (RFC 9449)");
    }
    println!("created:       {}", when(Some(client.created_at)));
    if client.is_disabled() {
        println!("disabled:      {}", when(client.disabled_at));
    }
}
