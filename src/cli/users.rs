//! `tessera user …`: accounts for the login pages. Passwords come from a prompt or from
//! standard input (`--password-stdin`), never from argv, where `ps` and shell history see them.

use super::print_json;
use crate::domain::signals::Reason;
use crate::domain::user::{parse_email, Password, User, UserId, Username};
use crate::password;
use crate::signals::Emitter;
use crate::storage::{Storage, StorageError};
use anyhow::{bail, Context};
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;
use std::io::{BufRead, IsTerminal};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name (OIDC `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they can no longer log in, and everything they obtained ends (SSO
    /// sessions, codes, refresh tokens; receivers of Shared Signals hear of it at once).
    Disable { username: String },
    /// Enable a disabled user again.
    Enable { username: String },
    /// Set a new password.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(command: UserCommand, storage: &dyn Storage, events: &Emitter) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { username, email, name, password_stdin, json } => {
            let username = Username::parse(&username)?;
            let email = email.as_deref().map(parse_email).transpose()?;
            let password = read_password(password_stdin)?;
            let now = Utc::now();
            let user = User {
                id: UserId::generate(),
                username,
                email,
                email_verified: false,
                name: name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
                password_hash: password::hash(password).await?,
                created_at: now,
                updated_at: now,
                disabled_at: None,
            };
            match storage.insert_user(&user).await {
                Err(StorageError::Conflict(_)) => bail!("username {} is taken", user.username),
                other => other?,
            }
            if json {
                return print_json(&describe(&user));
            }
            println!("User {} created (id {}).", user.username, user.id);
            Ok(())
        }
        UserCommand::List { json } => {
            let users = storage.list_users().await?;
            if json {
                return print_json(&json!(users.iter().map(describe).collect::<Vec<_>>()));
            }
            if users.is_empty() {
                println!("No users yet. Create one with `tessera user create --help`.");
            }
            for user in &users {
                let status = if user.disabled_at.is_some() { "disabled" } else { "active" };
                println!("{:<24} {:<8} {}", user.username, status, user.email.as_deref().unwrap_or("-"));
            }
            Ok(())
        }
        UserCommand::Disable { username } => {
            let user = user_named(storage, &username).await?;
            if storage.disable_user(&user.id, &events.revocation(Reason::UserDisabled, Utc::now())).await? {
                println!("User {} is disabled; their sessions, codes and refresh tokens are revoked.", user.username);
            } else {
                println!("User {} was already disabled.", user.username);
            }
            Ok(())
        }
        UserCommand::Enable { username } => {
            let user = user_named(storage, &username).await?;
            if storage.enable_user(&user.id, &events.revocation(Reason::UserEnabled, Utc::now())).await? {
                println!("User {} is enabled.", user.username);
            } else {
                println!("User {} was not disabled.", user.username);
            }
            Ok(())
        }
        UserCommand::SetPassword { username, password_stdin } => {
            let user = user_named(storage, &username).await?;
            let hash = password::hash(read_password(password_stdin)?).await?;
            let revocation = events.revocation(Reason::PasswordChanged, Utc::now());
            if !storage.set_password_hash(&user.id, &hash, &revocation).await? {
                bail!("no user named {}", user.username);
            }
            println!(
                "Password of {} changed; everything obtained with the old one (sessions, codes, refresh tokens) is revoked.",
                user.username
            );
            Ok(())
        }
    }
}

/// The user named `username`, or an error naming it.
pub async fn user_named(storage: &dyn Storage, username: &str) -> anyhow::Result<User> {
    let username = Username::parse(username)?;
    storage.find_user_by_username(&username).await?.with_context(|| format!("no user named {username}"))
}

fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    let raw = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("standard input is not a terminal: pass --password-stdin to read the password from it");
        }
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        first
    };
    Ok(Password::parse(raw)?)
}

fn describe(user: &User) -> serde_json::Value {
    json!({
        "id": user.id.as_str(),
        "username": user.username.as_str(),
        "email": user.email,
        "name": user.name,
        "created_at": user.created_at.to_rfc3339(),
        "disabled_at": user.disabled_at.map(|t| t.to_rfc3339()),
        "status": if user.disabled_at.is_some() { "disabled" } else { "active" },
        "updated_at": user.updated_at.to_rfc3339(),
    })
}
