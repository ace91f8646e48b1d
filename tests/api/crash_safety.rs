//! The `tessera serve` process: its signals, environment and crashes. Crash safety: refresh chains and code exchanges run against a `tessera serve` process,
//! which is killed with SIGKILL mid-load and restarted on the same database. Then every
//! chain is checked: no refresh token lost or duplicated, no family both alive and
//! revoked, a client retrying within the retry window gets the same successor (the one
//! the crashed rotation stored), and every code was redeemed at most once.
//!
//! Which requests were in flight at the kill depends on timing; what is asserted does not:
//! every outcome (answered, unknown, never sent) has its own invariant.

// SIGKILL and exit signals: Unix only.
#![cfg(unix)]

use crate::helpers::browser::{form_tokens, redirect_params, AuthorizeRequest, Pkce, PASSWORD};
use crate::helpers::clients::{ClientSpec, TestClient, WEB_APP_REDIRECT_URI};
use crate::helpers::{TestApp, TestDatabase};
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tessera::domain::authorization::{AuthorizationGrant, SessionId};
use tessera::domain::client::ClientId;
use tessera::domain::pkce::CodeChallenge;
use tessera::domain::scope::ScopeSet;
use tessera::domain::secret::SecretDigest;
use tessera::domain::user::User;
use tokio::sync::Notify;

/// Refresh-token families, one chain of rotations each.
const CHAINS: usize = 16;
/// Authorization codes inserted before the load and exchanged during it.
const CODES: usize = 24;
const USERS: usize = 4;
/// Every HTTP call, the readiness wait, and the whole test are bounded.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Long enough that a retry after the restart is still inside the window on a slow machine.
const RETRY_WINDOW: &str = "60s";

/// Rotations chain `i` attempts, 3 to 39: short chains end before the kill, long ones are cut by it.
fn chain_length(i: usize) -> usize {
    3 + (i * 11) % 37
}

fn digest(secret: &str) -> String {
    SecretDigest::of(secret).as_str().to_owned()
}

/// A `tessera serve` child process, killed (SIGKILL) and reaped when dropped, so no
/// process outlives the test, whatever path it takes.
struct ServeProcess {
    child: Child,
    log: std::path::PathBuf,
    address: String,
}

impl ServeProcess {
    /// Starts the binary on `database`, listening on `port` (or, should that be taken by
    /// now, on another free port), and waits until `/readyz` answers 200.
    async fn start(database: &TestDatabase, port: u16, run: usize) -> Self {
        Self::start_with(database, port, run, &[]).await
    }

    /// As [`start`](Self::start), with more environment variables.
    async fn start_with(database: &TestDatabase, port: u16, run: usize, env: &[(&str, &str)]) -> Self {
        match Self::start_on(database, port, run, env).await {
            Ok(process) => process,
            Err(output) => {
                eprintln!("tessera serve did not start on port {port}, trying another one:\n{output}");
                Self::start_on(database, free_port(), run, env)
                    .await
                    .unwrap_or_else(|output| panic!("tessera serve exited before it was ready:\n{output}"))
            }
        }
    }

    /// `Err(its output)` when the process exits before it is ready.
    async fn start_on(database: &TestDatabase, port: u16, run: usize, env: &[(&str, &str)]) -> Result<Self, String> {
        let root = env!("CARGO_MANIFEST_DIR");
        let address = format!("http://127.0.0.1:{port}");
        let log = database.scratch_dir().join(format!("serve-{run}.log"));
        let out = File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
            command.env_remove(name);
        }
        command
            .arg("serve")
            .env("TESSERA_DATABASE_URL", database.url())
            .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
            .env("TESSERA_ISSUER", &address)
            .env("TESSERA_KEY_ENCRYPTION_KEY", "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=")
            .env("TESSERA_KEYS_DIR", database.scratch_dir().join("serve-keys"))
            .env("TESSERA_KEYS__BOOTSTRAP_KEY_FILE", format!("{root}/keys/test-signing-key.pem"))
            .env("TESSERA_REFRESH_TOKENS__RETRY_WINDOW", RETRY_WINDOW)
            .env("TESSERA_DATABASE__MAX_CONNECTIONS", "8")
            .env("TESSERA_HTTP__WORKERS", "2")
            // The Shared Signals crash test pushes to a receiver on 127.0.0.1.
            .env("TESSERA_SSF__ALLOW_LOOPBACK_PUSH", "true")
            .env("TESSERA_LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        // A secret given as a file (`X_FILE`) replaces the default given directly above:
        // Tessera refuses both at once.
        for (name, _) in env.iter().filter(|(name, _)| name.ends_with("_FILE")) {
            command.env_remove(name.trim_end_matches("_FILE"));
        }
        let child = command.spawn().expect("the tessera binary starts");
        let mut process = Self { child, log, address };
        process.wait_until_ready().await?;
        Ok(process)
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let http = http_client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return Err(format!("exit status {status}\n{}", self.output()));
            }
            let ready = http.get(format!("{}/readyz", self.address)).timeout(Duration::from_secs(2)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "tessera serve not ready within {READY_TIMEOUT:?}:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap. `Err` with the exit status
    /// when the process had already ended by itself.
    fn kill(&mut self) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("tessera serve had exited by itself ({status}) before the kill:\n{}", self.output()));
        }
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) if status.signal() == Some(9) => Ok(()),
            other => Err(format!("tessera serve did not die of SIGKILL: {other:?}")),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port()
}

/// A fresh client per server process: pooled connections to a killed one are dead.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A token request's outcome as the client sees it; `Err` is a transport failure
/// (the process died with the request in flight): the outcome is unknown.
async fn token_request(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let response =
        http.post(format!("{address}/token")).basic_auth(&client.id, client.secret.as_ref()).form(form).send().await?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await?;
    Ok((status, body))
}

