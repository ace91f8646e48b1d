//! `tessera-bench`: the load generator and report writer behind `bench/run`.
//!
//! Each load subcommand drives one scenario against a server on 127.0.0.1 for a fixed
//! time and prints one JSON object (requests/s, latency percentiles, errors) on stdout.
//! `report` turns a run directory of such files into `bench/results/latest.{md,json}`.
//! See bench/README.md.

mod argon2id;
mod awslc;
mod driver;
mod flows;
mod http;
mod openssl;
mod report;
mod revocation;
mod scenarios;
mod signed;
mod soak;
mod verify;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use driver::{Plan, Summary};
use flows::WebClient;
use http::{Conn, Target};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "tessera-bench", about = "Load generator and report writer for bench/run")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `openssl speed -seconds S [-multi N] rsa2048`, parsed.
    Openssl {
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        #[arg(long)]
        multi: Option<usize>,
    },
    /// RSA-2048 sign and verify rates of aws-lc (Tessera's crypto library) on N threads.
    Awslc {
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// The raw argon2id rate with the parameters of a PHC string the server wrote: the
    /// baseline of the login scenario.
    Argon2 {
        /// A password hash from the server's `users.password_hash` (only its parameters count).
        #[arg(long)]
        phc: String,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Prints a free TCP port on 127.0.0.1.
    FreePort,
    /// Waits until `GET URL` answers 200 (a server coming up).
    Wait {
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "/readyz")]
        path: String,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Scenario 1: POST /token with client_credentials.
    ClientCredentials {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        client: ClientArgs,
        /// The scope to request (both servers get the same request).
        #[arg(long)]
        scope: Option<String>,
    },
    /// Scenario 1c: client_credentials authenticated with a fresh private_key_jwt assertion
    /// (ES256) per request (issue 13).
    ClientCredentialsPrivateKeyJwt {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long)]
        client_id: String,
        /// The client's ES256 key, PKCS#8 DER, as `client-key` wrote it.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Scenario 1d: client_credentials (HTTP Basic) with a DPoP proof (ES256) per request,
    /// for a DPoP-bound access token (issue 13).
    ClientCredentialsDpop {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Writes a new ES256 client key (PKCS#8 DER) and its public JWK Set, for a
    /// private_key_jwt client (`tessera client create --auth private_key_jwt --jwks-file`).
    ClientKey {
        #[arg(long)]
        pkcs8: PathBuf,
        #[arg(long)]
        jwks: PathBuf,
    },
    /// Scenario 2: refresh-token rotation, one chain per connection.
    Refresh {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        login: LoginArgs,
        /// `scope` sent with each refresh (RFC 6749 §6), to narrow what is issued.
        #[arg(long)]
        refresh_scope: Option<String>,
    },
    /// Scenario 3: authorization-code exchange, codes prepared beforehand.
    Code {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        login: LoginArgs,
        /// Longest time spent preparing codes, in seconds.
        #[arg(long, default_value_t = 10.0)]
        prepare_seconds: f64,
        #[arg(long, default_value_t = 30_000)]
        max_codes: usize,
    },
    /// Scenario 8: full password logins, GET /authorize → login form → POST /login → code;
    /// 429s (the password-check bound) are counted apart, and their Retry-After honoured.
    Login {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// The long run: a client_credentials + refresh mix at half its measured peak, with
    /// RSS of --pid, errors and p99 every minute.
    Soak {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        login: LoginArgs,
        /// The client_credentials client.
        #[arg(long)]
        service_id: String,
        #[arg(long)]
        service_secret: String,
        #[arg(long, default_value = "api:read api:write")]
        service_scope: String,
        #[arg(long, default_value_t = 30)]
        minutes: usize,
        /// Minutes not judged for RSS growth (default: a sixth of the run).
        #[arg(long)]
        warmup_minutes: Option<usize>,
        /// Seconds of a "minute" (60; shorter only to try the command out).
        #[arg(long, default_value_t = 60.0)]
        minute_seconds: f64,
        /// Seconds of the closed-loop run that measures the peak.
        #[arg(long, default_value_t = 10.0)]
        peak_seconds: f64,
        /// The server process(es) whose RSS is sampled; repeat for replicas (summed).
        #[arg(long = "pid")]
        pids: Vec<u32>,
    },
    /// Scenario 4: POST /introspect of a valid client_credentials access token.
    Introspect {
        #[command(flatten)]
        load: LoadArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Scenario 5: GET of a static document.
    Get {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long)]
        path: String,
    },
    /// Scenario 6: in-process tessera-verify throughput per core.
    Verify {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value = "https://api.example.com")]
        audience: String,
        /// Seconds per case (raw RSA and Verifier::verify) per thread count.
        #[arg(long, default_value_t = 4.0)]
        seconds: f64,
        /// Thread counts to run, e.g. 1,2.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        threads: Vec<usize>,
    },
    /// Issue 12: time from an RFC 7009 revocation's answer until every one of N
    /// in-process tessera-verify verifiers (one SSF poll stream each) refuses the token.
    RevocationLatency {
        #[command(flatten)]
        login: LoginArgs,
        #[arg(long)]
        url: String,
        /// A client_credentials client, for the access tokens revoked by themselves.
        #[arg(long)]
        service_id: String,
        #[arg(long)]
        service_secret: String,
        /// A receiver client (scopes ssf.manage ssf.read) as ID:SECRET; repeat it. The
        /// verifiers are spread over them round-robin.
        #[arg(long = "receiver", required = true)]
        receivers: Vec<String>,
        #[arg(long, default_value_t = 100)]
        verifiers: usize,
        /// Revocations of each kind (refresh token, access token).
        #[arg(long, default_value_t = 120)]
        per_kind: usize,
        #[arg(long, default_value = "https://api.example.com")]
        audience: String,
        /// The random wait before each revocation, in milliseconds: from MIN to MAX.
        #[arg(long, default_value_t = 20)]
        min_gap_ms: u64,
        #[arg(long, default_value_t = 200)]
        max_gap_ms: u64,
        /// A revocation not refused by every verifier within this many seconds is missed.
        #[arg(long, default_value_t = 10.0)]
        miss_after: f64,
        /// Threads of the runtime that runs the verifiers' feeds.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Writes the Markdown table and the JSON of a run directory.
    Report {
        /// The run directory that bench/run filled.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        markdown: PathBuf,
        #[arg(long)]
        json: PathBuf,
    },
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// The server, e.g. http://127.0.0.1:8080 (loopback only). Several, comma-separated
    /// (replicas on one database): connection i goes to URL i mod N, round robin.
    #[arg(long)]
    url: String,
    /// Concurrent connections (one worker each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unrecorded load before the measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// A fixed total rate (requests per second) instead of a closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Threads of the load generator's runtime. It shares the machine with the server.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

impl LoadArgs {
    fn targets(&self) -> anyhow::Result<Vec<Target>> {
        let targets = self.url.split(',').map(Target::parse).collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!targets.is_empty(), "--url names no server");
        Ok(targets)
    }

    fn plan(&self) -> Plan {
        Plan {
            warmup: Duration::from_secs_f64(self.warmup),
            duration: Duration::from_secs_f64(self.duration),
            rate: self.rate,
        }
    }
}

