//! Composition root: storage, keys, token issuer and routes, wired once.

use crate::admin::api::{AdminSettings, ApiListener};
use crate::authorization::device::DevicePolicy;
use crate::authorization::pages;
use crate::authorization::signed_form::FormSigner;
use crate::authorization::FlowSettings;
use crate::clock::{Clock, SystemClock};
use crate::config::{AdminListen, Settings};
use crate::housekeeping;
use crate::http::readiness::Readiness;
use crate::http::request_log;
use crate::keys::kek::KekSource;
use crate::keys::refresher;
use crate::keys::rotation::RotationSchedule;
use crate::keys::SigningKeys;
use crate::login::LoginSettings;
use crate::metrics::Metrics;
use crate::oauth::client_assertion::AssertionChecker;
use crate::oauth::client_keys::{self, ClientKeys};
use crate::oauth::discovery::Discovery;
use crate::oauth::jwks::JwksMaxAge;
use crate::oauth::par::ParPolicy;
use crate::password::PasswordChecks;
use crate::signals::backchannel::LogoutDispatcher;
use crate::signals::push::Pusher;
use crate::ssf::Transmitter;
use crate::storage::client_cache::{ClientCache, KnownOrigins};
use crate::storage::{self, Storage};
use crate::tokens::dpop::DpopPolicy;
use crate::tokens::refresh::RefreshPolicy;
use crate::tokens::TokenIssuer;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header::STRICT_TRANSPORT_SECURITY;
use actix_web::middleware::{from_fn, Condition, DefaultHeaders};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;

pub struct Application {
    port: u16,
    server: Server,
    stopper: Stopper,
    /// Closed after the server has stopped, so that queued SQLite writes finish.
    storage: Arc<dyn Storage>,
    /// The `/metrics` listener's port, when `metrics.bind` is set.
    metrics_port: Option<u16>,
    /// The admin API's own listener's port, when `admin.listen` is an address.
    admin_port: Option<u16>,
    pub kid: String,
    pub kek_source: KekSource,
    /// Housekeeping and key refresh; stopped with the server.
    background: Vec<tokio::task::JoinHandle<()>>,
    /// The listeners of `/metrics` and of the admin API, when they have their own: waited
    /// for, not aborted, so that their requests in flight finish too.
    side_servers: Vec<tokio::task::JoinHandle<()>>,
}

