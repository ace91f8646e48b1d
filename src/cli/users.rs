//! `tessera user …`: accounts for the login pages. Passwords come from a prompt or from
//! standard input (`--password-stdin`), never from argv, where `ps` and shell history see them.

use super::print_json;
use crate::domain::user::{parse_email, Password, User, UserId, Username};
use crate::password;
use crate::revocation;
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
    /// Disable a user: they can no longer log in.
    Disable { username: String },
    /// Set a new password.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn run(command: UserCommand, storage: &dyn Storage) -> anyhow::Result<()> {
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
            let username = Username::parse(&username)?;
            if storage.disable_user(&username, Utc::now()).await? {
                let revoked = end_user_access(storage, &username, "user disabled").await?;
                println!("User {username} is disabled; {revoked} refresh-token families revoked and sessions ended.");
            } else if storage.find_user_by_username(&username).await?.is_some() {
                println!("User {username} was already disabled.");
            } else {
                bail!("no user named {username}");
            }
            Ok(())
        }
        UserCommand::SetPassword { username, password_stdin } => {
            let username = Username::parse(&username)?;
            if storage.find_user_by_username(&username).await?.is_none() {
                bail!("no user named {username}");
            }
            let hash = password::hash(read_password(password_stdin)?).await?;
            storage.set_password_hash(&username, &hash, Utc::now()).await?;
            let revoked = end_user_access(storage, &username, "password changed").await?;
            println!("Password of {username} changed; {revoked} refresh-token families revoked and sessions ended.");
            Ok(())
        }
    }
}

/// Ends everything `username` obtained (see `revocation::end_user_access`); returns how
/// many refresh-token families were revoked.
pub async fn end_user_access(storage: &dyn Storage, username: &Username, reason: &str) -> anyhow::Result<u64> {
    let user = storage.find_user_by_username(username).await?.with_context(|| format!("no user named {username}"))?;
    Ok(revocation::end_user_access(storage, &user.id, reason, Utc::now()).await?)
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
