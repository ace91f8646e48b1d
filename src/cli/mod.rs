//! Command line: `serve` (the default), `migrate`, and the operator commands for
//! clients, users and keys. Operator commands talk to the database directly.

mod clients;
mod config_check;
mod keys;
mod sessions;
mod streams;
mod users;

use crate::admin::ServiceError;
use crate::config::{self, AdminListen, Settings};
use crate::keys::kek::KekSource;
use crate::signals::Emitter;
use crate::startup::Application;
use crate::storage::{self, Storage};
use crate::telemetry;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "OAuth 2.0 / OpenID Connect authorization server")]
pub struct Cli {
    /// A TOML file overriding config/default.toml (environment variables override both).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// Manage users who log in through Tessera.
    #[command(subcommand)]
    User(users::UserCommand),
    /// List and revoke users' logins (refresh-token families).
    #[command(subcommand)]
    Session(sessions::SessionCommand),
    /// Inspect signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Shared Signals streams of the receivers (SSF 1.0).
    #[command(subcommand)]
    Stream(streams::StreamCommand),
    /// Check the configuration without starting the server.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Config(command)) = cli.command {
        return config_check::run(command, cli.config.as_deref());
    }
    let settings = config::load(cli.config.as_deref())?;
    // Operator commands log too: their audit events (`admin_change`) go where the server's go.
    telemetry::init(&settings.log);
    let change = cli.command.as_ref().and_then(admin_change);
    // Operator commands that end access record their Shared Signals events like the server.
    let events = Emitter::from_settings(&settings);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            telemetry::init(&settings.log);
            open_storage(&settings).await?;
            println!("Database {} is up to date.", settings.database_url);
            Ok(())
        }
        Command::Client(command) => {
            let outbound = crate::admin::clients::UrlPolicies::from_settings(&settings);
            clients::run(command, &*open_storage(&settings).await?, &events, outbound).await
        }
        Command::User(command) => users::run(command, &*open_storage(&settings).await?, &events).await,
        Command::Session(command) => sessions::run(command, &*open_storage(&settings).await?, &events).await,
        Command::Keys(command) => keys::run(command, &*open_storage(&settings).await?, &settings).await,
        Command::Stream(command) => streams::run(command, &*open_storage(&settings).await?, &events).await,
        Command::Config(_) => unreachable!("handled before the settings are loaded"),
    };
    if let Some((action, target)) = change {
        match &result {
            Ok(()) => crate::audit!(info, "admin_change", "success", actor = "cli", action, target = %target),
            Err(_) => crate::audit!(info, "admin_change", "failure", actor = "cli", action, target = %target),
        }
    }
    result
}

/// The audit action of an operator command that changes something, and what it names
/// (never a secret: those are never on the command line).
fn admin_change(command: &Command) -> Option<(&'static str, String)> {
    use clients::ClientCommand;
    use keys::KeysCommand;
    use sessions::SessionCommand;
    use streams::StreamCommand;
    use users::UserCommand;
    Some(match command {
        Command::Client(ClientCommand::Create(args)) => ("client_create", args.name().to_owned()),
        Command::Client(ClientCommand::Disable { client_id }) => ("client_disable", client_id.clone()),
        Command::Client(ClientCommand::RotateSecret { client_id, .. }) => ("client_rotate_secret", client_id.clone()),
        Command::User(UserCommand::Create { username, .. }) => ("user_create", username.clone()),
        Command::User(UserCommand::Disable { username }) => ("user_disable", username.clone()),
        Command::User(UserCommand::Enable { username }) => ("user_enable", username.clone()),
        Command::User(UserCommand::SetPassword { username, .. }) => ("user_set_password", username.clone()),
        Command::Session(SessionCommand::Revoke { family_id, user }) => {
            ("session_revoke", family_id.clone().or_else(|| user.clone()).unwrap_or_default())
        }
        Command::Keys(KeysCommand::Rotate { emergency: true }) => ("keys_rotate_emergency", String::new()),
        Command::Keys(KeysCommand::Rotate { emergency: false }) => ("keys_rotate", String::new()),
        Command::Stream(StreamCommand::Disable { stream_id, .. }) => ("stream_disable", stream_id.clone()),
        _ => return None,
    })
}

