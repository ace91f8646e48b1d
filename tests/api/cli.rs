//! The operator's CLI against a running server's database.

use crate::helpers::assert_oauth_error;
use crate::helpers::cli::tessera;
use crate::helpers::clients::ClientSpec;
use crate::helpers::refresh::{refresh_token, refreshed};
use crate::helpers::TestApp;
use chrono::Duration;
use serde_json::Value;
use std::process::Output;

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

async fn a_client_created_with_the_cli_gets_tokens(app: &TestApp) {
    let created = json(&tessera(
        app,
        &[
            "client",
            "create",
            "--name",
            "billing-worker",
            "--grant",
            "client_credentials",
            "--scope",
            "invoices:read invoices:write",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
        None,
    ));
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("tcs_") && secret.len() >= 4 + 43, "256-bit secret with a scanner prefix");
    let response = app.client_credentials(id, secret, &[("scope", "invoices:read")]).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;

    // The secret is stored only as a digest.
    let client_id = tessera::domain::client::ClientId::parse(id).unwrap();
    let stored = app.storage.find_client(&client_id).await.unwrap().unwrap();
    assert_ne!(stored.secret_digest.as_ref().unwrap().as_str(), secret);

    let listed = json(&tessera(app, &["client", "list", "--json"], None));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("client_secret").is_none(), "secrets are shown once, at creation");
    let shown = json(&tessera(app, &["client", "show", id, "--json"], None));
    assert_eq!(shown["scope"], "invoices:read invoices:write");

    let rotated = json(&tessera(app, &["client", "rotate-secret", id, "--json"], None));
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(app.client_credentials(id, new_secret, &[]).await.status(), 200, "the new secret works at once");
    app.expire_client_cache();
    assert_eq!(app.client_credentials(id, secret, &[]).await.status(), 401, "the old secret stops working");
    assert_eq!(app.client_credentials(id, new_secret, &[]).await.status(), 200);

    let disabled = tessera(app, &["client", "disable", id], None);
    assert!(disabled.status.success());
    app.expire_client_cache();
    assert_eq!(app.client_credentials(id, new_secret, &[]).await.status(), 401);
}

async fn client_create_rejects_bad_arguments(app: &TestApp) {
    for args in [
        &["client", "create", "--name", "x", "--grant", "password"][..],
        &["client", "create", "--name", "x", "--grant", "client_credentials", "--public"],
        &["client", "create", "--name", "x", "--grant", "client_credentials", "--scope", "a\"b"],
        &["client", "create", "--name", "x", "--grant", "authorization_code"],
        &["client", "create", "--name", "x", "--grant", "authorization_code", "--redirect-uri", "/relative"],
    ] {
        let output = tessera(app, args, None);
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(String::from_utf8_lossy(&output.stderr).contains("error"), "{args:?}");
    }
    assert!(app.storage.list_clients().await.unwrap().is_empty(), "nothing is stored for rejected commands");
}

/// `client create … --grant authorization_code --redirect-uri URI --json` plus `extra`.
fn create_web_app(app: &TestApp, flag: &str, uri: &str, extra: &[&str]) -> Output {
    let mut args = vec!["client", "create", "--name", "web", "--grant", "authorization_code", "--json"];
    if flag != "--redirect-uri" {
        args.extend(["--redirect-uri", "https://app.example.com/cb"]);
    }
    args.extend([flag, uri]);
    args.extend(extra);
    tessera(app, &args, None)
}

fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "stdout: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn client_create_refuses_dangerous_and_insecure_redirect_uris(app: &TestApp) {
    for flag in ["--redirect-uri", "--post-logout-redirect-uri"] {
        for uri in [
            "javascript:alert(document.domain)",
            "JavaScript://app.example.com/%0Aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "blob:https://app.example.com/0b8d3e1c",
            "about:blank",
        ] {
            let stderr = refused(&create_web_app(app, flag, uri, &["--allow-insecure-http"]));
            assert!(stderr.contains(flag) && stderr.contains("is never allowed"), "{flag} {uri}: {stderr}");
        }
        for uri in [" javascript:alert(1)", "java%73cript:alert(1)", "https://app.example.com/cb#frag"] {
            let stderr = refused(&create_web_app(app, flag, uri, &["--allow-insecure-http"]));
            assert!(stderr.contains(flag), "{flag} {uri:?}: {stderr}");
        }
        let stderr = refused(&create_web_app(app, flag, "https://app.example.com@evil.example/cb", &[]));
        assert!(stderr.contains("user name or password"), "{stderr}");
        for uri in ["http://app.example.com/cb", "http://localhost:3000/cb"] {
            let stderr = refused(&create_web_app(app, flag, uri, &[]));
            assert!(stderr.contains("--allow-insecure-http"), "{flag} {uri}: the error names the flag: {stderr}");
        }
    }
    assert!(app.storage.list_clients().await.unwrap().is_empty(), "nothing is stored for refused URIs");

    let allowed = json(&create_web_app(app, "--redirect-uri", "http://app.example.com/cb", &["--allow-insecure-http"]));
    assert_eq!(allowed["redirect_uris"], serde_json::json!(["http://app.example.com/cb"]));
    for (flag, uri) in [
        ("--redirect-uri", "http://127.0.0.1/callback"),
        ("--redirect-uri", "http://[::1]/callback"),
        ("--redirect-uri", "com.example.app:/oauth2redirect"),
        ("--post-logout-redirect-uri", "http://127.0.0.1:3000/"),
    ] {
        json(&create_web_app(app, flag, uri, &[]));
    }
}

async fn client_create_registers_resource_servers_that_may_introspect(app: &TestApp) {
    let api = json(&tessera(
        app,
        &[
            "client",
            "create",
            "--name",
            "invoices-api",
            "--grant",
            "client_credentials",
            "--serves-audience",
            "https://api.example.com",
            "--serves-audience",
            "https://billing.example.com",
            "--json",
        ],
        None,
    ));
    assert_eq!(api["served_audiences"], serde_json::json!(["https://api.example.com", "https://billing.example.com"]));
    assert_eq!(api["may_introspect_any"], false);
    let gateway = json(&tessera(
        app,
        &["client", "create", "--name", "gateway", "--grant", "client_credentials", "--introspect-any", "--json"],
        None,
    ));
    assert_eq!(gateway["may_introspect_any"], true);
    let shown = json(&tessera(app, &["client", "show", api["client_id"].as_str().unwrap(), "--json"], None));
    assert_eq!(shown["served_audiences"], api["served_audiences"], "stored, not just printed");

    // Another client's token for https://api.example.com: both may introspect it.
    let service = app.register_client(crate::helpers::clients::ClientSpec::service()).await;
    let body: serde_json::Value =
        app.client_credentials(&service.id, service.secret(), &[]).await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    for created in [&api, &gateway] {
        let caller = crate::helpers::clients::TestClient {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: Some(created["client_secret"].as_str().unwrap().to_owned()),
        };
        assert_eq!(app.introspect(&caller, token).await["active"], true, "{}", created["name"]);
    }

    for args in [
        &["client", "create", "--name", "x", "--grant", "client_credentials", "--serves-audience", "a b"][..],
        &["client", "create", "--name", "x", "--grant", "client_credentials", "--serves-audience", ""],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--public",
            "--introspect-any",
        ],
    ] {
        refused(&tessera(app, args, None));
    }
    assert_eq!(app.storage.list_clients().await.unwrap().len(), 3);
}