/// A client-credentials access token of `client` from the process at `address`.
async fn client_token(http: &reqwest::Client, address: &str, client: &TestClient) -> String {
    let (status, body) = token_request(http, address, client, &[("grant_type", "client_credentials")]).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// Creates a Shared Signals stream delivering by `delivery` at the process at `address`
/// (SSF §8.1.1.1); its configuration.
async fn create_stream(http: &reqwest::Client, address: &str, token: &str, delivery: Value) -> Value {
    let response = http
        .post(format!("{address}/ssf/streams"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "delivery": delivery }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn refresh(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    token: &str,
) -> Result<(u16, Value), reqwest::Error> {
    token_request(http, address, client, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

async fn exchange(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    code: &TestCode,
) -> Result<(u16, Value), reqwest::Error> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.raw.as_str()),
        ("redirect_uri", WEB_APP_REDIRECT_URI),
        ("code_verifier", code.verifier.as_str()),
    ];
    token_request(http, address, client, &form).await
}

/// One login's refresh-token family and what its client saw.
struct Chain {
    family_id: String,
    /// Every token the client holds or held, oldest first: the login's, then each successor received.
    tokens: Vec<String>,
    /// The presented token of a request that died with the process.
    unknown: Option<String>,
}

struct TestCode {
    raw: String,
    verifier: String,
    /// With `offline_access`: its exchange also starts a refresh-token family.
    offline: bool,
}

#[derive(Debug, PartialEq)]
enum CodeOutcome {
    NotSent,
    /// The status, and the refresh token of a 200.
    Answered(u16, Option<String>),
    Unknown,
}

/// How far the load got, shared by the chains, the code exchanges and the killer.
struct Progress {
    rotations: AtomicUsize,
    kill_after: usize,
    reached: Notify,
    killed: AtomicBool,
    /// Transport failures before the kill: none are expected.
    early_failures: AtomicUsize,
}

impl Progress {
    fn rotated(&self) {
        if self.rotations.fetch_add(1, Ordering::SeqCst) + 1 == self.kill_after {
            self.reached.notify_one();
        }
    }
}

/// Everything that went wrong, collected so one failure shows the whole picture.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
}

async fn run_chain(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    chain: &mut Chain,
    length: usize,
    progress: &Progress,
    problems: &std::cell::RefCell<Problems>,
) {
    for _ in 0..length {
        let presented = chain.tokens.last().unwrap().clone();
        match refresh(http, address, client, &presented).await {
            Ok((200, body)) => {
                chain.tokens.push(body["refresh_token"].as_str().expect("a successor").to_owned());
                progress.rotated();
            }
            Ok((status, body)) => {
                problems
                    .borrow_mut()
                    .0
                    .push(format!("family {}: a rotation before the kill got {status}: {body}", chain.family_id));
                return;
            }
            Err(error) => {
                if !progress.killed.load(Ordering::SeqCst) {
                    progress.early_failures.fetch_add(1, Ordering::SeqCst);
                    eprintln!("family {}: transport failure before the kill: {error}", chain.family_id);
                }
                chain.unknown = Some(presented);
                return;
            }
        }
    }
}

/// Exchanges code `index` once the load has done enough rotations, unless the process is dead by then.
async fn run_code(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    code: &TestCode,
    index: usize,
    progress: &Progress,
) -> CodeOutcome {
    // Spread over the load: about three quarters before the kill, the rest never sent.
    let start_at = index * progress.kill_after * 4 / (3 * CODES);
    while progress.rotations.load(Ordering::SeqCst) < start_at && !progress.killed.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if progress.killed.load(Ordering::SeqCst) {
        return CodeOutcome::NotSent;
    }
    match exchange(http, address, client, code).await {
        Ok((status, body)) => CodeOutcome::Answered(status, body["refresh_token"].as_str().map(str::to_owned)),
        Err(error) => {
            if !progress.killed.load(Ordering::SeqCst) {
                progress.early_failures.fetch_add(1, Ordering::SeqCst);
                eprintln!("code {index}: transport failure before the kill: {error}");
            }
            CodeOutcome::Unknown
        }
    }
}

/// Direct SQL on the test database, every value read as text.
enum Database {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Database {
    async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(SqliteConnection::connect(url).await.expect("sqlite connection"))
        } else {
            Self::Postgres(PgConnection::connect(url).await.expect("postgres connection"))
        }
    }

    async fn texts(&mut self, sql: &str, binds: &[&str]) -> Vec<Vec<Option<String>>> {
        match self {
            Self::Sqlite(connection) => {
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = query.bind(*bind);
                }
                let rows = query.fetch_all(connection).await.expect("sqlite query");
                rows.iter().map(|row| (0..row.len()).map(|i| row.get::<Option<String>, _>(i)).collect()).collect()
            }
            Self::Postgres(connection) => {
                let mut query = sqlx::query(sql);
                for bind in binds {
                    query = query.bind(*bind);
                }
                let rows = query.fetch_all(connection).await.expect("postgres query");
                rows.iter().map(|row| (0..row.len()).map(|i| row.get::<Option<String>, _>(i)).collect()).collect()
            }
        }
    }

    /// The successor digest a rotation of `token` stored, if it was rotated.
    async fn successor_of(&mut self, token: &str) -> Option<String> {
        let rows =
            self.texts("SELECT successor_digest FROM refresh_tokens WHERE token_digest = $1", &[&digest(token)]).await;
        rows.into_iter().next().and_then(|mut row| row.remove(0))
    }

    /// Whether the code was redeemed, and the family its exchange started.
    async fn code_state(&mut self, code: &str) -> (bool, Option<String>) {
        let rows = self
            .texts(
                "SELECT CASE WHEN used_at IS NULL THEN 'unused' ELSE 'used' END, family_id FROM authorization_codes \
                 WHERE code_digest = $1",
                &[&digest(code)],
            )
            .await;
        assert_eq!(rows.len(), 1, "the code's row is still there");
        (rows[0][0].as_deref() == Some("used"), rows[0][1].clone())
    }

    async fn is_revoked(&mut self, family_id: &str) -> bool {
        let rows =
            self.texts("SELECT id FROM token_families WHERE id = $1 AND revoked_at IS NOT NULL", &[family_id]).await;
        rows.len() == 1
    }

    async fn close(self) {
        let _ = match self {
            Self::Sqlite(connection) => connection.close().await,
            Self::Postgres(connection) => connection.close().await,
        };
    }
}

