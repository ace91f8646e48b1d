//! `tessera client …`: register, inspect, disable clients and rotate their secrets.

use super::{cli_error, print_json, when};
use crate::admin::clients::{self, ClientView, ClientWithSecret, NewClient, UrlPolicies};
use crate::domain::access_token::AccessTokenFormat;
use crate::domain::client::{Client, KeySource};
use crate::domain::secret::GeneratedSecret;
use crate::oauth::client_keys;
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;

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
    /// OpenID Connect Back-Channel Logout: the https URL Tessera POSTs a Logout Token to when
    /// a session the client took part in ends (http only to loopback with
    /// backchannel_logout.allow_loopback_uri).
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Whether the client needs `sid` in Logout Tokens (Tessera always sends it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    backchannel_logout_session_required: bool,
    /// An origin of the client's browser app, scheme://host[:port] (repeatable): it may call
    /// /token, /revoke and /userinfo from the browser (CORS). Without it, the origins of the
    /// https and loopback http redirect URIs; with it, only those given.
    #[arg(long = "web-origin")]
    web_origins: Vec<String>,
    /// A first-party single-page app: its refresh token is set in an HttpOnly, SameSite=Strict
    /// cookie scoped to the token endpoint instead of the JSON body (needs --grant refresh_token).
    #[arg(long)]
    first_party_spa: bool,
    /// What its access tokens are: jwt (RFC 9068, verified by resource servers with the JWK
    /// Set) or opaque (random references, checked by introspection and revocable at once).
    #[arg(long, value_name = "jwt|opaque", default_value = "jwt")]
    access_token_format: AccessTokenFormat,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl CreateArgs {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `outbound` says where `jwks_uri`s (`[private_key_jwt]`) and `backchannel_logout_uri`s
/// (`[backchannel_logout]`) may point.
pub async fn run(
    command: ClientCommand,
    storage: &dyn Storage,
    events: &Emitter,
    outbound: UrlPolicies,
) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => create(*args, storage, outbound).await,
        ClientCommand::List { json } => {
            let clients = clients::list_all(storage).await.map_err(cli_error)?;
            if json {
                return print_json(&clients.iter().map(ClientView::from).collect::<Vec<_>>());
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
            let client = clients::find(storage, &client_id).await.map_err(cli_error)?;
            if json {
                return print_json(&ClientView::from(&client));
            }
            print_human(&client, None);
            Ok(())
        }
        ClientCommand::Disable { client_id } => {
            if clients::disable(storage, events, &client_id).await.map_err(cli_error)? {
                println!("Client {client_id} is disabled.");
            } else {
                println!("Client {client_id} was already disabled.");
            }
            Ok(())
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let (client, secret) = clients::rotate_secret(storage, &client_id).await.map_err(cli_error)?;
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

async fn create(args: CreateArgs, storage: &dyn Storage, outbound: UrlPolicies) -> anyhow::Result<()> {
    let jwks = match &args.jwks_file {
        Some(path) => {
            let text = read_bounded(path)?;
            if text.len() > client_keys::MAX_JWKS_BYTES {
                bail!("--jwks-file is larger than {} bytes", client_keys::MAX_JWKS_BYTES);
            }
            Some(serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("--jwks-file is not JSON: {e}"))?)
        }
        None => None,
    };
    let new = NewClient {
        name: args.name,
        grant_types: args.grants,
        scope: args.scope,
        audiences: args.audiences,
        served_audiences: args.served_audiences,
        introspect_any: args.introspect_any,
        redirect_uris: args.redirect_uris,
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        allow_insecure_http: args.allow_insecure_http,
        first_party: args.first_party,
        always_issue_refresh_token: args.always_refresh_token,
        dpop_bound_access_tokens: args.dpop_bound_access_tokens,
        public: args.public,
        token_endpoint_auth_method: (!args.public).then_some(args.auth_method),
        jwks_uri: args.jwks_uri,
        jwks,
        require_pushed_authorization_requests: args.require_par,
        backchannel_logout_uri: args.backchannel_logout_uri,
        backchannel_logout_session_required: args.backchannel_logout_session_required,
        web_origins: (!args.web_origins.is_empty()).then_some(args.web_origins),
        first_party_spa: args.first_party_spa,
        access_token_format: args.access_token_format.into(),
    };
    let (client, secret) = clients::create(storage, outbound, new).await.map_err(cli_error)?;
    if args.json {
        return print_json(&ClientWithSecret {
            client: ClientView::from(&client),
            client_secret: secret.as_ref().map(|s| s.expose().to_owned()),
        });
    }
    print_human(&client, secret.as_ref());
    if secret.is_some() {
        println!("The secret is shown once and stored only as a hash: copy it now.");
    }
    Ok(())
}

/// Reads a JWK Set file, at most one byte more than [`client_keys::MAX_JWKS_BYTES`]
/// (enough to tell that it is too large).
fn read_bounded(path: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
    let mut text = String::new();
    file.take(client_keys::MAX_JWKS_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
    Ok(text)
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
    if !client.web_origins.is_empty() {
        let origins: Vec<&str> = client.web_origins.iter().map(|o| o.as_str()).collect();
        println!("web origins:   {}", origins.join(" "));
    }
    if client.dpop_bound_access_tokens {
        println!("DPoP:          required (RFC 9449)");
    }
    println!("access tokens: {}", client.access_token_format);
    if let Some(uri) = &client.backchannel_logout_uri {
        println!("back-channel logout: {uri}");
    }
    println!("created:       {}", when(Some(client.created_at)));
    if client.is_disabled() {
        println!("disabled:      {}", when(client.disabled_at));
    }
}
