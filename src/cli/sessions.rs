//! `tessera session …`: a user's logins as refresh-token families, and revoking them.

use super::{print_json, when};
use crate::domain::refresh::FamilyId;
use crate::domain::signals::Reason;
use crate::domain::user::Username;
use crate::signals::Emitter;
use crate::storage::Storage;
use anyhow::{bail, Context};
use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

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
            let username = Username::parse(&user)?;
            let user =
                storage.find_user_by_username(&username).await?.with_context(|| format!("no user named {username}"))?;
            let families = storage.list_families_of_user(&user.id).await?;
            let now = Utc::now();
            if json {
                let list: Vec<_> = families
                    .iter()
                    .map(|f| {
                        json!({
                            "family_id": f.id.as_str(), "client_id": f.client_id.as_str(), "sid": f.sid.as_str(), "scope": f.scope.to_string(),
                            "created_at": f.created_at.to_rfc3339(), "last_used_at": f.last_used_at.to_rfc3339(),
                            "expires_at": f.absolute_expires_at.to_rfc3339(),
                            "revoked_at": f.revoked_at.map(|t| t.to_rfc3339()), "active": f.is_active(now),
                        })
                    })
                    .collect();
                return print_json(&json!(list));
            }
            if families.is_empty() {
                println!("{username} has no refresh-token families.");
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
            let id = FamilyId::parse(&id)?;
            if storage.revoke_family(&id, &events.revocation(Reason::RevokedByOperator, Utc::now())).await? {
                println!("Family {id} is revoked.");
                Ok(())
            } else if storage.find_family(&id).await?.is_some() {
                println!("Family {id} was already revoked.");
                Ok(())
            } else {
                bail!("no refresh-token family {id}")
            }
        }
        SessionCommand::Revoke { family_id: None, user: Some(user) } => {
            let user = super::users::user_named(storage, &user).await?;
            let revocation = events.revocation(Reason::RevokedByOperator, Utc::now());
            let revoked = storage.end_user_access(&user.id, &revocation).await?;
            println!("{revoked} refresh-token families of {} revoked; their SSO sessions ended.", user.username);
            Ok(())
        }
        SessionCommand::Revoke { .. } => bail!("name a family id or --user"),
    }
}