/// `TestApp::offline_login`, in a browser of its own: each login keeps its own SSO
/// session (one cookie jar would end the previous session at every login).
async fn offline_login_in_own_browser(app: &TestApp, client: &TestClient, user: &User) -> Value {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap();
    let request = AuthorizeRequest {
        scope: Some("openid profile offline_access invoices:read".into()),
        ..AuthorizeRequest::new(client, WEB_APP_REDIRECT_URI)
    }
    .with("prompt", "consent");
    let page = browser.get(app.url("/authorize")).query(&request.params()).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page");
    let tokens = form_tokens(&page.text().await.unwrap());
    let form = [
        ("pending", tokens.pending.as_str()),
        ("csrf_token", &tokens.csrf_token),
        ("username", user.username.as_str()),
        ("password", PASSWORD),
    ];
    let mut response = browser.post(app.url("/login")).form(&form).send().await.unwrap();
    if response.status() == 200 {
        let tokens = form_tokens(&response.text().await.unwrap());
        let form = [("pending", tokens.pending.as_str()), ("csrf_token", &tokens.csrf_token), ("decision", "allow")];
        response = browser.post(app.url("/consent")).form(&form).send().await.unwrap();
    }
    let params = redirect_params(&response);
    let code = TestCode { raw: params["code"].clone(), verifier: request.pkce.verifier.clone(), offline: true };
    let (status, body) = exchange(&app.http, &app.address, client, &code).await.unwrap();
    assert_eq!(status, 200, "the code exchange: {body}");
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.starts_with("trt_")), "a refresh token: {body}");
    body
}

/// Arranges families and codes with an in-process server, then stops it.
async fn arrange(database: &TestDatabase) -> (TestClient, Vec<Chain>, Vec<TestCode>) {
    let app = TestApp::spawn(database, |_| {}).await.expect("the in-process server starts");
    let client = app.register_client(ClientSpec::offline_app()).await;
    let mut users = Vec::new();
    for u in 0..USERS {
        users.push(app.create_user(&format!("crash{u}")).await);
    }
    let mut chains = Vec::new();
    // Each login's SSO session (user, sid): the codes name live ones, as codes from /authorize do.
    let mut sessions = Vec::new();
    for i in 0..CHAINS {
        let user = &users[i % USERS];
        let body = offline_login_in_own_browser(&app, &client, user).await;
        let claims = app.verify_access_token(body["access_token"].as_str().unwrap(), "https://api.example.com").await;
        sessions.push((user.id.clone(), claims["sid"].as_str().expect("a sid").to_owned()));
        chains.push(Chain {
            family_id: claims["fid"].as_str().expect("a fid").to_owned(),
            tokens: vec![body["refresh_token"].as_str().unwrap().to_owned()],
            unknown: None,
        });
    }
    let mut db = Database::connect(database.url()).await;
    for (user_id, sid) in &sessions {
        let stored = db.texts("SELECT user_id FROM sessions WHERE sid = $1", &[sid]).await;
        assert_eq!(stored, vec![vec![Some(user_id.to_string())]], "login {sid}'s SSO session is live");
    }
    db.close().await;
    let mut codes = Vec::new();
    let now = chrono::Utc::now();
    for j in 0..CODES {
        let pkce = Pkce::new();
        let raw = format!("crash-safety-code-{j}-{}", uuid::Uuid::new_v4().simple());
        let grant = AuthorizationGrant {
            client_id: ClientId::parse(&client.id).unwrap(),
            user_id: sessions[j % CHAINS].0.clone(),
            sid: SessionId::parse(&sessions[j % CHAINS].1).unwrap(),
            redirect_uri: WEB_APP_REDIRECT_URI.into(),
            scope: ScopeSet::parse(if j % 2 == 0 { "openid offline_access" } else { "openid profile" }).unwrap(),
            nonce: None,
            code_challenge: CodeChallenge::parse(Some(&pkce.challenge), Some("S256")).unwrap(),
            auth_time: now,
            created_at: now,
            // Outlives the load, the restart and the checks.
            expires_at: now + chrono::Duration::minutes(15),
        };
        app.storage.insert_code(&SecretDigest::of(&raw), &grant).await.unwrap();
        codes.push(TestCode { raw, verifier: pkce.verifier, offline: j % 2 == 0 });
    }
    app.stop().await;
    (client, chains, codes)
}

async fn a_sigkill_mid_load_loses_and_duplicates_nothing(database: &TestDatabase) {
    let started = Instant::now();
    tokio::time::timeout(TEST_TIMEOUT, crash_and_check(database))
        .await
        .unwrap_or_else(|_| panic!("the crash-safety test did not finish within {TEST_TIMEOUT:?}"));
    eprintln!(
        "crash safety on {}: {:.1} s",
        database.url().split(':').next().unwrap(),
        started.elapsed().as_secs_f64()
    );
}

