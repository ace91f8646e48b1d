use super::test_database::{Backend, TestDatabase};
use figment::providers::{Format, Toml};
use figment::Figment;
use std::net::TcpListener;
use std::sync::{Arc, LazyLock};
use tessera::clock::ManualClock;
use tessera::config::{self, DatabaseUrl, Issuer, Settings};
use tessera::startup::Application;
use tessera::storage::{self, Storage};

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        tessera::telemetry::init(&tessera::config::LogSettings {
            format: tessera::config::LogFormat::Text,
            filter: "debug".into(),
        });
    }
});

pub struct TestApp {
    /// The issuer: `http://127.0.0.1:PORT`, or below a path (`http://127.0.0.1:PORT/auth`)
    /// for a server spawned with one ([`run_at`]). [`TestApp::url`] builds on it, so the
    /// helpers follow the path.
    pub address: String,
    /// `http://127.0.0.1:PORT`, without the issuer's path: for what is served at the root.
    pub origin: String,
    pub http: reqwest::Client,
    /// A second handle on the same database, for arranging test data.
    pub storage: Arc<dyn Storage>,
    pub settings: Settings,
    pub kid: String,
    /// The server's clock: tests move it forward instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// `http://127.0.0.1:PORT` of `/metrics`, when `metrics.bind` is set.
    pub metrics_address: Option<String>,
    /// `http://127.0.0.1:PORT` of the admin API's own listener, when `admin.listen` is one.
    pub admin_address: Option<String>,
    handle: tessera::startup::Stopper,
}

/// Runs one test body on `backend`, then tears the server and database down
/// (`backend_tests!`).
pub async fn run(backend: Backend, test: impl AsyncFnOnce(&TestApp)) {
    run_at(backend, "", test).await
}

/// Like [`run`], with the issuer under `path` (e.g. `/auth`), as behind a reverse proxy
/// that serves Tessera at `https://example.com/auth` (`path_issuer_tests!`).
pub async fn run_at(backend: Backend, path: &str, test: impl AsyncFnOnce(&TestApp)) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    let app = TestApp::spawn_with_path(test_settings(&database), path).await.expect("the server starts");
    test(&app).await;
    app.stop().await;
    database.drop_database().await;
}

/// Runs a test that manages its own servers on a fresh `backend` database.
pub async fn run_on_database(backend: Backend, test: impl AsyncFnOnce(&TestDatabase)) {
    let Some(database) = TestDatabase::create(backend).await else { return };
    test(&database).await;
    database.drop_database().await;
}

/// Settings for tests: defaults + config/test.toml, pointed at `database`.
pub fn test_settings(database: &TestDatabase) -> Settings {
    let root = env!("CARGO_MANIFEST_DIR");
    let figment =
        Figment::from(Toml::string(config::DEFAULT_TOML)).merge(Toml::file(format!("{root}/config/test.toml")));
    let mut settings = config::extract(figment).expect("test settings are valid");
    settings.database_url = DatabaseUrl::parse(database.url()).expect("test database URL");
    settings.keys.bootstrap_key_file = Some(format!("{root}/keys/test-signing-key.pem").into());
    settings.keys_dir = database.scratch_dir().join("keys");
    settings
}

impl TestApp {
    /// Starts the server on `database`; `customize` may change settings first.
    pub async fn spawn(database: &TestDatabase, customize: impl FnOnce(&mut Settings)) -> anyhow::Result<Self> {
        let mut settings = test_settings(database);
        customize(&mut settings);
        Self::spawn_with(settings).await
    }

    pub async fn spawn_with(settings: Settings) -> anyhow::Result<Self> {
        Self::spawn_with_path(settings, "").await
    }

    /// Starts the server with its issuer under `path` (`""` for the root).
    pub async fn spawn_with_path(mut settings: Settings, path: &str) -> anyhow::Result<Self> {
        LazyLock::force(&TRACING);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let origin = format!("http://{}", listener.local_addr()?);
        let address = format!("{origin}{path}");
        settings.issuer = Issuer::parse(&address).expect("issuer");
        let clock = Arc::new(ManualClock::default());
        let app = Application::with_clock(settings.clone(), listener, clock.clone()).await?;
        let handle = app.stopper();
        let kid = app.kid.clone();
        let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
        let admin_address = app.admin_port().map(|port| format!("http://127.0.0.1:{port}"));
        tokio::spawn(app.run_until_stopped()); // the socket already listens: no sleep needed
        let storage = storage::connect(&settings.database_url, &settings.database).await?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build()?;
        Ok(Self { address, origin, http, storage, settings, kid, clock, metrics_address, admin_address, handle })
    }

    /// The same server seen from another browser: its own cookie jar, shared with the
    /// caller so tests can read or plant cookies.
    pub fn other_browser(&self) -> (Self, Arc<reqwest::cookie::Jar>) {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .expect("a client");
        let browser = Self {
            address: self.address.clone(),
            origin: self.origin.clone(),
            http,
            storage: self.storage.clone(),
            settings: self.settings.clone(),
            kid: self.kid.clone(),
            clock: self.clock.clone(),
            metrics_address: self.metrics_address.clone(),
            admin_address: self.admin_address.clone(),
            handle: self.handle.clone(),
        };
        (browser, jar)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Moves the server's clock past `database.client_cache_ttl`, as if that long had
    /// passed: client registrations changed behind the server's back are then re-read.
    pub fn expire_client_cache(&self) {
        let ttl = chrono::Duration::from_std(self.settings.database.client_cache_ttl.0).unwrap();
        self.clock.advance(ttl + chrono::Duration::milliseconds(1));
    }

    /// A revocation now, recording its events as the server would (tests that change state
    /// straight in storage).
    pub fn revocation(&self, why: tessera::domain::signals::Reason) -> tessera::domain::signals::Revocation {
        tessera::signals::Emitter::from_settings(&self.settings).revocation(why, chrono::Utc::now())
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}
