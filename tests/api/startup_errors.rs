//! A bad setting or an unreachable database stops the binary with a message naming it.

use std::process::Command;

fn migrate_with(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        command.env_remove(name);
    }
    command.current_dir(dir.path()).args(args).arg("migrate");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the tessera binary runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn invalid_settings_stop_startup_naming_the_setting() {
    let cases = [
        ("TESSERA_TOKENS__ACCESS_TOKEN_TTL", "0", "tokens.access_token_ttl"),
        ("TESSERA_ISSUER", "https://id.example.com/?tenant=1", "issuer"),
        ("TESSERA_ISSUER", "not a url", "issuer"),
        ("TESSERA_BIND", "localhost", "bind"),
        ("TESSERA_DATABASE_URL", "mysql://db/tessera", "database_url"),
        ("TESSERA_KEYS__RSA_BITS", "1024", "keys.rsa_bits"),
        ("TESSERA_NO_SUCH_SETTING", "1", "no_such_setting"),
    ];
    for (name, value, setting) in cases {
        let (ok, stderr) = migrate_with(&[(name, value)], &[]);
        assert!(!ok, "{name}={value} must stop startup");
        assert!(stderr.contains(setting), "{name}={value}: stderr does not name `{setting}`: {stderr}");
    }
}

#[test]
fn a_missing_config_file_is_reported() {
    let (ok, stderr) = migrate_with(&[], &["--config", "/nonexistent/tessera.toml"]);
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/tessera.toml"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_reported_with_the_fix() {
    let (ok, stderr) = migrate_with(&[("TESSERA_DATABASE_URL", "postgres://tessera:hunter2@127.0.0.1:9/tessera")], &[]);
    assert!(!ok);
    assert!(stderr.contains("cannot connect to PostgreSQL") && stderr.contains("database_url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password must not be printed: {stderr}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let (ok, stderr) = migrate_with(&[], &[]);
    assert!(ok, "{stderr}");
}