/// `Strict-Transport-Security` on every response when the issuer is https (RFC 6797 §6.1):
/// a browser that once reached Tessera over TLS then refuses plain http to it for a year,
/// so a network attacker cannot strip TLS from a later login. Behind a TLS-terminating
/// proxy the header still reaches the browser over TLS; over plain http a browser ignores
/// it (§8.1), which is why an http issuer does not send it at all.
fn strict_transport_security() -> DefaultHeaders {
    DefaultHeaders::new().add((STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
}

/// Every route of the public listener. A new route module goes in here, so that it
/// follows the issuer's path like the others.
fn routes(cfg: &mut ServiceConfig, is_ssf_enabled: bool, admin: AdminListen) {
    crate::oauth::routes(cfg);
    crate::login::routes(cfg);
    if admin == AdminListen::Public {
        crate::admin::api::routes(cfg, ApiListener::Public);
    }
    if is_ssf_enabled {
        crate::ssf::routes(cfg);
    }
}

/// Mounts [`routes`] below the issuer's path (`base`, e.g. `/auth`; empty at the root).
/// A reverse proxy passes the path through unchanged, as with Keycloak's
/// `--http-relative-path`: the server sees `/auth/token`, and anything outside the path is
/// a 404, except what must live at the host's root: RFC 8414 §3.1's and SSF 1.0 §7.2's
/// well-known URLs (suffix inserted before the path) and the health checks.
fn mount(cfg: &mut ServiceConfig, base: &str, is_ssf_enabled: bool, admin: AdminListen) {
    if base.is_empty() {
        routes(cfg, is_ssf_enabled, admin);
    } else {
        cfg.service(web::scope(base).configure(|cfg| routes(cfg, is_ssf_enabled, admin)));
        crate::oauth::outside_the_path(cfg, base);
        if is_ssf_enabled {
            crate::ssf::outside_the_path(cfg, base);
        }
    }
}

impl Application {
    /// Binds `settings.bind` and builds the server.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {} (setting `bind`, TESSERA_BIND)", settings.bind))?;
        Self::with_listener(settings, listener).await
    }

    /// Tests pass their own listener so the issuer URL can include the real port.
    pub async fn with_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        Self::with_clock(settings, listener, Arc::new(SystemClock)).await
    }

    /// Tests also pass a clock they can move forward.
    pub async fn with_clock(settings: Settings, listener: TcpListener, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let storage: Arc<dyn Storage> = storage::connect(&settings.database_url, &settings.database).await?;
        let (keys, kek, kek_source) = SigningKeys::load_or_create(&*storage, &settings, clock.now()).await?;
        let keys = Arc::new(keys);
        let kek = Arc::new(kek);
        let flow_settings = Data::new(FlowSettings::from_settings(&settings));
        let forms = Data::new(FormSigner::new(&kek));
        let device = Data::new(DevicePolicy::new(&settings, &kek));
        let par = Data::new(ParPolicy::from_settings(&settings, &kek));
        let login_settings = Data::new(LoginSettings::from_settings(&settings));
        let password_checks = Data::new(PasswordChecks::new(settings.login.max_concurrent_password_checks));
        let refresh = Data::new(RefreshPolicy::from_settings(&settings, kek.clone()));
        let metrics = Arc::new(Metrics::new().with_route_base(settings.issuer.path()));
        let dpop = Data::new(DpopPolicy::new(&settings.dpop, &settings.issuer, &kek, clock.clone()));
        let housekeeping = housekeeping::spawn(
            storage.clone(),
            clock.clone(),
            &settings.housekeeping,
            settings.ssf.inactivity_timeout.chrono(),
            &settings.backchannel_logout,
            metrics.clone(),
        );
        let kid = keys.snapshot().current.kid.clone();
        let issuer = Data::new(TokenIssuer::new(
            settings.issuer.clone(),
            settings.tokens.access_token_ttl.chrono(),
            settings.tokens.id_token_ttl.chrono(),
            keys.clone(),
            clock.clone(),
        ));
        let transmitter = Data::new(Transmitter::new(&settings, keys.clone(), kek.clone()));
        let emitter = Data::new(transmitter.emitter.clone());
        let admin = Data::new(AdminSettings {
            kek: kek.clone(),
            schedule: RotationSchedule::from_settings(&settings),
            outbound: crate::admin::clients::UrlPolicies::from_settings(&settings),
            trust_forwarded_headers: settings.http.trust_forwarded_headers,
        });
        let mut background = vec![housekeeping];
        if settings.ssf.enabled {
            let pusher = Pusher {
                storage: storage.clone(),
                keys: keys.clone(),
                kek: kek.clone(),
                clock: clock.clone(),
                issuer: settings.issuer.as_str().to_owned(),
                timeout: settings.ssf.push_timeout.0,
                max_backoff: settings.ssf.push_max_backoff.chrono(),
                policy: transmitter.policy,
            };
            background.push(pusher.spawn().context("cannot start the Shared Signals push dispatcher")?);
        }
        let logouts = LogoutDispatcher {
            storage: storage.clone(),
            keys: keys.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            issuer: settings.issuer.as_str().to_owned(),
            timeout: settings.backchannel_logout.timeout.0,
            max_backoff: settings.backchannel_logout.max_backoff.chrono(),
            give_up_after: settings.backchannel_logout.give_up_after.chrono(),
            policy: crate::signals::backchannel::outbound_policy(&settings),
        };
        background.push(logouts.spawn().context("cannot start the Back-Channel Logout dispatcher")?);
        let is_ssf_enabled = settings.ssf.enabled;
        let stopping = transmitter.clone();
        let key_refresher = refresher::spawn(
            storage.clone(),
            keys,
            kek,
            RotationSchedule::from_settings(&settings),
            clock.clone(),
            settings.keys.refresh_interval.0,
        );
        background.push(key_refresher);
        let discovery = Data::new(Discovery::new(&settings.issuer, is_ssf_enabled, settings.par.required));
        let assertions = Data::new(AssertionChecker {
            issuer: settings.issuer.clone(),
            keys: ClientKeys::new(client_keys::outbound_policy(&settings))
                .context("cannot build the HTTP client that fetches clients' jwks_uri")?,
            storage: storage.clone(),
            clock: clock.clone(),
        });
        let jwks_max_age = Data::new(JwksMaxAge(settings.keys.jwks_max_age.as_secs().min(u32::MAX as u64) as u32));
        let clients = Data::new(ClientCache::new(storage.clone(), clock.clone(), settings.database.client_cache_ttl.0));
        let known_origins = Data::new(KnownOrigins::new(storage.clone()));
        let to_close = storage.clone();
        let storage = Data::from(storage);
        let clock: Data<dyn Clock> = Data::from(clock);
        let readiness = Data::new(Readiness::default());
        let readiness_flag = readiness.clone();
        let metrics = Data::from(metrics);
        let metrics_scraped = metrics.clone();
        let password_checks_seen = password_checks.clone();
        let port = listener.local_addr()?.port();
        let is_https = settings.issuer.is_https();
        let base_path = settings.issuer.path().to_owned();
        let admin_listen = settings.admin.listen;
        // What every handler may extract, on the public listener and the admin API's own.
        let shared = move |cfg: &mut ServiceConfig| {
            cfg.app_data(storage.clone())
                .app_data(clients.clone())
                .app_data(known_origins.clone())
                .app_data(readiness.clone())
                .app_data(metrics.clone())
                .app_data(issuer.clone())
                .app_data(discovery.clone())
                .app_data(par.clone())
                .app_data(device.clone())
                .app_data(assertions.clone())
                .app_data(jwks_max_age.clone())
                .app_data(flow_settings.clone())
                .app_data(forms.clone())
                .app_data(login_settings.clone())
                .app_data(password_checks.clone())
                .app_data(refresh.clone())
                .app_data(dpop.clone())
                .app_data(clock.clone())
                .app_data(transmitter.clone())
                .app_data(emitter.clone())
                .app_data(admin.clone());
        };
        let shared_with_admin = shared.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                // Innermost (registered first): the page it renders again then still gets
                // the headers of the middleware outside it.
                .wrap(Condition::new(!base_path.is_empty(), from_fn(pages::rebase_error_pages)))
                .wrap(Condition::new(is_https, strict_transport_security()))
                .wrap(from_fn(request_log::log_request))
                .configure(shared.clone())
                .configure(|cfg| mount(cfg, &base_path, is_ssf_enabled, admin_listen))
        });
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        // Signals are handled here (`run_until_stopped`): the drain comes first.
        let server =
            server.disable_signals().shutdown_timeout(settings.http.shutdown_timeout.as_secs()).listen(listener)?.run();
        let (metrics_server, metrics_port) = match settings.metrics.bind {
            Some(bind) => {
                let scrape = Scrape {
                    metrics: metrics_scraped,
                    storage: to_close.clone(),
                    schedule: RotationSchedule::from_settings(&settings),
                    password_checks: password_checks_seen,
                    is_ssf_enabled,
                    logouts_give_up_after: settings.backchannel_logout.give_up_after.chrono(),
                };
                let (server, port) = scrape.serve(bind, settings.http.shutdown_timeout.0)?;
                (Some(server), Some(port))
            }
            None => (None, None),
        };
        let (admin_server, admin_port) = match admin_listen {
            AdminListen::Own(bind) => {
                let (server, port) = serve_admin(bind, settings.http.shutdown_timeout.0, shared_with_admin)?;
                (Some(server), Some(port))
            }
            AdminListen::Public | AdminListen::Off => (None, None),
        };
        let stopper = Stopper {
            others: [&metrics_server, &admin_server].into_iter().flatten().map(Server::handle).collect(),
            handle: server.handle(),
            transmitter: stopping,
            readiness: readiness_flag,
            shutdown_delay: settings.http.shutdown_delay.0,
        };
        let mut side_servers = Vec::new();
        for (other, name) in [(metrics_server, "metrics"), (admin_server, "admin API")] {
            if let Some(other) = other {
                side_servers.push(tokio::spawn(async move {
                    if let Err(error) = other.await {
                        tracing::error!(error = %error, "the {name} listener failed");
                    }
                }));
            }
        }
        Ok(Self {
            port,
            server,
            stopper,
            storage: to_close,
            metrics_port,
            admin_port,
            kid,
            kek_source,
            background,
            side_servers,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The port of the admin API's own listener, when `admin.listen` is an address.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// Stops the server from elsewhere (tests).
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Serves until stopped: by a [`Stopper`], or by a signal as actix-web would (SIGTERM
    /// gracefully, after `http.shutdown_delay` of draining; SIGINT and SIGQUIT at once).
    /// Then the background tasks end and the database connections close.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper.clone();
        let signals = tokio::spawn(async move {
            let graceful = next_stop_signal().await;
            tracing::info!(event = "server_stopping", graceful, "stopping on a signal");
            if graceful {
                stopper.drain().await;
            }
            stopper.stop(graceful).await;
        });
        let result = self.server.await;
        signals.abort();
        // Stopped with the public listener by the stopper (a stop already under way ends
        // as it began), or now, gracefully, when the public listener ended by itself; an
        // admin call in flight finishes before the database closes.
        futures_util::future::join_all(self.stopper.others.iter().map(|other| other.stop(true))).await;
        for side in self.side_servers {
            let _ = side.await;
        }
        for task in &self.background {
            task.abort();
        }
        self.storage.close().await;
        tracing::info!(event = "server_stopped", "stopped");
        result
    }
}

/// Stops the server: waiting Shared Signals long polls answer first (they would otherwise
/// hold a graceful stop for up to `ssf.long_poll_timeout`), then actix-web stops accepting
/// and, when graceful, lets requests in flight finish.
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    /// The listeners of `/metrics` and of the admin API, when they have their own.
    others: Vec<ServerHandle>,
    transmitter: Data<Transmitter>,
    readiness: Data<Readiness>,
    shutdown_delay: std::time::Duration,
}