async fn open_storage(settings: &Settings) -> anyhow::Result<Arc<dyn Storage>> {
    storage::connect(&settings.database_url, &settings.database).await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    telemetry::init(&settings.log);
    let issuer = settings.issuer.clone();
    let database = settings.database_url.to_string();
    let bind = settings.bind;
    let (admin_listen, metrics_bind) = (settings.admin.listen, settings.metrics.bind);
    let app = Application::build(settings).await?;
    if let KekSource::Generated(path) = &app.kek_source {
        tracing::warn!(
            path = %path.display(),
            "generated a local key-encryption key; production must set TESSERA_KEY_ENCRYPTION_KEY instead"
        );
    }
    let me = command_prefix();
    // The other listeners, with the port the OS gave when the setting said 0.
    let elsewhere = |address: std::net::SocketAddr, port: Option<u16>| {
        std::net::SocketAddr::new(address.ip(), port.unwrap_or(address.port()))
    };
    let admin_api = match admin_listen {
        AdminListen::Public => format!("{issuer}/admin/v1"),
        AdminListen::Off => "off (admin.listen)".to_owned(),
        AdminListen::Own(address) => format!("http://{}/admin/v1", elsewhere(address, app.admin_port())),
    };
    let metrics = metrics_bind.map_or("off (metrics.bind)".to_owned(), |address| {
        format!("http://{}/metrics", elsewhere(address, app.metrics_port()))
    });
    println!(
        "Tessera is listening on http://{bind}\n  \
         issuer:      {issuer}\n  \
         discovery:   {issuer}/.well-known/openid-configuration\n  \
         database:    {database}\n  \
         signing key: {kid}\n  \
         admin API:   {admin_api}\n  \
         metrics:     {metrics}\n\
         Create a first client (its secret is printed once):\n  \
         {me} client create --name my-service --grant client_credentials --scope \"api:read\" --audience https://api.example.com\n\
         Then get a token:\n  \
         curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials {issuer}/token",
        kid = app.kid
    );
    app.run_until_stopped().await?;
    Ok(())
}

/// How the operator invokes this binary: through cargo (which sets `CARGO_PKG_NAME` for
/// `cargo run`) or directly.
fn command_prefix() -> String {
    if std::env::var_os("CARGO_PKG_NAME").is_some() {
        "cargo run --release --".to_owned()
    } else {
        std::env::args().next().unwrap_or_else(|| "tessera".to_owned())
    }
}

/// Prints `value` as pretty JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A service-layer error as the operator reads it: an invalid input is named by its
/// command-line flag rather than its API member.
fn cli_error(error: ServiceError) -> anyhow::Error {
    match error {
        ServiceError::Invalid { field, message } => {
            let flag = match field {
                "name" => "--name",
                "grant_types" => "--grant",
                "scope" => "--scope",
                "audiences" => "--audience",
                "served_audiences" => "--serves-audience",
                "introspect_any" => "--introspect-any",
                "redirect_uris" => "--redirect-uri",
                "post_logout_redirect_uris" => "--post-logout-redirect-uri",
                "always_issue_refresh_token" => "--always-refresh-token",
                "public" => "--public",
                "token_endpoint_auth_method" => "--auth-method",
                "jwks_uri" => "--jwks-uri",
                "jwks" => "--jwks-file",
                "web_origins" => "--web-origin",
                "first_party_spa" => "--first-party-spa",
                "access_token_format" => "--access-token-format",
                "family_id" => "family id",
                other => other,
            };
            anyhow::anyhow!("invalid {flag}: {message}")
        }
        ServiceError::Unexpected(cause) => cause,
        other => anyhow::anyhow!("{other}"),
    }
}

/// Formats an optional timestamp for human output.
fn when(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "-".to_owned())
}
