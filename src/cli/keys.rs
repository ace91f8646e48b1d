//! `tessera keys list`: the signing keys in the database (public data only).

use super::{print_json, when};
use crate::storage::Storage;
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their state and dates.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: KeysCommand, storage: &dyn Storage) -> anyhow::Result<()> {
    match command {
        KeysCommand::List { json } => {
            let keys = storage.list_signing_keys().await?;
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "kid": k.kid, "alg": k.algorithm, "state": k.state.as_str(),
                            "created_at": k.created_at.to_rfc3339(),
                            "activated_at": k.activated_at.map(|t| t.to_rfc3339()),
                            "retired_at": k.retired_at.map(|t| t.to_rfc3339()),
                        })
                    })
                    .collect();
                return print_json(&json!(list));
            }
            if keys.is_empty() {
                println!("No signing keys yet: the server creates the first one when it starts.");
            }
            for key in &keys {
                println!(
                    "{}  {:<5} {:<8} created {}  activated {}  retired {}",
                    key.kid,
                    key.algorithm,
                    key.state.as_str(),
                    when(Some(key.created_at)),
                    when(key.activated_at),
                    when(key.retired_at)
                );
            }
            Ok(())
        }
    }
}