/// RFC 9449 §5.2 `dpop_bound_access_tokens`: set with the CLI, it makes a proof required.
async fn client_create_registers_clients_that_require_dpop(app: &TestApp) {
    let created = json(&tessera(
        app,
        &[
            "client",
            "create",
            "--name",
            "dpop-worker",
            "--grant",
            "client_credentials",
            "--dpop-bound-access-tokens",
            "--json",
        ],
        None,
    ));
    assert_eq!(created["dpop_bound_access_tokens"], true);
    let id = created["client_id"].as_str().unwrap();
    let shown = json(&tessera(app, &["client", "show", id, "--json"], None));
    assert_eq!(shown["dpop_bound_access_tokens"], true, "stored, not just printed");
    let refused = app.client_credentials(id, created["client_secret"].as_str().unwrap(), &[]).await;
    assert_oauth_error(refused, 400, "invalid_dpop_proof").await;

    let plain =
        json(&tessera(app, &["client", "create", "--name", "plain", "--grant", "client_credentials", "--json"], None));
    assert_eq!(plain["dpop_bound_access_tokens"], false);
}

async fn client_create_chooses_the_access_token_format(app: &TestApp) {
    let args = ["client", "create", "--name", "opaque-worker", "--grant", "client_credentials"];
    let created = json(&tessera(app, &[&args[..], &["--access-token-format", "opaque", "--json"]].concat(), None));
    assert_eq!(created["access_token_format"], "opaque");
    let id = created["client_id"].as_str().unwrap();
    let shown = json(&tessera(app, &["client", "show", id, "--json"], None));
    assert_eq!(shown["access_token_format"], "opaque", "stored, not just printed");
    let human = tessera(app, &["client", "show", id], None);
    assert!(String::from_utf8_lossy(&human.stdout).contains("access tokens: opaque"));
    let body: Value =
        app.client_credentials(id, created["client_secret"].as_str().unwrap(), &[]).await.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().starts_with("tat_"), "{body}");

    let default = json(&tessera(app, &[&args[..], &["--json"]].concat(), None));
    assert_eq!(default["access_token_format"], "jwt");
    let refused = tessera(app, &[&args[..], &["--access-token-format", "paseto"]].concat(), None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("access-token-format"));
}

async fn users_are_created_with_a_password_from_stdin(app: &TestApp) {
    let created = json(&tessera(
        app,
        &[
            "user",
            "create",
            "--username",
            "Alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Example",
            "--password-stdin",
            "--json",
        ],
        Some("correct horse battery\n"),
    ));
    assert_eq!(created["username"], "alice");
    let username = tessera::domain::user::Username::parse("alice").unwrap();
    let user = app.storage.find_user_by_username(&username).await.unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(tessera::password::matches(&user.password_hash, "correct horse battery"));

    let duplicate =
        tessera(app, &["user", "create", "--username", "alice", "--password-stdin"], Some("another password\n"));
    assert!(!duplicate.status.success());
    let short = tessera(app, &["user", "create", "--username", "bob", "--password-stdin"], Some("short\n"));
    assert!(!short.status.success());
    // No password on a non-terminal stdin without --password-stdin: refuse rather than hang.
    let no_tty = tessera(app, &["user", "create", "--username", "carol"], None);
    assert!(!no_tty.status.success());

    let changed = tessera(app, &["user", "set-password", "alice", "--password-stdin"], Some("a new long password\n"));
    assert!(changed.status.success());
    let user = app.storage.find_user_by_username(&username).await.unwrap().unwrap();
    assert!(tessera::password::matches(&user.password_hash, "a new long password"));

    assert!(tessera(app, &["user", "disable", "alice"], None).status.success());
    let listed = json(&tessera(app, &["user", "list", "--json"], None));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "disabled");
}

async fn keys_list_shows_the_current_key(app: &TestApp) {
    let keys = json(&tessera(app, &["keys", "list", "--json"], None));
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["kid"], app.kid.as_str());
    assert_eq!(keys[0]["state"], "current");
    assert!(keys[0].get("encrypted_private_key").is_none());
}

