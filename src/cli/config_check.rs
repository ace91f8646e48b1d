//! `tessera config check`: the settings as the server would read them, without starting
//! it or touching the database. Prints every effective value with its origin (default,
//! the `--config` file, a `TESSERA_*` variable, a secret file), secrets as `***`; a bad
//! setting is an error that names it, and the exit code is 1.

use crate::config;
use clap::Subcommand;
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings and where each came from.
    Check,
}

pub fn run(command: ConfigCommand, config_file: Option<&Path>) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => {
            let (settings, listed) = config::effective(config_file)?;
            let name_width = listed.iter().map(|s| s.name.len()).max().unwrap_or(0);
            let value_width = listed.iter().map(|s| s.value.chars().count().min(60)).max().unwrap_or(0);
            for setting in &listed {
                println!("{:name_width$}  {:value_width$}  # {}", setting.name, setting.value, setting.origin);
            }
            println!(
                "\nThe configuration is valid: issuer {}, {} database {}.",
                settings.issuer,
                settings.database_url.backend(),
                settings.database_url
            );
            Ok(())
        }
    }
}
