//! `tessera user …`: accounts for the login pages. Passwords come from a prompt or from
//! standard input (`--password-stdin`), never from argv, where `ps` and shell history see them.

use super::{cli_error, print_json};
use crate::admin::users::{self, NewUser, UserView};
use crate::domain::user::{User, Username};
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::{bail, Context};
use clap::Subcommand;
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
            // Checked before the password is asked for: no prompt for a name that is refused.
            Username::parse(&username)?;
            let password = read_password(password_stdin)?;
            let new = NewUser { username, email, name, password };
            let user = users::create(storage, new).await.map_err(cli_error)?;
            if json {
                return print_json(&UserView::from(&user));
            }
            println!("User {} created (id {}).", user.username, user.id);
            Ok(())
        }
        UserCommand::List { json } => {
            let users = users::list_all(storage).await.map_err(cli_error)?;
            if json {
                return print_json(&users.iter().map(UserView::from).collect::<Vec<_>>());
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
            if users::disable(storage, events, &user).await.map_err(cli_error)? {
                println!("User {} is disabled; their sessions, codes and refresh tokens are revoked.", user.username);
            } else {
                println!("User {} was already disabled.", user.username);
            }
            Ok(())
        }
        UserCommand::Enable { username } => {
            let user = user_named(storage, &username).await?;
            if users::enable(storage, events, &user).await.map_err(cli_error)? {
                println!("User {} is enabled.", user.username);
            } else {
                println!("User {} was not disabled.", user.username);
            }
            Ok(())
        }
        UserCommand::SetPassword { username, password_stdin } => {
            let user = user_named(storage, &username).await?;
            let password = read_password(password_stdin)?;
            users::set_password(storage, events, &user, password).await.map_err(cli_error)?;
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
    users::named(storage, username).await.map_err(cli_error)
}

/// The password, from standard input or a prompt; checked by the service layer.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
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
    Ok(raw)
}