impl Stopper {
    /// The first step of a graceful stop: `/readyz` answers 503 and waiting long polls
    /// answer, while requests are still served for `http.shutdown_delay`.
    pub async fn drain(&self) {
        self.readiness.drain();
        self.transmitter.stop_waiting();
        tokio::time::sleep(self.shutdown_delay).await;
    }

    /// Stops accepting on every listener at once; when `graceful`, requests in flight get
    /// `http.shutdown_timeout` (the public listener's and the admin API's alike).
    pub async fn stop(&self, graceful: bool) {
        self.transmitter.stop_waiting();
        let listeners = std::iter::once(&self.handle).chain(&self.others);
        futures_util::future::join_all(listeners.map(|listener| listener.stop(graceful))).await;
    }
}

/// A listener of its own for what the public one must not serve (`/metrics`; the admin
/// API when `admin.listen` is an address), with the routes `routes` configures: one
/// worker, no signals of its own (the [`Stopper`] stops it with the public listener), and
/// `shutdown_timeout` for the requests in flight at a graceful stop, as on the public
/// listener. `what` and `setting` say what it is for and what to fix when `bind` cannot be
/// listened on.
fn side_listener(
    bind: std::net::SocketAddr,
    what: &str,
    setting: &str,
    log_requests: bool,
    shutdown_timeout: std::time::Duration,
    routes: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
) -> anyhow::Result<(Server, u16)> {
    let listener =
        TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind} for {what} (setting `{setting}`)"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new().wrap(Condition::new(log_requests, from_fn(request_log::log_request))).configure(routes.clone())
    })
    .workers(1)
    .shutdown_timeout(shutdown_timeout.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, port))
}