async fn operators_list_and_revoke_sessions(app: &TestApp) {
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("olga").await;
    let phone = app.offline_login(&client, &user).await;
    let laptop = app.offline_login(&client, &user).await;
    let listed = crate::helpers::cli::tessera(app, &["session", "list", "--user", "olga", "--json"], None);
    assert!(listed.status.success());
    let families: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(families.as_array().unwrap().len(), 2);
    let phone_claims =
        app.verify_access_token(phone["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let fid = phone_claims["fid"].as_str().unwrap();
    let revoked = crate::helpers::cli::tessera(app, &["session", "revoke", fid], None);
    assert!(revoked.status.success());
    // An id with a control character is refused as such, before any lookup.
    let stderr = refused(&tessera(app, &["session", "revoke", &format!("{fid}\n")], None));
    assert!(stderr.contains("invalid family id"), "{stderr}");
    let stderr = refused(&tessera(app, &["session", "revoke", "no-such-family"], None));
    assert!(stderr.contains("no refresh-token family no-such-family"), "{stderr}");
    assert_oauth_error(app.refresh(&client, &refresh_token(&phone), None).await, 400, "invalid_grant").await;
    refreshed(app, &client, &refresh_token(&laptop)).await;
    let all = crate::helpers::cli::tessera(app, &["session", "revoke", "--user", "olga"], None);
    assert!(all.status.success());
    assert_eq!(app.introspect(&client, laptop["access_token"].as_str().unwrap()).await["active"], false);
}

/// `tessera session list --user NAME --json`, as parsed JSON.
fn sessions_of(app: &TestApp, username: &str) -> Vec<Value> {
    let listed = crate::helpers::cli::tessera(app, &["session", "list", "--user", username, "--json"], None);
    assert!(listed.status.success(), "stderr: {}", String::from_utf8_lossy(&listed.stderr));
    serde_json::from_slice::<Value>(&listed.stdout).unwrap().as_array().unwrap().clone()
}

fn time_of(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("an RFC 3339 time")).unwrap().into()
}

/// Finding 17: a family's last use is its latest rotation, not the login.
async fn session_list_shows_the_latest_rotation_as_last_use(app: &TestApp) {
    use tessera::clock::Clock;
    use tessera::domain::authorization::SessionId;
    use tessera::domain::refresh::{FamilyId, TokenFamily, REFRESH_TOKEN_PREFIX};
    use tessera::domain::secret::GeneratedSecret;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("rita").await;
    let mut body = app.offline_login(&client, &user).await;
    let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
    let fid = FamilyId::parse(claims["fid"].as_str().unwrap()).unwrap();
    // A second family of the same user and client (another device), never refreshed: its
    // last use must stay its own creation, whatever happens to the first.
    let now = app.clock.now();
    let idle_token = GeneratedSecret::generate(REFRESH_TOKEN_PREFIX);
    let second = TokenFamily {
        id: FamilyId::parse("second-device").unwrap(),
        client_id: tessera::domain::client::ClientId::parse(&client.id).unwrap(),
        user_id: user.id.clone(),
        sid: SessionId::parse(claims["sid"].as_str().unwrap()).unwrap(),
        scope: tessera::domain::scope::ScopeSet::parse("openid offline_access").unwrap(),
        auth_time: now,
        created_at: now,
        last_used_at: now,
        absolute_expires_at: now + Duration::days(90),
        revoked_at: None,
        dpop_jkt: None,
    };
    app.storage.create_family(&second, &idle_token.digest(), now + Duration::days(14)).await.unwrap();

    let listed = sessions_of(app, "rita");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["family_id"], fid.as_str(), "listed in login order");
    assert_eq!(listed[0]["last_used_at"], listed[0]["created_at"], "not used yet: the login is the last use");
    let login = time_of(&listed[0]["created_at"]);
    for hours in [3, 1] {
        app.clock.advance(Duration::hours(hours));
        // Stored with microseconds: the rotation's time, truncated, is at most 1 µs earlier.
        let before = app.clock.now() - Duration::microseconds(1);
        body = refreshed(app, &client, &refresh_token(&body)).await;
        let after = app.clock.now();
        let listed = sessions_of(app, "rita");
        let last_used = time_of(&listed[0]["last_used_at"]);
        assert!(before <= last_used && last_used <= after, "the rotation's time {before}..{after}, shown {last_used}");
        assert!(last_used > login + Duration::hours(hours), "not the login time {login}");
        assert_eq!(time_of(&listed[0]["created_at"]), login, "the login time stays");
        assert_eq!(listed[1]["last_used_at"], listed[1]["created_at"], "the other family was not used");
        let found = app.storage.find_family(&fid).await.unwrap().unwrap();
        assert_eq!(found.last_used_at, last_used, "find_family derives it too");
    }
    assert!(app.storage.find_family(&FamilyId::parse("no-such-family").unwrap()).await.unwrap().is_none());
    refreshed(app, &client, idle_token.expose()).await;
    let listed = sessions_of(app, "rita");
    assert!(time_of(&listed[1]["last_used_at"]) > time_of(&listed[1]["created_at"]), "now used as well");
}

