//! Runs the `tessera` binary against a test server's database.

use super::TestApp;
use std::io::Write;
use std::process::{Command, Output, Stdio};

pub fn tessera(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        command.env_remove(name);
    }
    let mut child = command
        .args(args)
        .env("TESSERA_DATABASE_URL", app.settings.database_url.to_string())
        // The same issuer as the server: the events the CLI records name its subjects.
        .env("TESSERA_ISSUER", &app.address)
        .env("TESSERA_SSF__ENABLED", app.settings.ssf.enabled.to_string())
        .env(
            "TESSERA_KEY_ENCRYPTION_KEY",
            app.settings.key_encryption_key.as_ref().map(|k| k.expose()).unwrap_or_default(),
        )
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tessera binary runs");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}
