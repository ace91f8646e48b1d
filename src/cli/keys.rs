//! `tessera keys list|rotate`: the signing keys in the database (public data only), and
//! the next rotation step on demand (`--emergency` for a compromised key).

use super::{cli_error, print_json, when};
use crate::admin::keys::{self, KeyView};
use crate::config::Settings;
use crate::keys::kek::KeyEncryptionKey;
use crate::keys::rotation::{RotationSchedule, Step};
use crate::storage::Storage;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys with their state and dates.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run the next rotation step now: publish a next key, or (once verifiers have had
    /// time to cache it) make it sign and retire the current one.
    Rotate {
        /// The current key is compromised: a new key signs at once and the old one is
        /// deleted; tokens it signed stop verifying.
        #[arg(long)]
        emergency: bool,
    },
}

pub async fn run(command: KeysCommand, storage: &dyn Storage, settings: &Settings) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { emergency } => {
            let has_keys = !storage.list_signing_keys().await?.is_empty();
            let (kek, _) = KeyEncryptionKey::resolve(
                settings.key_encryption_key.as_ref().map(|s| s.expose()),
                &settings.keys_dir,
                has_keys,
            )?;
            let schedule = RotationSchedule::from_settings(settings);
            let steps = keys::rotate(storage, &kek, &schedule, emergency).await.map_err(cli_error)?;
            for step in steps {
                match step {
                    Step::Published { kid, signs_from } => {
                        println!("Published the next key {kid}; `keys rotate` can make it sign from {}.", when(Some(signs_from)))
                    }
                    Step::Promoted { old, new } => println!("Key {new} signs now; {old} is retired (still published)."),
                    Step::Removed { kid } => println!("Key {kid} is no longer published."),
                    Step::NotYet { kid, signs_from } => println!(
                        "Nothing to do yet: the next key {kid} may sign from {} (when every verifier's cached JWKS has it).",
                        when(Some(signs_from))
                    ),
                    Step::Lost => println!("Another replica performed this step first."),
                }
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let keys = keys::list(storage).await.map_err(cli_error)?;
            if json {
                return print_json(&keys.iter().map(KeyView::from).collect::<Vec<_>>());
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