async fn crash_and_check(database: &TestDatabase) {
    let (client, mut chains, codes) = arrange(database).await;
    let port = free_port();

    // --- Load, and SIGKILL while it runs.
    let mut server = ServeProcess::start(database, port, 1).await;
    let address = server.address.clone();
    let total: usize = (0..CHAINS).map(chain_length).sum();
    let jitter = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
    let progress = Progress {
        rotations: AtomicUsize::new(0),
        kill_after: total / 3 + jitter % (total / 6), // a third to half of all rotations
        reached: Notify::new(),
        killed: AtomicBool::new(false),
        early_failures: AtomicUsize::new(0),
    };
    let problems = std::cell::RefCell::new(Problems::default());
    let http = http_client();
    let code_outcomes = {
        let chain_runs = chains
            .iter_mut()
            .enumerate()
            .map(|(i, chain)| run_chain(&http, &address, &client, chain, chain_length(i), &progress, &problems));
        let code_runs =
            codes.iter().enumerate().map(|(j, code)| run_code(&http, &address, &client, code, j, &progress));
        let load = async {
            futures_util::future::join(
                futures_util::future::join_all(chain_runs),
                futures_util::future::join_all(code_runs),
            )
            .await
        };
        let killer = async {
            // Bounded: if the load stalls short of `kill_after`, kill anyway.
            let _ = tokio::time::timeout(Duration::from_secs(120), progress.reached.notified()).await;
            progress.killed.store(true, Ordering::SeqCst);
            if let Err(problem) = server.kill() {
                problems.borrow_mut().0.push(problem);
            }
        };
        let ((_, code_outcomes), ()) = futures_util::future::join(load, killer).await;
        code_outcomes
    };
    let killed_at = Instant::now();
    drop(server);
    drop(http);
    let mut problems = problems.into_inner();
    let rotations_before = progress.rotations.load(Ordering::SeqCst);

    // --- Restart on the same database, and check every chain.
    let server = ServeProcess::start(database, port, 2).await;
    let http = http_client();
    let address = server.address.clone();
    let mut db = Database::connect(database.url()).await;
    // Presented token -> every successor the server handed out for it.
    let mut successors: HashMap<String, HashSet<String>> = HashMap::new();
    for chain in &chains {
        for pair in chain.tokens.windows(2) {
            successors.entry(pair[0].clone()).or_default().insert(pair[1].clone());
        }
    }
    let (mut committed_unknown, mut uncommitted_unknown, mut retried_known) = (0, 0, 0);
    let since_kill = |killed_at: Instant| format!("{:.1} s after the kill", killed_at.elapsed().as_secs_f64());
    for chain in &mut chains {
        let fid = chain.family_id.clone();
        if let Some(presented) = chain.unknown.take() {
            // (1) The lost response: the same token again is answered within the retry window.
            let stored = db.successor_of(&presented).await;
            match refresh(&http, &address, &client, &presented).await.expect("the restarted server answers") {
                (200, body) => {
                    let successor = body["refresh_token"].as_str().unwrap().to_owned();
                    match &stored {
                        Some(stored) => {
                            committed_unknown += 1;
                            problems.check(*stored == digest(&successor), || {
                                format!("family {fid}: the rotation committed before the kill, but the retry returned another successor than the stored one")
                            });
                        }
                        None => uncommitted_unknown += 1,
                    }
                    successors.entry(presented).or_default().insert(successor.clone());
                    chain.tokens.push(successor);
                }
                (status, body) => problems.0.push(format!(
                    "family {fid}: retrying the request lost in the crash (rotation {}) got {status}: {body} ({})",
                    if stored.is_some() { "committed" } else { "not committed" },
                    since_kill(killed_at),
                )),
            }
        } else if chain.tokens.len() >= 2 {
            // The client got its last successor before the kill; a retry of the previous
            // token within the window, across the restart, gets that same successor.
            let previous = chain.tokens[chain.tokens.len() - 2].clone();
            let received = chain.tokens.last().unwrap().clone();
            match refresh(&http, &address, &client, &previous).await.expect("the restarted server answers") {
                (200, body) => {
                    retried_known += 1;
                    let successor = body["refresh_token"].as_str().unwrap().to_owned();
                    problems.check(successor == received, || {
                        format!("family {fid}: a retry after the restart got another successor than before the kill")
                    });
                    successors.entry(previous).or_default().insert(successor);
                }
                (status, body) => problems.0.push(format!(
                    "family {fid}: a retry within the window after the restart got {status}: {body} ({})",
                    since_kill(killed_at)
                )),
            }
        }
    }
    // (2) Nothing lost: each chain's current token rotates. (After all the retries, which
    // must come within the retry window of the rotations before the kill.)
    for chain in &mut chains {
        let fid = chain.family_id.clone();
        let current = chain.tokens.last().unwrap().clone();
        match refresh(&http, &address, &client, &current).await.expect("the restarted server answers") {
            (200, body) => {
                let successor = body["refresh_token"].as_str().unwrap().to_owned();
                successors.entry(current).or_default().insert(successor.clone());
                chain.tokens.push(successor);
            }
            (status, body) => problems
                .0
                .push(format!("family {fid}: its current token no longer rotates after the restart: {status} {body}")),
        }
    }

    // (3) Never two successors for one presented token, as seen by clients...
    for (presented, issued) in &successors {
        problems.check(issued.len() == 1, || {
            format!("token {} got {} different successors", digest(presented), issued.len())
        });
    }
    // ...and as stored: each family's rows are exactly its chain, linked in order, one live.
    for chain in &chains {
        let fid = &chain.family_id;
        let rows = db
            .texts(
                "SELECT token_digest, successor_digest, CASE WHEN used_at IS NULL THEN 'live' ELSE 'used' END \
                 FROM refresh_tokens WHERE family_id = $1",
                &[fid],
            )
            .await;
        let stored: HashMap<String, (Option<String>, bool)> = rows
            .into_iter()
            .map(|row| (row[0].clone().unwrap(), (row[1].clone(), row[2].as_deref() == Some("live"))))
            .collect();
        let expected: Vec<String> = chain.tokens.iter().map(|t| digest(t)).collect();
        let live = stored.values().filter(|(_, live)| *live).count();
        problems.check(live <= 1, || format!("family {fid}: {live} unused tokens (a duplicated successor)"));
        let orphans = stored.keys().filter(|d| !expected.contains(d)).count();
        problems.check(orphans == 0, || {
            format!(
                "family {fid}: {orphans} stored tokens no client ever received (rows {}, chain {})",
                stored.len(),
                expected.len()
            )
        });
        for (i, token) in expected.iter().enumerate() {
            let Some((successor, live)) = stored.get(token) else {
                problems.0.push(format!("family {fid}: token {i} of the chain is not stored (lost)"));
                continue;
            };
            let last = i + 1 == expected.len();
            problems.check(*live == last, || {
                format!("family {fid}: token {i} of {} is {}", expected.len(), if *live { "unused" } else { "used" })
            });
            problems.check(successor.as_ref() == expected.get(i + 1), || {
                format!("family {fid}: token {i} records another successor than the one its client received")
            });
        }
        // (4) Alive (its live token rotated above) and so never revoked.
        let family = db.texts("SELECT CASE WHEN revoked_at IS NULL THEN 'alive' ELSE 'revoked' END, revoked_reason FROM token_families WHERE id = $1", &[fid]).await;
        problems.check(family.len() == 1 && family[0][0].as_deref() == Some("alive"), || {
            format!(
                "family {fid} is revoked ({:?}) although its clients behaved",
                family.first().and_then(|r| r[1].clone())
            )
        });
    }
    let revoked = db.texts("SELECT id FROM token_families WHERE revoked_at IS NOT NULL", &[]).await;
    problems.check(revoked.is_empty(), || format!("{} families revoked", revoked.len()));
    // Every family is a login's or a code's (its family creation is atomic with the mark on
    // the code), and has exactly one unused token.
    let families: HashSet<Option<String>> =
        db.texts("SELECT id FROM token_families", &[]).await.into_iter().map(|mut row| row.remove(0)).collect();
    let mut known: HashSet<Option<String>> = chains.iter().map(|chain| Some(chain.family_id.clone())).collect();
    for code in &codes {
        known.insert(db.code_state(&code.raw).await.1);
    }
    let strays = families.iter().filter(|family| !known.contains(*family)).count();
    problems.check(strays == 0, || format!("{strays} families belong to no login and no code"));
    let mut live_per_family: HashMap<Option<String>, usize> = HashMap::new();
    for row in db.texts("SELECT family_id FROM refresh_tokens WHERE used_at IS NULL", &[]).await {
        *live_per_family.entry(row[0].clone()).or_default() += 1;
    }
    problems.check(live_per_family.len() == families.len() && live_per_family.values().all(|n| *n == 1), || {
        format!("unused refresh tokens per family: {live_per_family:?}")
    });

    // (5) Each code: redeemed exactly once over the crash; what an offline one started
    // survives with it, and goes, as a whole, when the code is replayed.
    let mut code_counts: HashMap<&str, usize> = HashMap::new();
    for (j, (code, outcome)) in codes.iter().zip(&code_outcomes).enumerate() {
        let (used, mut family) = db.code_state(&code.raw).await;
        // The newest refresh token the client holds from this code.
        let mut held = None;
        match outcome {
            CodeOutcome::Answered(200, refresh_token) => {
                *code_counts.entry("exchanged").or_default() += 1;
                problems.check(used, || format!("code {j}: exchanged before the kill but not marked used"));
                problems.check(code.offline == refresh_token.is_some() && code.offline == family.is_some(), || {
                    format!(
                        "code {j}: offline {}, yet refresh token {refresh_token:?}, family {family:?}",
                        code.offline
                    )
                });
                held = refresh_token.clone();
            }
            CodeOutcome::Answered(status, _) => {
                problems.0.push(format!("code {j}: its exchange before the kill got {status}"))
            }
            CodeOutcome::Unknown => {
                let label = match (used, &family) {
                    (false, _) => "unknown, not redeemed",
                    (true, None) => "unknown, redeemed",
                    (true, Some(_)) => "unknown, redeemed, family started",
                };
                *code_counts.entry(label).or_default() += 1;
                problems
                    .check(code.offline || family.is_none(), || format!("code {j}: a family without offline_access"));
            }
            CodeOutcome::NotSent => {
                *code_counts.entry("not sent").or_default() += 1;
                problems.check(!used && family.is_none(), || format!("code {j}: never sent, yet marked used"));
            }
        }
        if !used {
            // Never redeemed: it still works, once.
            let (status, body) = exchange(&http, &address, &client, code).await.expect("the restarted server answers");
            problems.check(status == 200, || {
                format!("code {j}: never redeemed, but its exchange now got {status}: {body}")
            });
            held = body["refresh_token"].as_str().map(str::to_owned);
            family = db.code_state(&code.raw).await.1;
            problems.check(code.offline == held.is_some() && code.offline == family.is_some(), || {
                format!("code {j}: offline {}, yet its exchange now gave {body} and family {family:?}", code.offline)
            });
        }
        if let Some(token) = held.take() {
            // Nothing lost: the code's refresh token rotates after the restart.
            match refresh(&http, &address, &client, &token).await.expect("the restarted server answers") {
                (200, body) => held = body["refresh_token"].as_str().map(str::to_owned),
                (status, body) => problems.0.push(format!("code {j}: its refresh token got {status}: {body}")),
            }
        }
        let (status, body) = exchange(&http, &address, &client, code).await.expect("the restarted server answers");
        problems.check(status == 400 && body["error"] == "invalid_grant", || {
            format!("code {j}: presented again after its redemption, got {status}: {body}")
        });
        // RFC 6749 §4.1.2: the replay revokes the family the code started, wholly.
        if let Some(family) = &family {
            problems.check(db.is_revoked(family).await, || format!("code {j}: its replay left family {family} alive"));
        }
        if let Some(token) = held {
            let (status, body) = refresh(&http, &address, &client, &token).await.expect("the restarted server answers");
            problems.check(status == 400 && body["error"] == "invalid_grant", || {
                format!("code {j}: after the replay, the family's live token got {status}: {body}")
            });
        }
    }
    let alive = db.texts("SELECT id FROM token_families WHERE revoked_at IS NULL", &[]).await;
    problems.check(alive.len() == CHAINS, || format!("{} families alive at the end, {CHAINS} logins", alive.len()));
    db.close().await;
    drop(server);

    let unknown = committed_unknown + uncommitted_unknown;
    // Not timing: the kill comes before the last planned rotation, so some chain was cut.
    problems.check(unknown > 0, || "the kill interrupted no chain".into());
    eprintln!(
        "crash safety: killed after {rotations_before} rotations (planned {} of {total}); {unknown} rotations in flight \
         ({committed_unknown} had committed, {uncommitted_unknown} had not); {retried_known} answered rotations retried \
         after the restart; codes {code_counts:?}; {} transport failures before the kill",
        progress.kill_after,
        progress.early_failures.load(Ordering::SeqCst),
    );
    if !problems.0.is_empty() {
        let logs: Vec<String> = (1..=2)
            .map(|run| {
                let log = std::fs::read_to_string(database.scratch_dir().join(format!("serve-{run}.log")));
                format!("--- serve-{run}.log ---\n{}", log.unwrap_or_default())
            })
            .collect();
        panic!("{} problems:\n{}\n{}", problems.0.len(), problems.0.join("\n"), logs.join("\n"));
    }
}

