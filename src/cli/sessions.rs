//! `tessera session …`: a user's logins as refresh-token families, and revoking them.

use super::{cli_error, print_json, when};
use crate::admin::sessions::{self, FamilyView, Revoked};
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List a user's refresh-token families (one per login at a client).
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one family by id, or every family and SSO session of a user.
    Revoke {
        /// The family id (from `session list`).
        family_id: Option<String>,
        /// Revoke all of this user's families and end their SSO sessions.
        #[arg(long, conflicts_with = "family_id")]
        user: Option<String>,
    },
}

pub async fn run(command: SessionCommand, storage: &dyn Storage, events: &Emitter) -> anyhow::Result<()> {
    match command {
        SessionCommand::List { user, json } => {
            let user = super::users::user_named(storage, &user).await?;
            let families = sessions::list(storage, &user).await.map_err(cli_error)?;
            let now = Utc::now();
            if json {
                return print_json(&families.iter().map(|f| FamilyView::new(f, now)).collect::<Vec<_>>());
            }
            if families.is_empty() {
                println!("{} has no refresh-token families.", user.username);
            }
            for f in &families {
                let state = if f.is_active(now) {
                    "active"
                } else if f.revoked_at.is_some() {
                    "revoked"
                } else {
                    "expired"
                };
                println!(
                    "{}  client {}  {:<8} last used {}  scope {}",
                    f.id,
                    f.client_id,
                    state,
                    when(Some(f.last_used_at)),
                    f.scope
                );
            }
            Ok(())
        }
        SessionCommand::Revoke { family_id: Some(id), user: None } => {
            match sessions::revoke_family(storage, events, &id).await.map_err(cli_error)? {
                Revoked::Now => println!("Family {id} is revoked."),
                Revoked::Already => println!("Family {id} was already revoked."),
            }
            Ok(())
        }
        SessionCommand::Revoke { family_id: None, user: Some(user) } => {
            let user = super::users::user_named(storage, &user).await?;
            let revoked = sessions::revoke_all(storage, events, &user).await.map_err(cli_error)?;
            println!("{revoked} refresh-token families of {} revoked; their SSO sessions ended.", user.username);
            Ok(())
        }
        SessionCommand::Revoke { .. } => bail!("name a family id or --user"),
    }
}