#[derive(Args, Clone)]
struct ClientArgs {
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
}

#[derive(Args, Clone)]
struct LoginArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[arg(long)]
    redirect_uri: String,
    /// The scope of the authorization requests.
    #[arg(long)]
    scope: String,
    #[arg(long)]
    username: String,
    /// The user's password, read from this environment variable (not argv).
    #[arg(long, default_value = "BENCH_PASSWORD")]
    password_env: String,
}

impl LoginArgs {
    fn web_client(&self) -> Arc<WebClient> {
        Arc::new(WebClient {
            id: self.client.client_id.clone(),
            secret: self.client.client_secret.clone(),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
        })
    }

    fn password(&self) -> anyhow::Result<String> {
        std::env::var(&self.password_env).with_context(|| format!("set {} to the user's password", self.password_env))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openssl { seconds, multi } => print(&serde_json::to_value(openssl::run(seconds, multi)?)?),
        Command::Awslc { seconds, threads } => print(&serde_json::to_value(awslc::run(threads, seconds)?)?),
        Command::FreePort => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", listener.local_addr()?.port());
            Ok(())
        }
        Command::Report { dir, markdown, json } => report::write(&dir, &markdown, &json),
        Command::Argon2 { phc, threads, seconds } => {
            let params = argon2id::Argon2Params::parse_phc(&phc)?;
            print(&serde_json::to_value(argon2id::measure(params, threads, seconds)?)?)
        }
        Command::ClientKey { pkcs8, jwks } => signed::write_client_key(&pkcs8, &jwks),
        Command::Wait { url, path, timeout } => {
            let target = Target::parse(&url)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let deadline = std::time::Instant::now() + Duration::from_secs_f64(timeout);
                loop {
                    let mut conn = Conn::new(&target);
                    if conn.get(&path, &[]).await.is_ok_and(|r| r.status == 200) {
                        return Ok(());
                    }
                    anyhow::ensure!(
                        std::time::Instant::now() < deadline,
                        "{url}{path} did not answer 200 within {timeout} s"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        }
        Command::Verify { url, client, audience, seconds, threads } => {
            let target = Target::parse(&url)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (token, verifier, parsed, input, signature) =
                runtime.block_on(verify::prepare(&target, &client.client_id, &client.client_secret, &audience))?;
            let result = verify::measure(&token, &verifier, parsed, &input, &signature, &threads, seconds);
            print(&serde_json::to_value(result)?)
        }
        Command::RevocationLatency {
            login,
            url,
            service_id,
            service_secret,
            receivers,
            verifiers,
            per_kind,
            audience,
            min_gap_ms,
            max_gap_ms,
            miss_after,
            threads,
        } => {
            let receivers = receivers
                .iter()
                .map(|r| {
                    let (id, secret) = r.split_once(':').with_context(|| format!("--receiver {r}: not ID:SECRET"))?;
                    Ok((id.to_owned(), secret.to_owned()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let setup = revocation::Setup {
                target: Target::parse(&url)?,
                audience,
                verifiers,
                receivers,
                web: login.web_client(),
                username: login.username.clone(),
                password: login.password()?,
                service: (service_id, service_secret),
                per_kind,
                min_gap: Duration::from_millis(min_gap_ms),
                max_gap: Duration::from_millis(max_gap_ms),
                miss_after: Duration::from_secs_f64(miss_after),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
            print(&runtime.block_on(revocation::run(setup))?)
        }
        command => {
            let threads = match &command {
                Command::ClientCredentials { load, .. }
                | Command::ClientCredentialsPrivateKeyJwt { load, .. }
                | Command::ClientCredentialsDpop { load, .. }
                | Command::Refresh { load, .. }
                | Command::Code { load, .. }
                | Command::Introspect { load, .. }
                | Command::Login { load, .. }
                | Command::Soak { load, .. }
                | Command::Get { load, .. } => load.threads,
                _ => 1,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
            let result = runtime.block_on(load(command))?;
            print(&result)
        }
    }
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn with_setup(summary: Summary, scenario: &str, setup: Value) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(summary)?;
    value["scenario"] = json!(scenario);
    value["setup"] = setup;
    Ok(value)
}

async fn load(command: Command) -> anyhow::Result<Value> {
    match command {
        Command::ClientCredentials { load, client, scope } => {
            let targets = load.targets()?;
            let workers = (0..load.connections)
                .map(|i| {
                    scenarios::ClientCredentials::new(
                        &targets[i % targets.len()],
                        &client.client_id,
                        &client.client_secret,
                        scope.as_deref(),
                    )
                })
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(summary, "client_credentials", json!({ "scope": scope }))
        }
        Command::ClientCredentialsPrivateKeyJwt { load, client_id, key, scope } => {
            let target = Target::parse(&load.url)?;
            let key = signed::read_client_key(&key)?;
            let workers = (0..load.connections)
                .map(|_| signed::PrivateKeyJwt::new(&target, &client_id, key.clone(), scope.as_deref()))
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(summary, "client_credentials_private_key_jwt", json!({ "scope": scope, "alg": "ES256" }))
        }
        Command::ClientCredentialsDpop { load, client, scope } => {
            let target = Target::parse(&load.url)?;
            let workers = (0..load.connections)
                .map(|_| signed::Dpop::new(&target, &client.client_id, &client.client_secret, scope.as_deref()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let summary = driver::run(workers, load.plan()).await;
            with_setup(summary, "client_credentials_dpop", json!({ "scope": scope, "alg": "ES256" }))
        }
        Command::Get { load, path } => {
            let target = Target::parse(&load.url)?;
            let workers = (0..load.connections).map(|_| scenarios::Get::new(&target, &path)).collect();
            with_setup(driver::run(workers, load.plan()).await, "get", json!({ "path": path }))
        }
        Command::Introspect { load, client } => {
            let targets = load.targets()?;
            let mut conn = Conn::new(&targets[0]);
            let auth = http::basic_auth(&client.client_id, &client.client_secret);
            let response = conn.post_form("/token", &[auth], &[("grant_type", "client_credentials")]).await?;
            anyhow::ensure!(response.status == 200, "no token to introspect: {}", response.excerpt());
            let token = response.json()?["access_token"].as_str().context("access_token")?.to_owned();
            let workers = (0..load.connections)
                .map(|i| {
                    let target = &targets[i % targets.len()];
                    scenarios::Introspect::new(target, &client.client_id, &client.client_secret, &token)
                })
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(summary, "introspect", json!({ "token": "client_credentials access token" }))
        }
        Command::Refresh { load, login, refresh_scope } => {
            let targets = load.targets()?;
            let client = login.web_client();
            let started = std::time::Instant::now();
            let mut conn = Conn::new(&targets[0]);
            let (session, first) = flows::log_in(&mut conn, &client, &login.username, &login.password()?).await?;
            let session = Arc::new(session);
            // Each connection carries its own chain (its own token family).
            let mut tokens = Vec::with_capacity(load.connections);
            let first_tokens = flows::exchange(&mut conn, &client, &first).await?;
            tokens.push(first_tokens["refresh_token"].as_str().context("no refresh_token")?.to_owned());
            while tokens.len() < load.connections {
                tokens.push(flows::start_chain(&mut conn, &client, &session).await?);
            }
            let prepare_s = started.elapsed().as_secs_f64();
            let workers: Vec<_> = tokens
                .into_iter()
                .enumerate()
                .map(|(i, token)| {
                    let target = &targets[i % targets.len()];
                    scenarios::RefreshChain::new(target, client.clone(), session.clone(), token, refresh_scope.clone())
                })
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(
                summary,
                "refresh",
                json!({ "chains": load.connections, "authorize_scope": login.scope,
                        "refresh_scope": refresh_scope, "prepare_s": prepare_s }),
            )
        }
        Command::Code { load, login, prepare_seconds, max_codes } => {
            let targets = load.targets()?;
            let target = targets[0].clone();
            let client = login.web_client();
            let mut conn = Conn::new(&target);
            let (session, _) = flows::log_in(&mut conn, &client, &login.username, &login.password()?).await?;
            let session = Arc::new(session);
            let (codes, took) = scenarios::prepare_codes(
                &target,
                &client,
                &session,
                load.connections,
                Duration::from_secs_f64(prepare_seconds),
                max_codes,
            )
            .await?;
            let prepared = codes.len();
            let mut shares: Vec<Vec<_>> = (0..load.connections).map(|_| Vec::new()).collect();
            for (i, code) in codes.into_iter().enumerate() {
                shares[i % load.connections].push(code);
            }
            let workers = shares
                .into_iter()
                .enumerate()
                .map(|(i, codes)| scenarios::CodeExchange::new(&targets[i % targets.len()], &client, codes))
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(
                summary,
                "authorization_code",
                json!({ "scope": login.scope, "codes_prepared": prepared, "prepare_s": took.as_secs_f64(),
                        "prepare_rate": prepared as f64 / took.as_secs_f64() }),
            )
        }
        Command::Login { load, login } => {
            let targets = load.targets()?;
            let client = login.web_client();
            let password: Arc<str> = login.password()?.into();
            let workers = (0..load.connections)
                .map(|i| {
                    scenarios::Login::new(
                        &targets[i % targets.len()],
                        client.clone(),
                        &login.username,
                        password.clone(),
                    )
                })
                .collect();
            let summary = driver::run(workers, load.plan()).await;
            with_setup(
                summary,
                "login",
                json!({ "scope": login.scope, "flow": "GET /authorize, POST /login, 303 with a code" }),
            )
        }
        Command::Soak {
            load,
            login,
            service_id,
            service_secret,
            service_scope,
            minutes,
            warmup_minutes,
            minute_seconds,
            peak_seconds,
            pids,
        } => {
            let setup = soak::Setup {
                targets: load.targets()?,
                connections: load.connections,
                service: (service_id, service_secret),
                scope: service_scope,
                web: login.web_client(),
                username: login.username.clone(),
                password: login.password()?,
                minutes,
                warmup_minutes: warmup_minutes.unwrap_or_else(|| soak::default_warmup(minutes)),
                minute: Duration::from_secs_f64(minute_seconds),
                peak_seconds,
                rate: load.rate,
                pids,
            };
            soak::run(setup).await
        }
        _ => unreachable!("handled in main"),
    }
}