/// `client create --auth private_key_jwt --jwks-file … | --jwks-uri …` (RFC 7523 §2.2), and
/// `--require-par` (RFC 9126 §5).
async fn private_key_jwt_and_par_clients_are_created_with_the_cli(app: &TestApp) {
    use crate::helpers::client_assertions::{jwks, ClientKey};
    let key = ClientKey::es256();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&key])).unwrap();
    let file = file.to_str().unwrap();
    let base = ["client", "create", "--name", "signer", "--grant", "client_credentials", "--json"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        tessera(app, &args, None)
    };
    let created = json(&with(&["--auth", "private_key_jwt", "--jwks-file", file]));
    assert!(created.get("client_secret").is_none(), "no secret for a private_key_jwt client");
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(created["client_type"], "confidential");
    assert_eq!(created["jwks"]["keys"][0]["kid"], key.kid());
    let id = created["client_id"].as_str().unwrap();
    let token = app.client_credentials_with_assertion(&key.assertion(app, id, &app.address)).await;
    assert_eq!(token.status(), 200);

    let uri = json(&with(&["--auth", "private_key_jwt", "--jwks-uri", "https://signer.example.com/jwks.json"]));
    assert_eq!(uri["jwks_uri"], "https://signer.example.com/jwks.json");

    let mut private = key.public_jwk();
    private["d"] = serde_json::json!("AAAA");
    let private_file = dir.path().join("private.json");
    std::fs::write(&private_file, serde_json::json!({"keys": [private]}).to_string()).unwrap();
    let big_file = dir.path().join("big.json");
    std::fs::write(&big_file, format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(17 * 1024))).unwrap();
    let before = app.storage.list_clients().await.unwrap().len();
    for (extra, says) in [
        (vec!["--auth", "private_key_jwt"], "exactly one"),
        (
            vec!["--auth", "private_key_jwt", "--jwks-file", file, "--jwks-uri", "https://a.example.com/j"],
            "exactly one",
        ),
        (vec!["--jwks-file", file], "private_key_jwt"),
        (vec!["--auth", "private_key_jwt", "--jwks-uri", "http://signer.example.com/jwks.json"], "https"),
        (vec!["--auth", "private_key_jwt", "--jwks-uri", "https://127.0.0.1/jwks.json"], "loopback"),
        (vec!["--auth", "private_key_jwt", "--jwks-uri", "https://10.0.0.5/jwks.json"], "not public"),
        (vec!["--auth", "private_key_jwt", "--jwks-file", private_file.to_str().unwrap()], "private key"),
        (vec!["--auth", "private_key_jwt", "--jwks-file", big_file.to_str().unwrap()], "larger"),
    ] {
        let stderr = refused(&with(&extra));
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
    }
    assert_eq!(app.storage.list_clients().await.unwrap().len(), before, "nothing stored for refused commands");

    let par = json(&create_web_app(app, "--redirect-uri", "https://app.example.com/cb", &["--require-par"]));
    assert_eq!(par["require_pushed_authorization_requests"], true);
}