/// The admin API on a listener of its own (`admin.listen` an address), at its root: not
/// below the issuer's path, which is the public URL's, and without the public listener's
/// pages. One worker: admin calls are few, and each waits on the database, not the CPU
/// (a password it sets is hashed off the workers). Its health checks are there too, as
/// on Hydra's admin port, for a probe that reaches only the private network.
fn serve_admin(
    bind: std::net::SocketAddr,
    shutdown_timeout: std::time::Duration,
    shared: impl Fn(&mut ServiceConfig) + Clone + Send + 'static,
) -> anyhow::Result<(Server, u16)> {
    side_listener(bind, "the admin API", "admin.listen", true, shutdown_timeout, move |cfg| {
        shared(cfg);
        crate::admin::api::routes(cfg, ApiListener::Own);
        cfg.route("/healthz", web::get().to(crate::oauth::health::healthz))
            .route("/readyz", web::get().to(crate::oauth::health::readyz));
    })
}

/// What `/metrics` reads when scraped, besides the counters: the state gauges.
struct Scrape {
    metrics: Data<Metrics>,
    storage: Arc<dyn Storage>,
    schedule: RotationSchedule,
    password_checks: Data<PasswordChecks>,
    is_ssf_enabled: bool,
    /// `backchannel_logout.give_up_after`: older Logout Tokens are not counted as owed.
    logouts_give_up_after: chrono::Duration,
}