/// A revocation's SET survives a SIGKILL between the commit and its delivery: the event
/// was written in the revocation's own transaction (the outbox), and the restarted server
/// pushes it. The receiver is down while the first process runs, so the kill always
/// comes after the commit and before any successful delivery.
async fn a_sigkill_between_a_revocation_and_its_push_loses_no_set(database: &TestDatabase) {
    use crate::helpers::signals::{Answer, PushReceiver, PUSH, SESSION_REVOKED};
    let app = TestApp::spawn(database, |_| {}).await.expect("the in-process server starts");
    let receiver = app.register_client(ClientSpec::receiver()).await;
    let client = app.register_client(ClientSpec::offline_app()).await;
    let user = app.create_user("crash-ssf").await;
    let tokens = app.offline_login(&client, &user).await;
    app.stop().await;

    let mut server = ServeProcess::start(database, free_port(), 1).await;
    let http = http_client();
    let token = client_token(&http, &server.address, &receiver).await;
    // Nothing listens here yet: every push attempt fails.
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/events");
    create_stream(&http, &server.address, &token, serde_json::json!({ "method": PUSH, "endpoint_url": endpoint }))
        .await;
    let revoked = http
        .post(format!("{}/revoke", server.address))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200, "the revocation committed");
    tokio::time::sleep(Duration::from_millis(300)).await; // an attempt or two fail meanwhile
    server.kill().unwrap_or_else(|why| panic!("{why}"));

    // The receiver comes up on that port; the restarted server delivers the SET.
    let receiving = PushReceiver::start_on(port, vec![Answer::Accept]);
    let restarted = ServeProcess::start(database, free_port(), 2).await;
    let received = receiving.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(received.len(), 1, "the SET was delivered after the restart:\n{}", restarted.output());
    let claims: Value = {
        use base64::Engine;
        let payload = received[0].0.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    assert!(claims["events"][SESSION_REVOKED]["reason_admin"].is_object(), "{claims}");
    assert!(claims["sub_id"]["token_family"].is_object(), "the revoked family: {claims}");
    receiving.stop().await;
}