crate::backend_tests!(
    private_key_jwt_and_par_clients_are_created_with_the_cli,
    a_client_created_with_the_cli_gets_tokens,
    client_create_rejects_bad_arguments,
    client_create_refuses_dangerous_and_insecure_redirect_uris,
    client_create_registers_resource_servers_that_may_introspect,
    client_create_registers_clients_that_require_dpop,
    client_create_chooses_the_access_token_format,
    users_are_created_with_a_password_from_stdin,
    keys_list_shows_the_current_key,
    operators_list_and_revoke_sessions,
    session_list_shows_the_latest_rotation_as_last_use,
);

/// `tessera config check`: no server, no database; every value with its origin, secrets
/// hidden, and a bad setting named with exit code 1.
mod config_check {
    use std::process::{Command, Output};

    fn config_check(config_file: Option<&std::path::Path>, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
            command.env_remove(name);
        }
        if let Some(file) = config_file {
            command.arg("--config").arg(file);
        }
        command.args(["config", "check"]).envs(env.iter().copied()).output().expect("the tessera binary runs")
    }

    fn line<'a>(stdout: &'a str, setting: &str) -> &'a str {
        stdout.lines().find(|l| l.split_whitespace().next() == Some(setting)).unwrap_or_else(|| panic!("{setting}"))
    }

    #[test]
    fn config_check_tells_where_each_value_came_from_and_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tessera.toml");
        std::fs::write(&file, "[tokens]\naccess_token_ttl = \"10m\"\n").unwrap();
        let password = dir.path().join("db-password");
        std::fs::write(&password, "s3cret-from-a-file\n").unwrap();
        let kek = "voJ3h40coqQMUVbDvsQuRzfYcxd6UaKMuRSV7o/d51Y=";
        let output = config_check(
            Some(&file),
            &[
                ("TESSERA_DATABASE_URL", "postgres://tessera:inline-pw@db.internal/tessera"),
                ("TESSERA_KEY_ENCRYPTION_KEY", kek),
                ("TESSERA_LOGIN__MAX_FAILURES", "7"),
            ],
        );
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(line(&stdout, "tokens.access_token_ttl").ends_with(&format!("# file {}", file.display())));
        assert!(line(&stdout, "login.max_failures").ends_with("# environment TESSERA_LOGIN__MAX_FAILURES"));
        assert!(line(&stdout, "tokens.id_token_ttl").ends_with("# default"));
        assert!(line(&stdout, "key_encryption_key").contains("***"));
        assert!(line(&stdout, "database_url").contains("postgres://tessera:***@db.internal/tessera"));
        assert!(!stdout.contains(kek) && !stdout.contains("inline-pw"), "{stdout}");

        // The password as a container secret, beside a URL without one.
        let password_file = password.to_str().unwrap();
        let output = config_check(
            None,
            &[
                ("TESSERA_DATABASE_URL", "postgres://tessera@db.internal/tessera"),
                ("TESSERA_DATABASE__PASSWORD_FILE", password_file),
            ],
        );
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(line(&stdout, "database.password").contains(&format!("# file {password_file}")));
        assert!(!stdout.contains("s3cret-from-a-file"), "{stdout}");
    }

    #[test]
    fn config_check_names_a_bad_setting_and_exits_1() {
        for (env, named) in [
            (
                ("TESSERA_TOKENS__ACCESS_TOKEN_TTL", "0"),
                "setting `tokens.access_token_ttl` (from environment TESSERA_TOKENS__ACCESS_TOKEN_TTL)",
            ),
            (("TESSERA_ISSUER", "ftp://example.com"), "setting `issuer`"),
            (("TESSERA_DATABASE__PASSWORD_FILE", "/nonexistent/pw"), "setting `database.password_file`: cannot read"),
            (("TESSERA_NO_SUCH_SETTING", "1"), "no_such_setting"),
        ] {
            let output = config_check(None, &[env]);
            assert_eq!(output.status.code(), Some(1), "{env:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert!(stderr.contains(named), "{env:?}: {stderr}");
            assert!(output.stdout.is_empty(), "nothing is listed for an invalid configuration");
        }
    }
}
