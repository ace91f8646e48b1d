//! A bad setting or an unreachable database stops the binary with a message naming it.

use std::process::Command;

fn migrate_with(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = run(env, args, "migrate");
    (ok, stderr)
}

/// Runs `tessera ARGS SUBCOMMAND` in a fresh directory with only `env` as settings;
/// returns whether it succeeded, its stdout and its stderr.
fn run(env: &[(&str, &str)], args: &[&str], subcommand: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        command.env_remove(name);
    }
    command.current_dir(dir.path()).args(args).arg(subcommand);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("the tessera binary runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
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
        ("TESSERA_ADMIN__LISTEN", "everywhere", "admin.listen"),
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

#[test]
fn a_password_in_the_query_of_a_postgres_url_is_never_printed() {
    let url = "postgres://postgres@127.0.0.1:1/x?password=hunter2";
    for subcommand in ["serve", "migrate"] {
        // Any free port: the default, 8080, may be a developer's running server.
        let env = [("TESSERA_DATABASE_URL", url), ("TESSERA_BIND", "127.0.0.1:0")];
        let (ok, stdout, stderr) = run(&env, &[], subcommand);
        assert!(!ok, "{subcommand} must fail: nothing listens on port 1");
        assert!(stderr.contains("cannot connect to PostgreSQL") && stderr.contains("database_url"), "{stderr}");
        assert!(stderr.contains("127.0.0.1:1/x?password=***"), "the URL is shown, redacted: {stderr}");
        assert!(
            !stderr.contains("hunter2") && !stdout.contains("hunter2"),
            "{subcommand} printed the password: {stderr}"
        );
    }
}

#[test]
fn a_postgres_url_parameter_the_driver_ignores_stops_startup_without_its_value() {
    let url = "postgres://postgres@127.0.0.1:1/x?sslkey=client.key&sslpassword=hunter2";
    let (ok, stderr) = migrate_with(&[("TESSERA_DATABASE_URL", url)], &[]);
    assert!(!ok);
    assert!(stderr.contains("database_url") && stderr.contains("`sslpassword` is not supported"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the passphrase must not be printed: {stderr}");
}

#[test]
fn a_session_timeout_that_would_overflow_stops_startup_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, "[sessions]\nabsolute_timeout = \"1000000y\"\n").unwrap();
    // `migrate`, not `serve`: settings are checked before either runs, and a regression
    // must fail this test rather than leave a server running.
    let from_file = run(&[], &["--config", file.to_str().unwrap()], "migrate");
    let from_env = run(&[("TESSERA_SESSIONS__ABSOLUTE_TIMEOUT", "1000000y")], &[], "migrate");
    for (ok, _, stderr) in [from_file, from_env] {
        assert!(!ok, "startup must stop");
        assert!(stderr.contains("setting `sessions.absolute_timeout`"), "{stderr}");
        assert!(stderr.contains("it must be between 1s and 1year"), "the allowed range is named: {stderr}");
    }
}

/// PostgreSQL only (a SQLite URL carries no password): a server that did connect prints
/// its database URL in the startup banner with `?password=` as `***`.
#[tokio::test]
async fn the_startup_banner_hides_a_password_in_the_query() {
    use crate::helpers::{Backend, TestDatabase};
    use std::io::{BufRead, BufReader, Read};
    let Some(database) = TestDatabase::create(Backend::Postgres).await else { return };
    let mut url = url::Url::parse(database.url()).unwrap();
    url.query_pairs_mut().append_pair("password", "hunter2");
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        command.env_remove(name);
    }
    let key_file = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/test-signing-key.pem");
    let mut child = command
        .current_dir(dir.path())
        .arg("serve")
        .env("TESSERA_DATABASE_URL", url.as_str())
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_KEY_ENCRYPTION_KEY", "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=")
        .env("TESSERA_KEYS__BOOTSTRAP_KEY_FILE", key_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the tessera binary runs");
    let mut banner = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("signing key:") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    database.drop_database().await;
    assert!(banner.contains("database:") && banner.contains("password=***"), "{banner}\n{stderr}");
    assert!(!banner.contains("hunter2") && !stderr.contains("hunter2"), "{banner}\n{stderr}");
}