/// SIGTERM is a graceful stop (as actix-web's own handling would make it): a receiver's
/// long poll answers at once, empty, as at its time-out, instead of holding the stop for
/// `ssf.long_poll_timeout` (30 s, Kubernetes' whole default grace period); the process
/// then exits 0.
async fn a_sigterm_ends_waiting_long_polls_and_exits_cleanly(database: &TestDatabase) {
    use crate::helpers::signals::POLL;
    let app = TestApp::spawn(database, |_| {}).await.expect("the in-process server starts");
    let receiver = app.register_client(ClientSpec::receiver()).await;
    app.stop().await;

    let mut server = ServeProcess::start(database, free_port(), 1).await;
    let http = http_client();
    let token = client_token(&http, &server.address, &receiver).await;
    let created = create_stream(&http, &server.address, &token, serde_json::json!({ "method": POLL })).await;
    let poll_url = created["delivery"]["endpoint_url"].as_str().expect("a poll endpoint").to_owned();
    let waiting = tokio::spawn({
        let http = http.clone();
        async move {
            let response = http.post(poll_url).bearer_auth(token).json(&serde_json::json!({})).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await; // the poll is waiting
    assert!(!waiting.is_finished(), "a long poll with nothing owed waits");

    let signalled = Instant::now();
    let sent = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    assert!(sent.is_ok_and(|status| status.success()));
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("answered").unwrap();
    assert_eq!((status, body), (200, serde_json::json!({ "sets": {} })));
    let exited = loop {
        if let Some(status) = server.child.try_wait().expect("child status") {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(10), "tessera serve still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}:\n{}", server.output());
    eprintln!("SIGTERM to exit with a waiting long poll: {:?}", signalled.elapsed());
}

/// Pushes ignore proxy settings from the environment: a proxy would resolve the
/// receiver's host name itself, past the SSRF guard's resolver.
async fn pushes_go_direct_whatever_proxy_the_environment_names(database: &TestDatabase) {
    use crate::helpers::signals::{PushReceiver, PUSH};
    let app = TestApp::spawn(database, |_| {}).await.expect("the in-process server starts");
    let receiver = app.register_client(ClientSpec::receiver()).await;
    app.stop().await;
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let server = ServeProcess::start_with(database, free_port(), 1, &env).await;
    let http = http_client();
    let token = client_token(&http, &server.address, &receiver).await;
    let endpoint = PushReceiver::start(vec![]);
    let delivery = serde_json::json!({ "method": PUSH, "endpoint_url": endpoint.url });
    let created = create_stream(&http, &server.address, &token, delivery).await;
    let verify = serde_json::json!({ "stream_id": created["stream_id"] });
    let requested = http.post(format!("{}/ssf/verify", server.address)).bearer_auth(&token).json(&verify).send().await;
    assert_eq!(requested.unwrap().status(), 204);

    let received = endpoint.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1, "the SET reached the receiver directly:\n{}", server.output());
    assert!(proxy.accept().is_err(), "nothing connected to the proxy");
    endpoint.stop().await;
}

/// Container secrets: the database URL and the key-encryption key come from files named
/// by `TESSERA_DATABASE_URL_FILE` and `TESSERA_KEY_ENCRYPTION_KEY_FILE`. The second start,
/// with another key in the file, fails on the signing key the first one encrypted: the
/// file's key is the one in use, not a default.
async fn the_server_reads_its_secrets_from_files(database: &TestDatabase) {
    let dir = database.scratch_dir();
    let url_file = dir.join("database-url");
    std::fs::write(&url_file, format!("{}\n", database.url())).unwrap();
    let kek_file = dir.join("kek");
    std::fs::write(&kek_file, "voJ3h40coqQMUVbDvsQuRzfYcxd6UaKMuRSV7o/d51Y=\n").unwrap();
    let env = [
        ("TESSERA_DATABASE_URL_FILE", url_file.to_str().unwrap()),
        ("TESSERA_KEY_ENCRYPTION_KEY_FILE", kek_file.to_str().unwrap()),
    ];
    let mut server = ServeProcess::start_with(database, free_port(), 1, &env).await;
    let jwks = http_client().get(format!("{}/jwks.json", server.address)).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    let _ = server.kill();

    std::fs::write(&kek_file, "0dTvTNpYqq1fOTQeIA/WQgl2KftlP0w5M/uErWCctaA=").unwrap();
    let refused = ServeProcess::start_on(database, free_port(), 2, &env).await;
    let output = refused.err().expect("another key-encryption key cannot decrypt the signing key");
    assert!(output.contains("decrypt"), "{output}");
    assert!(!output.contains("voJ3h40coqQ") && !output.contains("0dTvTNpYqq1"), "{output}");
}

/// What the chains of the graceful-stop test share.
#[derive(Default)]
struct GracefulLoad {
    rotations: AtomicUsize,
    /// Set just before the SIGTERM: transport failures after it are expected.
    stopping: AtomicBool,
    problems: std::sync::Mutex<Vec<String>>,
    /// Notified once the chains have done a few rotations each.
    reached: Notify,
}

/// Rotates `chain` until the server goes away; every answer must be a 200.
async fn chain_until_stopped(
    http: &reqwest::Client,
    address: &str,
    client: &TestClient,
    chain: &mut Chain,
    load: &GracefulLoad,
) {
    // Bounded: the server stops within seconds of the signal.
    for _ in 0..10_000 {
        let presented = chain.tokens.last().unwrap().clone();
        match refresh(http, address, client, &presented).await {
            Ok((200, body)) => {
                chain.tokens.push(body["refresh_token"].as_str().expect("a successor").to_owned());
                if load.rotations.fetch_add(1, Ordering::SeqCst) + 1 == 3 * CHAINS {
                    load.reached.notify_one();
                }
            }
            Ok((status, body)) => {
                load.problems.lock().unwrap().push(format!("family {}: {status} {body}", chain.family_id));
                return;
            }
            Err(error) => {
                if !load.stopping.load(Ordering::SeqCst) {
                    load.problems.lock().unwrap().push(format!("before the signal: {error}"));
                }
                chain.unknown = Some(presented);
                return;
            }
        }
    }
}

/// Graceful stop under load: SIGTERM while refresh chains run. For `http.shutdown_delay`
/// `/readyz` answers 503 while the chains are still served; then the listener closes,
/// requests in flight are answered, the process exits 0. No rotation committed without its
/// answer reaching the client, and after a restart each chain goes on from the last token
/// its client received.
async fn a_sigterm_mid_load_answers_every_request_in_flight(database: &TestDatabase) {
    let (client, mut chains, _) = arrange(database).await;
    let env = [("TESSERA_HTTP__SHUTDOWN_DELAY", "1s")];
    let server = ServeProcess::start_with(database, free_port(), 1, &env).await;
    let address = server.address.clone();
    let http = http_client();
    let load = GracefulLoad::default();
    let (rotations, stopping, problems, reached) = (&load.rotations, &load.stopping, &load.problems, &load.reached);
    let run = |chain| chain_until_stopped(&http, &address, &client, chain, &load);
    let signal_and_watch = async {
        let _ = tokio::time::timeout(Duration::from_secs(60), reached.notified()).await;
        let before = rotations.load(Ordering::SeqCst);
        stopping.store(true, Ordering::SeqCst);
        let signalled = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A new connection during the drain: not ready, while the chains are still served.
        let ready = http_client().get(format!("{address}/readyz")).send().await.expect("still accepting");
        assert_eq!(ready.status(), 503, "draining");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during_drain = rotations.load(Ordering::SeqCst) - before;
        (signalled, during_drain)
    };
    let (_, (signalled, during_drain)) =
        futures_util::future::join(futures_util::future::join_all(chains.iter_mut().map(run)), signal_and_watch).await;
    let mut server = server;
    let exited = loop {
        if let Some(status) = server.child.try_wait().expect("child status") {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(40), "tessera serve still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited:?}:\n{}", server.output());
    eprintln!("graceful stop under load: {:?}; {during_drain} rotations during the drain", signalled.elapsed());
    assert!(during_drain > 0, "requests are still served while /readyz says 503");
    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "{problems:#?}");
    drop(server);

    let server = ServeProcess::start(database, free_port(), 2).await;
    let http = http_client();
    let mut db = Database::connect(database.url()).await;
    for chain in &chains {
        if let Some(presented) = &chain.unknown {
            assert_eq!(
                db.successor_of(presented).await,
                None,
                "family {}: a rotation lost its answer",
                chain.family_id
            );
        }
        let last = chain.tokens.last().unwrap();
        let (status, body) =
            refresh(&http, &server.address, &client, last).await.expect("the restarted server answers");
        assert_eq!(status, 200, "family {}: the last token received goes on: {body}", chain.family_id);
    }
    db.close().await;
}

/// The audit events of a `tessera serve` process with JSON logs, as an operator's log
/// pipeline reads them.
fn audit_events(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["audit"] == true)
        .collect()
}

/// Audit events on the log stream: a failed login (client IP, client id, request id), a
/// revocation, and an operator's change through the CLI; none carries a secret.
async fn security_events_are_audited_with_their_request_id(database: &TestDatabase) {
    let app = TestApp::spawn(database, |_| {}).await.expect("the in-process server starts");
    let web = app.register_client(ClientSpec::web_app()).await;
    let service = app.register_client(ClientSpec::service()).await;
    let admin =
        app.register_client(ClientSpec { scope: "tessera:admin", audiences: vec![], ..ClientSpec::service() }).await;
    let not_admin = app.register_client(ClientSpec { audiences: vec![], ..ClientSpec::service() }).await;
    app.create_user("audited").await;
    app.stop().await;
    let json_logs = [("TESSERA_LOG__FORMAT", "json"), ("TESSERA_LOG__FILTER", "info")];
    let server = ServeProcess::start_with(database, free_port(), 1, &json_logs).await;
    let http =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let request = AuthorizeRequest::new(&web, WEB_APP_REDIRECT_URI);
    let page = http.get(format!("{}/authorize", server.address)).query(&request.params()).send().await.unwrap();
    let tokens = form_tokens(&page.text().await.unwrap());
    let form = [
        ("pending", tokens.pending.as_str()),
        ("csrf_token", &tokens.csrf_token),
        ("username", "audited"),
        ("password", "a-wrong-password-for-the-audit"),
    ];
    let failed = http.post(format!("{}/login", server.address)).form(&form).send().await.unwrap();
    assert_eq!(failed.status(), 401);
    let login_request_id = failed.headers()["x-request-id"].to_str().unwrap().to_owned();

    let token = client_token(&http, &server.address, &service).await;
    let revoked = http
        .post(format!("{}/revoke", server.address))
        .basic_auth(&service.id, service.secret.as_ref())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);

    // A change through the admin API: its actor is the admin client, with the request id.
    let admin_token = client_token(&http, &server.address, &admin).await;
    let rotated = http
        .post(format!("{}/admin/v1/clients/{}/secret", server.address, service.id))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 200);
    let rotate_request_id = rotated.headers()["x-request-id"].to_str().unwrap().to_owned();
    let new_secret = rotated.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    // Refused callers of the admin API: no token, a forged one, a client without the scope.
    let missing = http.get(format!("{}/admin/v1/clients", server.address)).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let forged = http
        .get(format!("{}/admin/v1/clients", server.address))
        .bearer_auth("a-forged-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let forged_request_id = forged.headers()["x-request-id"].to_str().unwrap().to_owned();
    let under_scoped = http
        .get(format!("{}/admin/v1/clients", server.address))
        .bearer_auth(&client_token(&http, &server.address, &not_admin).await)
        .send()
        .await
        .unwrap();
    assert_eq!(under_scoped.status(), 403);

    let output = server.output();
    let events = audit_events(&output);
    let change = events
        .iter()
        .find(|e| e["event"] == "admin_change")
        .unwrap_or_else(|| panic!("no admin_change event:\n{output}"));
    assert_eq!(
        (change["outcome"].as_str(), change["action"].as_str(), change["actor"].as_str(), change["target"].as_str()),
        (Some("success"), Some("client_rotate_secret"), Some(admin.id.as_str()), Some(service.id.as_str()))
    );
    assert_eq!(change["span"]["request_id"], rotate_request_id.as_str(), "{change}");
    assert!(!output.contains(&admin_token) && !output.contains(&new_secret), "no token or secret in the logs");
    let refused: Vec<_> = events.iter().filter(|e| e["event"] == "admin_auth").collect();
    assert_eq!(refused.len(), 3, "one event per refused admin call:\n{output}");
    assert_eq!(
        (refused[0]["outcome"].as_str(), refused[0]["reason"].as_str()),
        (Some("refused"), Some("missing_token"))
    );
    assert_eq!(
        (refused[1]["outcome"].as_str(), refused[1]["reason"].as_str(), refused[1]["client_ip"].as_str()),
        (Some("refused"), Some("invalid_token"), Some("127.0.0.1"))
    );
    assert_eq!(refused[1]["span"]["request_id"], forged_request_id.as_str(), "{}", refused[1]);
    assert_eq!(
        (refused[2]["reason"].as_str(), refused[2]["client_id"].as_str(), refused[2]["level"].as_str()),
        (Some("insufficient_scope"), Some(not_admin.id.as_str()), Some("WARN"))
    );
    assert!(!output.contains("a-forged-admin-token"), "no presented token in the logs");
    let login = events.iter().find(|e| e["event"] == "login").unwrap_or_else(|| panic!("no login event:\n{output}"));
    assert_eq!(login["outcome"], "failure");
    assert_eq!(login["client_id"], web.id.as_str());
    assert_eq!(login["client_ip"], "127.0.0.1");
    assert_eq!(login["span"]["request_id"], login_request_id.as_str(), "{login}");
    let revocation = events.iter().find(|e| e["event"] == "token_revoked").expect("a revocation event");
    assert_eq!(
        (revocation["outcome"].as_str(), revocation["client_id"].as_str()),
        (Some("success"), Some(service.id.as_str()))
    );
    assert!(revocation["span"]["request_id"].is_string());
    assert!(!output.contains("a-wrong-password-for-the-audit") && !output.contains(&token), "no secret in the logs");

    // The operator's change, from the CLI's own log stream.
    let cli = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["client", "disable", &web.id])
        .env("TESSERA_DATABASE_URL", database.url())
        .env("TESSERA_KEY_ENCRYPTION_KEY", "dGVzc2VyYS10ZXN0LWtleS1lbmNyeXB0aW9uLWtleSE=")
        .envs(json_logs)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let stderr = String::from_utf8(cli.stderr).unwrap();
    let change = audit_events(&stderr).into_iter().find(|e| e["event"] == "admin_change").expect("an admin event");
    assert_eq!(change["outcome"], "success");
    assert_eq!(change["action"], "client_disable");
    assert_eq!(change["target"], web.id.as_str());
    assert_eq!(change["actor"], "cli");
}

crate::database_tests!(
    security_events_are_audited_with_their_request_id,
    a_sigterm_mid_load_answers_every_request_in_flight,
    the_server_reads_its_secrets_from_files,
    a_sigterm_ends_waiting_long_polls_and_exits_cleanly,
    pushes_go_direct_whatever_proxy_the_environment_names,
    a_sigkill_mid_load_loses_and_duplicates_nothing,
    a_sigkill_between_a_revocation_and_its_push_loses_no_set,
);