impl Scrape {
    /// On a listener of its own ([`side_listener`]): a scrape is cheap, and the public
    /// workers never wait for one. Requests are not logged, as before.
    fn serve(self, bind: std::net::SocketAddr, shutdown_timeout: std::time::Duration) -> anyhow::Result<(Server, u16)> {
        let scrape = Data::new(self);
        side_listener(bind, "metrics", "metrics.bind", false, shutdown_timeout, move |cfg| {
            cfg.app_data(scrape.clone()).route("/metrics", web::get().to(Scrape::handle));
        })
    }

    async fn handle(scrape: Data<Scrape>) -> actix_web::HttpResponse {
        scrape.read_state().await;
        actix_web::HttpResponse::Ok().content_type(crate::metrics::CONTENT_TYPE).body(scrape.metrics.render())
    }

    async fn read_state(&self) {
        let metrics = &self.metrics;
        let pool = self.storage.pool_state();
        // Read apart, so `open` may lag a connection behind: never below zero.
        let (idle, kept) = (pool.idle as i64, pool.kept as i64);
        metrics.db_connections.with_label_values(&["idle"]).set(idle);
        metrics.db_connections.with_label_values(&["kept"]).set(kept);
        metrics.db_connections.with_label_values(&["in_use"]).set((i64::from(pool.open) - idle - kept).max(0));
        if let Some(queued) = pool.writes_queued {
            metrics.db_writes_queued.set(queued as i64);
        }
        metrics.password_checks_in_flight.set(self.password_checks.in_flight() as i64);
        let now = chrono::Utc::now();
        let seconds = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
        match self
            .storage
            .list_signing_keys()
            .await
            .map(|keys| crate::keys::rotation::schedule_state(&keys, &self.schedule))
        {
            Ok(Some((since, next_step))) => {
                metrics.signing_key_age.set(seconds(now - since));
                metrics.next_rotation_step.set(seconds(next_step - now).max(0.0));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = %error, "metrics: cannot read the signing keys"),
        }
        match self.storage.logout_stats(now - self.logouts_give_up_after).await {
            Ok(stats) => {
                metrics.backchannel_logout_backlog.set(stats.backlog);
                let lag = stats.oldest_owed.map_or(0.0, |at| seconds(now - at).max(0.0));
                metrics.backchannel_logout_oldest_undelivered.set(lag);
            }
            Err(error) => tracing::warn!(error = %error, "metrics: cannot read the back-channel logout outbox"),
        }
        if self.is_ssf_enabled {
            match self.storage.signal_stats().await {
                Ok(stats) => {
                    metrics.ssf_streams.reset();
                    for (status, count) in stats.streams {
                        metrics.ssf_streams.with_label_values(&[&status]).set(count);
                    }
                    metrics.ssf_backlog.set(stats.backlog);
                    metrics.ssf_oldest_undelivered.set(stats.oldest_owed.map_or(0.0, |at| seconds(now - at).max(0.0)));
                }
                Err(error) => tracing::warn!(error = %error, "metrics: cannot read the Shared Signals counts"),
            }
        }
    }
}

/// Waits for SIGTERM (true: graceful), SIGINT or SIGQUIT (false), actix-web's meanings.
#[cfg(unix)]
async fn next_stop_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::quit()))
    else {
        tracing::error!("cannot listen for stop signals");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => false,
        _ = quit.recv() => false,
    }
}

#[cfg(not(unix))]
async fn next_stop_signal() -> bool {
    let _ = tokio::signal::ctrl_c().await;
    false
}
