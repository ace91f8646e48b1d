//! Settings: `config/default.toml` (compiled in), then the file given with `--config`,
//! then `TESSERA_*` environment variables.
//!
//! Environment convention: `TESSERA_` + the setting's path in upper case, with `__`
//! between table and key. Top-level settings read as plain variables
//! (`TESSERA_ISSUER`, `TESSERA_BIND`, `TESSERA_DATABASE_URL`, `TESSERA_KEYS_DIR`,
//! `TESSERA_KEY_ENCRYPTION_KEY`); nested ones as e.g. `TESSERA_TOKENS__ACCESS_TOKEN_TTL`.
//! Every value is parsed into a typed setting once, here; an invalid or unknown one
//! stops startup with a message naming it.
//!
//! Each secret setting ([`SECRET_SETTINGS`]) can instead name a file holding it:
//! `<setting>_file` (`TESSERA_KEY_ENCRYPTION_KEY_FILE`, `TESSERA_DATABASE__PASSWORD_FILE`),
//! the way container platforms hand secrets over. [`effective`] tells where each value
//! came from, for `tessera config check`.

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Deserializer};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// The defaults, documented line by line. Compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variables with this prefix that are not settings (test harness knobs).
const NON_SETTING_ENV_PREFIXES: &[&str] = &["test_"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub issuer: Issuer,
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub keys_dir: PathBuf,
    /// Key-encryption key for the signing keys stored in the database. When unset, a
    /// key file in `keys_dir` is used (and generated on first start).
    #[serde(default)]
    pub key_encryption_key: Option<Secret>,
    /// Read into `key_encryption_key` by [`load`]; kept for `config check`.
    #[serde(default)]
    pub key_encryption_key_file: Option<PathBuf>,
    /// Read into `database_url` by [`load`].
    #[serde(default)]
    pub database_url_file: Option<PathBuf>,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub sessions: SessionSettings,
    pub refresh_tokens: RefreshTokenSettings,
    pub housekeeping: HousekeepingSettings,
    pub login: LoginSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub ssf: SsfSettings,
    pub par: ParSettings,
    pub device: DeviceSettings,
    pub private_key_jwt: PrivateKeyJwtSettings,
    pub backchannel_logout: BackchannelLogoutSettings,
    pub metrics: MetricsSettings,
    pub admin: AdminApiSettings,
    pub dpop: DpopSettings,
}

/// The Prometheus listener (`[metrics]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `/metrics` is served, on its own listener; `""` (the default) serves none.
    #[serde(deserialize_with = "optional_socket_addr")]
    pub bind: Option<SocketAddr>,
}

/// The admin API (`[admin]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminApiSettings {
    /// `"public"`, `"off"` or an address of its own (`admin.listen`).
    pub listen: AdminListen,
}

/// Where the admin API is served (`admin.listen`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminListen {
    /// On the public listener, below the issuer's path.
    Public,
    /// Nowhere.
    Off,
    /// On a listener of its own, at its root, and not on the public one.
    Own(SocketAddr),
}

impl<'de> Deserialize<'de> for AdminListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.trim() {
            "public" => Ok(Self::Public),
            "off" => Ok(Self::Off),
            address => address.parse().map(Self::Own).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{raw}` is neither \"public\", \"off\" nor an address and port such as 127.0.0.1:9091"
                ))
            }),
        }
    }
}

fn optional_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let raw = String::deserialize(d)?;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!("`{raw}` is not an address and port such as 127.0.0.1:9090 (\"\" for none)"))
    })
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    #[serde(deserialize_with = "count_within::<1, 1000, _, _>")]
    pub max_connections: u32,
    #[serde(deserialize_with = "lifetime_within::<MILLISECOND, { 5 * MINUTE }, _>")]
    pub acquire_timeout: Lifetime,
    #[serde(deserialize_with = "lifetime_within::<MILLISECOND, { 5 * MINUTE }, _>")]
    pub sqlite_busy_timeout: Lifetime,
    /// How long a client registration read from the database is reused (0: not at all).
    #[serde(deserialize_with = "window_within::<HOUR, _>")]
    pub client_cache_ttl: Window,
    /// The PostgreSQL password, when it is not in `database_url` (so that the URL can be
    /// configured in the open and the password as a secret file).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Read into `password` by [`load`].
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// RFC 9068 access-token lifetime (`exp - iat`).
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub access_token_ttl: Lifetime,
    /// OpenID Connect ID-token lifetime.
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub id_token_ttl: Lifetime,
    /// Authorization-code lifetime (RFC 6749 §4.1.2 recommends at most 10 minutes).
    #[serde(deserialize_with = "lifetime_within::<SECOND, { 10 * MINUTE }, _>")]
    pub authorization_code_ttl: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused for this long ends.
    #[serde(deserialize_with = "lifetime_within::<SECOND, YEAR, _>")]
    pub idle_timeout: Lifetime,
    /// A session ends this long after login, used or not.
    #[serde(deserialize_with = "lifetime_within::<SECOND, YEAR, _>")]
    pub absolute_timeout: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenSettings {
    /// A refresh token unused for this long expires (each rotation starts a new period).
    #[serde(deserialize_with = "lifetime_within::<SECOND, MAX_DURATION, _>")]
    pub idle_ttl: Lifetime,
    /// A token family ends this long after the original grant, however it was used.
    #[serde(deserialize_with = "lifetime_within::<SECOND, MAX_DURATION, _>")]
    pub absolute_ttl: Lifetime,
    /// After a rotation, presenting the old token again within this window returns the
    /// same successor (lost responses, racing tabs); 0 disables it.
    #[serde(deserialize_with = "window_within::<MINUTE, _>")]
    pub retry_window: Window,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSettings {
    /// How often expired rows are purged.
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub interval: Lifetime,
    /// Rows deleted per table per statement, so purges never hold long locks.
    #[serde(deserialize_with = "count_within::<1, 100_000, _, _>")]
    pub batch_size: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Failed logins per account (or per client IP × 4) within `failure_window` before lockout.
    #[serde(deserialize_with = "count_within::<1, 1000, _, _>")]
    pub max_failures: u32,
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub failure_window: Lifetime,
    /// First lockout; each further failure doubles it, up to `max_lockout`.
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub lockout: Lifetime,
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub max_lockout: Lifetime,
    /// Password checks (argon2id) admitted at once; 0 means two per core. One per core
    /// computes (19 MiB each), the others wait for a core. A login beyond it is answered
    /// 429 with `Retry-After` instead of queueing.
    #[serde(deserialize_with = "count_within::<0, 1024, _, _>")]
    pub max_concurrent_password_checks: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub rsa_bits: RsaBits,
    /// `max-age` of the JWKS response.
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub jwks_max_age: Lifetime,
    /// How long a key signs before the next one takes over.
    #[serde(deserialize_with = "lifetime_within::<SECOND, MAX_DURATION, _>")]
    pub rotation_period: Lifetime,
    /// Added to `jwks_max_age` before a new key may sign, and to token lifetimes before a
    /// retired key is unpublished. Must be at least `refresh_interval`.
    #[serde(deserialize_with = "lifetime_within::<SECOND, DAY, _>")]
    pub rotation_margin: Lifetime,
    /// How often each replica reloads the key set from the database and runs due steps.
    #[serde(deserialize_with = "lifetime_within::<SECOND, HOUR, _>")]
    pub refresh_interval: Lifetime,
    /// A PKCS#8 PEM RSA key imported as the first signing key instead of generating one.
    #[serde(default)]
    pub bootstrap_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Worker threads; 0 means one per core.
    #[serde(deserialize_with = "count_within::<0, 1024, _, _>")]
    pub workers: usize,
    /// Take the client IP (for login throttling) from `Forwarded` / `X-Forwarded-For`.
    /// Only behind a reverse proxy that sets them; otherwise clients could forge them.
    pub trust_forwarded_headers: bool,
    /// On SIGTERM, how long `/readyz` answers 503 while requests are still served, so that
    /// load balancers stop sending new ones before the listener closes (0: close at once).
    #[serde(deserialize_with = "window_within::<MINUTE, _>")]
    pub shutdown_delay: Window,
    /// Then, how long requests in flight may take to finish before they are cut off.
    #[serde(deserialize_with = "lifetime_within::<SECOND, { 10 * MINUTE }, _>")]
    pub shutdown_timeout: Lifetime,
}

/// The OpenID Shared Signals transmitter (`[ssf]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsfSettings {
    /// Record revocation events and serve the SSF endpoints (advertised in discovery).
    pub enabled: bool,
    /// Streams one receiver may have at once (each instance of a service has its own).
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_streams_per_receiver: u32,
    /// How long a long poll (RFC 8936 `returnImmediately: false`) waits for a SET.
    #[serde(deserialize_with = "lifetime_within::<SECOND, { 5 * MINUTE }, _>")]
    pub long_poll_timeout: Lifetime,
    /// SETs returned by one poll when the receiver sets no `maxEvents`.
    #[serde(deserialize_with = "count_within::<1, 1000, _, _>")]
    pub max_events_per_poll: u32,
    /// A poll stream whose receiver has not polled or managed it for this long is deleted.
    #[serde(deserialize_with = "lifetime_within::<MINUTE, YEAR, _>")]
    pub inactivity_timeout: Lifetime,
    /// The shortest time between two verification requests of one stream (SSF §8.1.4.2).
    #[serde(deserialize_with = "lifetime_within::<SECOND, HOUR, _>")]
    pub min_verification_interval: Lifetime,
    /// Push delivery (RFC 8935): the time one attempt may take.
    #[serde(deserialize_with = "lifetime_within::<SECOND, MINUTE, _>")]
    pub push_timeout: Lifetime,
    /// Push delivery: the longest wait between two attempts (the wait doubles from 1s).
    #[serde(deserialize_with = "lifetime_within::<SECOND, HOUR, _>")]
    pub push_max_backoff: Lifetime,
    /// Push endpoints on loopback addresses, over plain http too: development only.
    pub allow_loopback_push: bool,
    /// Push endpoints in private, shared or link-local address ranges (receivers inside the
    /// operator's own network). Off: a receiver cannot make Tessera reach internal hosts.
    pub allow_private_push: bool,
}

/// Pushed authorization requests, RFC 9126 (`[par]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParSettings {
    /// `require_pushed_authorization_requests` for every client (RFC 9126 §5).
    pub required: bool,
    /// How long a `request_uri` stays usable (§2.2 `expires_in`).
    #[serde(deserialize_with = "lifetime_within::<SECOND, { 10 * MINUTE }, _>")]
    pub lifetime: Lifetime,
    /// Unexpired pushed requests one client may have.
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_per_client: u32,
    /// Unexpired pushed requests of all clients together.
    #[serde(deserialize_with = "count_within::<1, 1_000_000, _, _>")]
    pub max_total: u32,
    /// Unexpired pushed requests one public client may have from one client IP (an IPv6
    /// /64): a stranger with the client's id fills this, not `max_per_client`.
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_per_ip: u32,
}

/// The device authorization grant, RFC 8628 (`[device]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    /// How long a device code and its user code stay usable (§3.2 `expires_in`).
    #[serde(deserialize_with = "lifetime_within::<{ 10 * SECOND }, HOUR, _>")]
    pub lifetime: Lifetime,
    /// The polling interval the device is told (§3.2 `interval`).
    #[serde(deserialize_with = "lifetime_within::<SECOND, MINUTE, _>")]
    pub interval: Lifetime,
    /// Unexpired device authorization requests one client may have.
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_per_client: u32,
    /// Unexpired device authorization requests of all clients together.
    #[serde(deserialize_with = "count_within::<1, 1_000_000, _, _>")]
    pub max_total: u32,
    /// Unexpired device authorization requests one public client may have from one client
    /// IP (an IPv6 /64): a stranger with the client's id fills this, not `max_per_client`.
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_per_ip: u32,
    /// Wrong user codes one account (across its SSO sessions) may enter within
    /// `login.failure_window` before the verification page locks it (§5.1); a client IP may
    /// enter four times as many.
    #[serde(deserialize_with = "count_within::<1, 100, _, _>")]
    pub max_user_code_failures: u32,
}

/// `private_key_jwt` client authentication (`[private_key_jwt]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateKeyJwtSettings {
    /// `jwks_uri` on loopback addresses, over plain http too: development only.
    pub allow_loopback_jwks_uri: bool,
    /// `jwks_uri` in private, shared or link-local address ranges.
    pub allow_private_jwks_uri: bool,
}

/// OpenID Connect Back-Channel Logout 1.0 delivery (`[backchannel_logout]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelLogoutSettings {
    /// The time one POST of a Logout Token may take (§2.5 leaves it to the OP).
    #[serde(deserialize_with = "lifetime_within::<SECOND, MINUTE, _>")]
    pub timeout: Lifetime,
    /// The longest wait between two attempts (the wait doubles from 1s).
    #[serde(deserialize_with = "lifetime_within::<SECOND, HOUR, _>")]
    pub max_backoff: Lifetime,
    /// After this long an undelivered Logout Token is given up (and purged).
    #[serde(deserialize_with = "lifetime_within::<MINUTE, { 7 * DAY }, _>")]
    pub give_up_after: Lifetime,
    /// Undelivered Logout Tokens kept per client; past it the oldest are dropped.
    #[serde(deserialize_with = "count_within::<1, 1_000_000, _, _>")]
    pub max_pending_per_client: u32,
    /// `backchannel_logout_uri` on loopback addresses, over plain http too: development only.
    pub allow_loopback_uri: bool,
    /// `backchannel_logout_uri` in private, shared or link-local address ranges.
    pub allow_private_uri: bool,
}

/// DPoP (RFC 9449) at the token endpoint and `/userinfo`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSettings {
    /// §8: token requests with a proof must carry a server nonce (`use_dpop_nonce` first).
    pub require_nonce: bool,
    /// §11.1: how far in the past a proof's `iat` may be; also how long its `jti` is
    /// remembered.
    #[serde(deserialize_with = "lifetime_within::<SECOND, { 5 * MINUTE }, _>")]
    pub proof_max_age: Lifetime,
    /// §8: a nonce is issued per period of this length and accepted during its own period
    /// and the next.
    #[serde(deserialize_with = "lifetime_within::<{ 10 * SECOND }, HOUR, _>")]
    pub nonce_lifetime: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// `tracing` filter directive, overridden by `RUST_LOG` when that is set.
    pub filter: String,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Loads the settings: defaults, then `config_file`, then the environment, then the
/// secret files that any of them named.
pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
    extract(sources(config_file)?)
}

/// The layered sources [`load`] reads, secret files resolved.
fn sources(config_file: Option<&Path>) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Defaults);
    if let Some(path) = config_file {
        if !path.is_file() {
            return Err(ConfigError(format!("config file {} does not exist (given with --config)", path.display())));
        }
        figment = figment.merge(Toml::file(path));
    }
    let env = Env::prefixed("TESSERA_")
        .split("__")
        // Keys keep their case here (lowercased later): compare without it.
        .filter(|key| !NON_SETTING_ENV_PREFIXES.iter().any(|p| key.as_str().to_ascii_lowercase().starts_with(p)));
    read_secret_files(figment.merge(env))
}

/// Extracts settings from any figment; used by `load` and by tests.
pub fn extract(figment: Figment) -> Result<Settings, ConfigError> {
    let mut settings: Settings = figment.extract().map_err(|error| {
        let messages: Vec<String> = error.into_iter().map(|e| describe(&e)).collect();
        ConfigError(messages.join("; "))
    })?;
    if let Some(password) = &settings.database.password {
        settings.database_url.set_password(password)?;
    }
    settings.check_consistency()?;
    Ok(settings)
}

/// `config/default.toml`, named "default" wherever a value's origin is told.
struct Defaults;

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named(DEFAULTS_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(DEFAULT_TOML).data()
    }
}

const DEFAULTS_NAME: &str = "default";

/// The settings that are secrets: never printed, and each also accepted from a file
/// named by `<setting>_file`.
pub const SECRET_SETTINGS: &[&str] = &["key_encryption_key", "database_url", "database.password"];

/// A secret file is a key, a URL or a password: anything longer is a wrong path.
const SECRET_FILE_MAX_BYTES: u64 = 64 * 1024;

/// Replaces each `<setting>_file` of [`SECRET_SETTINGS`] by the file's content as
/// `<setting>`. Giving both is refused: which one wins would be a guess.
fn read_secret_files(mut figment: Figment) -> Result<Figment, ConfigError> {
    for setting in SECRET_SETTINGS {
        let file_setting = format!("{setting}_file");
        if !figment.contains(&file_setting) {
            continue;
        }
        let path: PathBuf = figment.extract_inner(&file_setting).map_err(|e| ConfigError(describe(&e)))?;
        if let Some(direct) = figment.find_metadata(setting).filter(|m| m.name != DEFAULTS_NAME) {
            return Err(ConfigError(format!(
                "setting `{setting}` is given twice: directly (from {}) and as a file with `{file_setting}`; remove one",
                origin(direct, setting)
            )));
        }
        let value = read_secret_file(&path)
            .map_err(|why| ConfigError(format!("setting `{file_setting}`: cannot read {}: {why}", path.display())))?;
        figment = figment.merge(SecretFile { setting, path, value });
    }
    Ok(figment)
}

/// The file's text without its final line break (`echo secret > file` adds one).
fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(SECRET_FILE_MAX_BYTES + 1).read_to_string(&mut text).map_err(|e| e.to_string())?;
    if text.len() as u64 > SECRET_FILE_MAX_BYTES {
        return Err(format!("it is longer than {SECRET_FILE_MAX_BYTES} bytes"));
    }
    let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if value.is_empty() {
        return Err("it is empty".into());
    }
    Ok(value.to_owned())
}

/// One secret read from a file, as a source of its own so that `config check` names it.
struct SecretFile {
    setting: &'static str,
    path: PathBuf,
    value: String,
}

impl Provider for SecretFile {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("{}_file", self.setting)).source(Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut value = Value::from(self.value.clone());
        for key in self.setting.rsplit('.') {
            value = Value::from(Dict::from([(key.to_owned(), value)]));
        }
        let dict = value.into_dict().expect("built as a dictionary");
        Ok(Profile::Default.collect(dict))
    }
}

/// Where a value came from, as `config check` prints it and errors name it.
fn origin(metadata: &Metadata, setting: &str) -> String {
    match &metadata.source {
        _ if metadata.name == DEFAULTS_NAME => "default".to_owned(),
        Some(Source::File(path)) if metadata.name.ends_with("_file") => {
            format!("file {} (named by `{}`)", path.display(), metadata.name)
        }
        Some(Source::File(path)) => format!("file {}", path.display()),
        _ if metadata.name.contains("environment") => {
            format!("environment TESSERA_{}", setting.replace('.', "__").to_ascii_uppercase())
        }
        _ => metadata.name.to_string(),
    }
}

/// One setting as `config check` prints it.
#[derive(Debug)]
pub struct EffectiveSetting {
    /// `tokens.access_token_ttl`
    pub name: String,
    /// As configured, secrets replaced by `***` (a database URL keeps all but its secrets).
    pub value: String,
    /// `default`, `file PATH`, `environment TESSERA_…`, or the secret file it was read from.
    pub origin: String,
}

/// Loads and checks the settings like [`load`], and lists every configured value with
/// where it came from, secrets redacted.
pub fn effective(config_file: Option<&Path>) -> Result<(Settings, Vec<EffectiveSetting>), ConfigError> {
    let figment = sources(config_file)?;
    let settings = extract(figment.clone())?;
    Ok((settings, listing(&figment)))
}

/// Every leaf value of `figment` with its origin, secrets redacted, top-level settings
/// first and then by name.
fn listing(figment: &Figment) -> Vec<EffectiveSetting> {
    let root: Dict = figment.extract().unwrap_or_default();
    let mut listed = Vec::new();
    let mut pending: Vec<(String, Value)> = root.into_iter().collect();
    while let Some((name, value)) = pending.pop() {
        if let Value::Dict(_, dict) = value {
            pending.extend(dict.into_iter().map(|(key, value)| (format!("{name}.{key}"), value)));
            continue;
        }
        let shown = if name == "database_url" {
            value.as_str().map(redact_database_url).unwrap_or_default()
        } else if SECRET_SETTINGS.contains(&name.as_str()) {
            "***".to_owned()
        } else {
            serde_json::to_string(&value).unwrap_or_default()
        };
        let origin = figment.find_metadata(&name).map_or_else(|| "?".to_owned(), |m| origin(m, &name));
        listed.push(EffectiveSetting { name, value: shown, origin });
    }
    listed.sort_by(|a, b| (a.name.contains('.'), &a.name).cmp(&(b.name.contains('.'), &b.name)));
    listed
}

fn redact_database_url(raw: &str) -> String {
    if raw.starts_with("postgres") {
        format!("\"{}\"", redact(raw))
    } else {
        format!("\"{raw}\"")
    }
}

impl Settings {
    /// Rules between settings, which no single value can check.
    fn check_consistency(&self) -> Result<(), ConfigError> {
        if self.metrics.bind.is_some_and(|metrics| metrics.port() != 0 && metrics.port() == self.bind.port()) {
            return Err(ConfigError(
                "setting `metrics.bind` must be another port than `bind`: metrics are never served on the public listener"
                    .into(),
            ));
        }
        if let AdminListen::Own(admin) = self.admin.listen {
            let taken = [("bind", Some(self.bind)), ("metrics.bind", self.metrics.bind)];
            for (setting, other) in taken {
                if admin.port() != 0 && other.is_some_and(|other| other.port() == admin.port()) {
                    return Err(ConfigError(format!(
                        "setting `admin.listen` must be another port than `{setting}`: an admin listener of its \
                         own shares no port (or \"public\" to serve the admin API on the public listener)"
                    )));
                }
            }
        }
        let keys = &self.keys;
        if keys.rotation_margin.0 < keys.refresh_interval.0 {
            return Err(ConfigError(
                "setting `keys.rotation_margin` must be at least `keys.refresh_interval`, or a replica could sign \
                 with a key verifiers have not seen"
                    .into(),
            ));
        }
        let longest_token = self.tokens.access_token_ttl.0.max(self.tokens.id_token_ttl.0);
        // Each term is bounded at load time, so the sum fits; `checked_add` keeps a future
        // unbounded setting from turning into a panic here.
        let needed = keys.jwks_max_age.0.checked_add(keys.rotation_margin.0).and_then(|d| d.checked_add(longest_token));
        if needed.is_none_or(|needed| keys.rotation_period.0 <= needed) {
            return Err(ConfigError(
                "setting `keys.rotation_period` must exceed `keys.jwks_max_age` + `keys.rotation_margin` + the longest \
                 token lifetime"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// One figment error as "setting `x` (from source): problem".
fn describe(error: &figment::Error) -> String {
    let path = error.path.join(".");
    let key = if path.is_empty() { String::new() } else { format!("setting `{path}`") };
    let source = error.metadata.as_ref().map(|m| format!(" (from {})", origin(m, &path))).unwrap_or_default();
    let kind = error.kind.to_string();
    if key.is_empty() {
        format!("{kind}{source}")
    } else {
        format!("{key}{source}: {kind}")
    }
}

/// A configuration problem, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The issuer identifier (RFC 8414 §2; OpenID Connect Discovery 1.0 §3): an http(s) URL
/// with no query and no fragment. Stored without a trailing slash, because `iss` must
/// equal the configured issuer exactly and clients compare strings.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(format!("`{raw}` must be an http or https URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{raw}` must not have a query or fragment (RFC 8414 §2)"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{raw}` must not contain credentials"));
        }
        // Every route is mounted below the path and the pages link to it, so it is kept to
        // plain segments: nothing to percent-decode, nothing the router reads as a pattern
        // (`{id}`), no empty segment. A trailing slash is dropped (OIDC Discovery §4.1 removes
        // it before appending the well-known suffix, and `iss` is compared as a string).
        let path = url.path().trim_end_matches('/');
        let is_plain = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        if !path.is_empty() && !path[1..].split('/').all(is_plain) {
            return Err(format!(
                "`{raw}`: the path must be plain segments of letters, digits and `-._~`, without empty segments, e.g. `https://example.com/auth`"
            ));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// An endpoint below the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The issuer's path: `""` for `https://example.com`, `"/auth"` for
    /// `https://example.com/auth`. Every route is served below it.
    pub fn path(&self) -> &str {
        &self.0[self.origin().len()..]
    }

    /// Scheme, host and port: `https://example.com` for `https://example.com/auth`.
    pub fn origin(&self) -> &str {
        let after_scheme = self.0.find("://").map_or(0, |i| i + 3);
        self.0[after_scheme..].find('/').map_or(&self.0, |i| &self.0[..after_scheme + i])
    }

    /// A well-known URL the RFC 8414 §3.1 way: `/.well-known/{suffix}` inserted between the
    /// host and the issuer's path (`https://example.com/.well-known/{suffix}/auth`). The same
    /// as appending it when the issuer has no path.
    pub fn well_known(&self, suffix: &str) -> String {
        format!("{}/.well-known/{suffix}{}", self.origin(), self.path())
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issuer({})", self.0)
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Issuer::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// `sqlite://path` or `postgres://…`; the scheme is checked once, here.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite {
        options: SqliteConnectOptions,
        path: Option<PathBuf>,
    },
    /// `redacted` is the URL as printed; `secrets` are the values it hides, so that error
    /// text from the driver can be scrubbed of them too ([`DatabaseUrl::scrub`]).
    Postgres {
        options: PgConnectOptions,
        redacted: String,
        secrets: UrlSecrets,
    },
}

/// The secret values of a PostgreSQL URL (passwords, an inline key), each as written and
/// percent-decoded. Never printed.
#[derive(Clone, Default)]
pub struct UrlSecrets(Vec<String>);

impl fmt::Debug for UrlSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlSecrets(***)")
    }
}

/// The query parameters sqlx's PostgreSQL driver reads (sqlx-postgres 0.8,
/// `options/parse.rs`), besides `options[NAME]`. Any other is refused at load time:
/// sqlx would ignore it, and log it with its value.
const PG_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Query parameters whose values are secret: the password; the client key, which sqlx
/// also accepts inline as PEM; libpq's passphrase of the client key (refused, but
/// still hidden in the message that refuses it).
const SECRET_PG_PARAMETERS: &[&str] = &["password", "sslpassword", "sslkey", "ssl-key"];

fn is_secret_parameter(name: &str) -> bool {
    SECRET_PG_PARAMETERS.iter().any(|secret| secret.eq_ignore_ascii_case(name))
}

fn is_known_pg_parameter(name: &str) -> bool {
    PG_PARAMETERS.contains(&name) || (name.starts_with("options[") && name.ends_with(']'))
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(raw)
                .map_err(|e| format!("`{raw}` is not a valid SQLite URL ({e})"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL is durable against process crashes and much faster than FULL.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true);
            let path = sqlite_path(raw);
            Ok(Self::Sqlite { options, path })
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let invalid = |why: String| format!("`{}` is not a valid PostgreSQL URL: {why}", redact(raw));
            let url = Url::parse(raw).map_err(|e| {
                invalid(format!("{e} (percent-encode `@`, `:`, `/`, `?` and `#` in the user name and password)"))
            })?;
            if url.fragment().is_some() {
                return Err(invalid(
                    "it must not have a fragment (percent-encode a `#` in the password as %23)".into(),
                ));
            }
            if let Some((name, _)) = url.query_pairs().find(|(name, _)| !is_known_pg_parameter(name)) {
                // `postgres://u:12?secret@host/db` parses as host `u`, port 12 and a query.
                let is_misplaced_password = url.query().is_some_and(|query| query.contains('@'));
                return Err(invalid(unsupported_parameter(if is_misplaced_password { "" } else { &name })));
            }
            // sqlx's parse errors name the part that is wrong, never a value of the URL.
            let options = PgConnectOptions::from_str(raw).map_err(|e| invalid(e.to_string()))?;
            Ok(Self::Postgres { options, redacted: redact(raw), secrets: secrets_of(&url) })
        } else {
            Err(format!("`{}` must start with sqlite:// (embedded) or postgres:// (for several replicas)", redact(raw)))
        }
    }

    /// `text` (a driver's error message, say) with every secret of this URL replaced by
    /// `***`, so that no error chain can print one.
    pub fn scrub(&self, text: &str) -> String {
        let Self::Postgres { secrets, .. } = self else { return text.to_owned() };
        let mut secrets: Vec<&String> = secrets.0.iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len())); // a secret containing another goes first
        secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "***"))
    }

    /// `database.password`: the password to connect with, for a URL that has none.
    fn set_password(&mut self, password: &Secret) -> Result<(), ConfigError> {
        match self {
            // `redact` writes a password in the URL as `:***@`.
            Self::Postgres { redacted, .. } if redacted.contains(":***@") => Err(ConfigError(
                "setting `database.password` is given, and `database_url` has a password too; remove one".into(),
            )),
            Self::Postgres { options, secrets, .. } => {
                *options = options.clone().password(password.expose());
                secrets.0.push(password.expose().to_owned());
                Ok(())
            }
            Self::Sqlite { .. } => Err(ConfigError(
                "setting `database.password` applies to a postgres:// `database_url` only; remove it".into(),
            )),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// The file behind a `sqlite://` URL, if any (not for `sqlite::memory:`).
fn sqlite_path(raw: &str) -> Option<PathBuf> {
    let rest = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// Why a query parameter sqlx does not read is refused; names it only when it is a plain
/// name (a misplaced part of a password is not; `""` when it may be one).
fn unsupported_parameter(name: &str) -> String {
    let supported = PG_PARAMETERS.join(", ");
    if name == "sslpassword" {
        "the parameter `sslpassword` is not supported: the PostgreSQL driver cannot read an encrypted client key; \
         decrypt it (`openssl pkey -in client.key -out client-plain.key`), point `sslkey` at that file and remove \
         `sslpassword`"
            .to_owned()
    } else if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) {
        format!("the parameter `{name}` is not supported by the PostgreSQL driver, which would ignore it; remove it (supported: {supported}, options[NAME])")
    } else {
        format!("it has a query parameter that is not a name (percent-encode `?`, `&` and `#` in the password); supported: {supported}, options[NAME]")
    }
}

/// The values [`redact`] hides, as written and percent-decoded.
fn secrets_of(url: &Url) -> UrlSecrets {
    let mut secrets = Vec::new();
    if let Some(password) = url.password() {
        secrets.extend([password.to_owned(), percent_decode(password)]);
    }
    for pair in url.query().unwrap_or_default().split('&') {
        if let Some((name, value)) = pair.split_once('=') {
            if is_secret_parameter(&percent_decode(name)) {
                secrets.extend([value.to_owned(), percent_decode(&value.replace('+', " "))]);
            }
        }
    }
    secrets.dedup();
    UrlSecrets(secrets)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A database URL fit to print: the password, secret query parameters (`password`,
/// `sslpassword`, `sslkey`) and any fragment become `***`, and so does any parameter
/// that is not a plain name.
fn redact(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else { return "<unparseable URL>".to_owned() };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                if !is_known_pg_parameter(&name) && !is_secret_parameter(&name) {
                    ("***".to_owned(), "***".to_owned())
                } else if is_secret_parameter(&name) {
                    (name.into_owned(), "***".to_owned())
                } else {
                    (name.into_owned(), value.into_owned())
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path: Some(path), .. } => write!(f, "sqlite://{}", path.display()),
            Self::Sqlite { path: None, .. } => f.write_str("sqlite::memory:"),
            Self::Postgres { redacted, .. } => f.write_str(redacted),
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        DatabaseUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

// Bounds of the duration settings, in milliseconds (`deserialize_with` needs constants).
const MILLISECOND: u64 = 1;
const SECOND: u64 = 1000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// humantime's year, so that `"1y"` is exactly the bound.
const YEAR: u64 = 31_557_600 * SECOND;
/// No duration setting may exceed this: `now + d` then stays far inside chrono's range
/// (year 262143) and every sum of settings fits, so no request can panic on a setting.
const MAX_DURATION: u64 = 10 * YEAR;

/// A strictly positive duration of at most 10 years: whole seconds (`300`) or a
/// humantime string (`"5m"`, `"14d"`). Each setting narrows the range (`lifetime_within`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime(pub Duration);

impl Lifetime {
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::within(parse_duration_text(raw)?, MILLISECOND, MAX_DURATION)
    }

    /// `duration` if it is not zero and lies in `[min_ms, max_ms]`.
    fn within(duration: Duration, min_ms: u64, max_ms: u64) -> Result<Self, String> {
        if duration.is_zero() {
            return Err("must be greater than zero".to_owned());
        }
        check_range(duration, min_ms, max_ms).map(Self)
    }

    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }

    /// As a `chrono::Duration`, for arithmetic on timestamps. Lossless: every lifetime is
    /// bounded at load to 10 years, far inside chrono's range.
    pub fn chrono(&self) -> chrono::Duration {
        to_chrono(self.0)
    }
}

/// Converts a bounded duration setting; the `MAX` fallback is unreachable (see `MAX_DURATION`).
fn to_chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lifetime_within::<MILLISECOND, MAX_DURATION, D>(d)
    }
}

/// A duration that may be zero (a disabled window), at most 10 years: seconds or a
/// humantime string. Each setting narrows the range (`window_within`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Duration);

impl Window {
    /// As a `chrono::Duration` (lossless, as for [`Lifetime::chrono`]).
    pub fn chrono(&self) -> chrono::Duration {
        to_chrono(self.0)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        window_within::<MAX_DURATION, D>(d)
    }
}

/// `deserialize_with` for a [`Lifetime`] setting between `MIN_MS` and `MAX_MS`.
fn lifetime_within<'de, const MIN_MS: u64, const MAX_MS: u64, D: Deserializer<'de>>(
    d: D,
) -> Result<Lifetime, D::Error> {
    const { assert!(MIN_MS > 0 && MIN_MS <= MAX_MS && MAX_MS <= MAX_DURATION) };
    deserialize_duration(d)
        .and_then(|duration| Lifetime::within(duration, MIN_MS, MAX_MS))
        .map_err(serde::de::Error::custom)
}

/// `deserialize_with` for a [`Window`] setting between 0 and `MAX_MS`.
fn window_within<'de, const MAX_MS: u64, D: Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
    const { assert!(MAX_MS <= MAX_DURATION) };
    deserialize_duration(d)
        .and_then(|duration| check_range(duration, 0, MAX_MS))
        .map(Window)
        .map_err(serde::de::Error::custom)
}

/// `deserialize_with` for a whole-number setting between `MIN` and `MAX`.
fn count_within<'de, const MIN: u64, const MAX: u64, T: TryFrom<u64>, D: Deserializer<'de>>(
    d: D,
) -> Result<T, D::Error> {
    let value = u64::deserialize(d)?;
    if !(MIN..=MAX).contains(&value) {
        return Err(serde::de::Error::custom(format!("{value} is out of range: it must be between {MIN} and {MAX}")));
    }
    T::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is too large for this platform")))
}

/// Seconds (a non-negative integer) or a humantime string; no bounds yet.
fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(i64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|e| e.to_string())? {
        Raw::Seconds(s) if s < 0 => {
            Err(format!("{s} is negative; a duration is whole seconds (300) or a string like \"5m\""))
        }
        Raw::Seconds(s) => Ok(Duration::from_secs(s.unsigned_abs())),
        Raw::Text(text) => parse_duration_text(&text),
    }
}

fn parse_duration_text(raw: &str) -> Result<Duration, String> {
    match raw.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(raw.trim())
            .map_err(|e| format!("`{raw}` is not a duration like 300, \"5m\" or \"14d\" ({e})")),
    }
}

fn check_range(duration: Duration, min_ms: u64, max_ms: u64) -> Result<Duration, String> {
    let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(max_ms));
    if duration < min || duration > max {
        let show = |d: Duration| humantime::format_duration(d).to_string();
        return Err(format!(
            "{} is out of range: it must be between {} and {}",
            show(duration),
            if min_ms == 0 { "0".to_owned() } else { show(min) },
            show(max)
        ));
    }
    Ok(duration)
}

/// RSA modulus size for generated signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsaBits(pub usize);

impl<'de> Deserialize<'de> for RsaBits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            bits @ (2048 | 3072 | 4096) => Ok(Self(bits as usize)),
            other => Err(serde::de::Error::custom(format!("{other} is not supported; use 2048, 3072 or 4096"))),
        }
    }
}

/// A secret setting: never printed, not even in the error that refuses it.
#[derive(Clone)]
pub struct Secret(String);

/// Accepts text, and whole numbers and booleans as their text (figment reads an
/// environment variable such as `TESSERA_DATABASE__PASSWORD=123456` as a number). Every
/// error message is fixed: serde's own would quote the value.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret as text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(
                    "this secret reads as a decimal number and cannot be kept exactly; give it as a file (`_file`)",
                ))
            }
            fn visit_char<E: serde::de::Error>(self, v: char) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        d.deserialize_any(SecretVisitor).map_err(|_: D::Error| {
            serde::de::Error::custom(
                "must be text (a decimal-looking secret in the environment: give it as a file with `_file`)",
            )
        })
    }
}

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(overrides: &str) -> Result<Settings, ConfigError> {
        extract(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(overrides)))
    }

    #[test]
    fn defaults_are_valid() {
        let settings = with("").unwrap();
        assert_eq!(settings.issuer.as_str(), "http://127.0.0.1:8080");
        assert_eq!(settings.tokens.access_token_ttl, Lifetime(Duration::from_secs(300)));
        assert_eq!(settings.database_url.backend(), "sqlite");
        assert_eq!(settings.keys.rsa_bits, RsaBits(2048));
    }

    #[test]
    fn issuer_with_query_or_fragment_is_rejected_by_name() {
        for bad in ["https://a.example?x=1", "https://a.example#f", "ftp://a.example", "nope"] {
            let error = with(&format!("issuer = \"{bad}\"")).unwrap_err().to_string();
            assert!(error.contains("setting `issuer`"), "{error}");
        }
    }

    #[test]
    fn issuer_path_is_split_from_its_origin() {
        let root = Issuer::parse("https://id.example:8443").unwrap();
        assert_eq!((root.origin(), root.path()), ("https://id.example:8443", ""));
        assert_eq!(
            root.well_known("oauth-authorization-server"),
            "https://id.example:8443/.well-known/oauth-authorization-server"
        );
        let pathed = Issuer::parse("https://id.example/auth/").unwrap();
        assert_eq!((pathed.origin(), pathed.path()), ("https://id.example", "/auth"));
        assert_eq!(pathed.well_known("ssf-configuration"), "https://id.example/.well-known/ssf-configuration/auth");
        let deep = Issuer::parse("http://127.0.0.1:9/a/b.c").unwrap();
        assert_eq!((deep.origin(), deep.path()), ("http://127.0.0.1:9", "/a/b.c"));
    }

    #[test]
    fn issuer_path_with_odd_segments_is_rejected_by_name() {
        for bad in
            ["https://a.example/a//b", "https://a.example/%7Bid%7D", "https://a.example/a%2Fb", "https://a.example/a b"]
        {
            let error = with(&format!("issuer = \"{bad}\"")).unwrap_err().to_string();
            assert!(error.contains("setting `issuer`") && error.contains("plain segments"), "{bad}: {error}");
        }
    }

    #[test]
    fn issuer_trailing_slash_is_normalised() {
        assert_eq!(Issuer::parse("https://id.example/").unwrap().as_str(), "https://id.example");
        assert_eq!(Issuer::parse("https://id.example/t/").unwrap().as_str(), "https://id.example/t");
    }

    #[test]
    fn zero_lifetime_is_rejected_by_name() {
        let error = with("[tokens]\naccess_token_ttl = 0").unwrap_err().to_string();
        assert!(error.contains("tokens.access_token_ttl") && error.contains("greater than zero"), "{error}");
        let error = with("[tokens]\naccess_token_ttl = \"0s\"").unwrap_err().to_string();
        assert!(error.contains("tokens.access_token_ttl"), "{error}");
    }

    #[test]
    fn humantime_lifetimes_parse() {
        let settings = with("[tokens]\naccess_token_ttl = \"5m\"").unwrap();
        assert_eq!(settings.tokens.access_token_ttl.as_secs(), 300);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let error = with("issuerr = \"http://x\"").unwrap_err().to_string();
        assert!(error.contains("issuerr"), "{error}");
        let error = with("[tokens]\nttl = 5").unwrap_err().to_string();
        assert!(error.contains("ttl"), "{error}");
    }

    #[test]
    fn database_url_scheme_is_checked() {
        let error = with("database_url = \"mysql://x\"").unwrap_err().to_string();
        assert!(error.contains("setting `database_url`") && error.contains("sqlite://"), "{error}");
        let pg = with("database_url = \"postgres://u:hunter2@db/tessera\"").unwrap();
        assert_eq!(pg.database_url.backend(), "postgres");
        assert!(!format!("{:?}", pg.database_url).contains("hunter2"));
    }

    #[test]
    fn bad_bind_and_key_size_are_named() {
        let error = with("bind = \"localhost\"").unwrap_err().to_string();
        assert!(error.contains("setting `bind`"), "{error}");
        let error = with("[keys]\nrsa_bits = 1024").unwrap_err().to_string();
        assert!(error.contains("keys.rsa_bits"), "{error}");
    }

    #[test]
    fn the_admin_listener_is_public_off_or_its_own_port() {
        assert_eq!(with("").unwrap().admin.listen, AdminListen::Public);
        assert_eq!(with("[admin]\nlisten = \"off\"").unwrap().admin.listen, AdminListen::Off);
        let own = with("[admin]\nlisten = \"127.0.0.1:9091\"").unwrap().admin.listen;
        assert_eq!(own, AdminListen::Own("127.0.0.1:9091".parse().unwrap()));
        let error = with("[admin]\nlisten = \"everywhere\"").unwrap_err().to_string();
        assert!(error.contains("admin.listen") && error.contains("everywhere"), "{error}");
        let error = with("bind = \"0.0.0.0:8080\"\n[admin]\nlisten = \"127.0.0.1:8080\"").unwrap_err().to_string();
        assert!(error.contains("setting `admin.listen`"), "{error}");
        let error =
            with("[metrics]\nbind = \"127.0.0.1:9100\"\n[admin]\nlisten = \"127.0.0.1:9100\"").unwrap_err().to_string();
        assert!(error.contains("setting `admin.listen`"), "{error}");
        assert!(with("[admin]\nlisten = \"127.0.0.1:0\"").is_ok(), "port 0 picks a free port");
    }

    /// Every duration setting of config/default.toml; the test below checks this list
    /// against the file, so a new one cannot be left out.
    const DURATION_SETTINGS: &[&str] = &[
        "database.acquire_timeout",
        "database.sqlite_busy_timeout",
        "database.client_cache_ttl",
        "tokens.access_token_ttl",
        "tokens.id_token_ttl",
        "tokens.authorization_code_ttl",
        "sessions.idle_timeout",
        "sessions.absolute_timeout",
        "refresh_tokens.idle_ttl",
        "refresh_tokens.absolute_ttl",
        "refresh_tokens.retry_window",
        "housekeeping.interval",
        "login.failure_window",
        "login.lockout",
        "login.max_lockout",
        "keys.jwks_max_age",
        "keys.rotation_period",
        "keys.rotation_margin",
        "keys.refresh_interval",
        "ssf.long_poll_timeout",
        "ssf.inactivity_timeout",
        "ssf.min_verification_interval",
        "ssf.push_timeout",
        "ssf.push_max_backoff",
        "backchannel_logout.timeout",
        "backchannel_logout.max_backoff",
        "backchannel_logout.give_up_after",
        "par.lifetime",
        "device.lifetime",
        "device.interval",
        "dpop.proof_max_age",
        "dpop.nonce_lifetime",
        "http.shutdown_delay",
        "http.shutdown_timeout",
    ];
    /// Whole-number settings with their allowed range.
    const COUNT_SETTINGS: &[(&str, u64, u64)] = &[
        ("database.max_connections", 1, 1000),
        ("housekeeping.batch_size", 1, 100_000),
        ("login.max_failures", 1, 1000),
        ("login.max_concurrent_password_checks", 0, 1024),
        ("http.workers", 0, 1024),
        ("ssf.max_streams_per_receiver", 1, 10_000),
        ("ssf.max_events_per_poll", 1, 1000),
        ("par.max_per_client", 1, 10_000),
        ("par.max_total", 1, 1_000_000),
        ("backchannel_logout.max_pending_per_client", 1, 1_000_000),
        ("par.max_per_ip", 1, 10_000),
        ("device.max_per_client", 1, 10_000),
        ("device.max_total", 1, 1_000_000),
        ("device.max_per_ip", 1, 10_000),
        ("device.max_user_code_failures", 1, 100),
    ];
    const OTHER_SETTINGS: &[&str] = &[
        "issuer",
        "bind",
        "database_url",
        "keys_dir",
        "keys.rsa_bits",
        "http.trust_forwarded_headers",
        "log.format",
        "log.filter",
        "ssf.enabled",
        "ssf.allow_loopback_push",
        "ssf.allow_private_push",
        "par.required",
        "private_key_jwt.allow_loopback_jwks_uri",
        "private_key_jwt.allow_private_jwks_uri",
        "backchannel_logout.allow_loopback_uri",
        "backchannel_logout.allow_private_uri",
        "metrics.bind",
        "admin.listen",
        "dpop.require_nonce",
    ];

    /// TOML that sets the dotted `setting` to `value` (a TOML literal).
    fn setting(setting: &str, value: &str) -> String {
        match setting.split_once('.') {
            Some((table, key)) => format!("[{table}]\n{key} = {value}"),
            None => format!("{setting} = {value}"),
        }
    }

    fn default_setting_names() -> Vec<String> {
        let defaults: figment::value::Dict = Figment::from(Toml::string(DEFAULT_TOML)).extract().unwrap();
        let mut names = Vec::new();
        for (key, value) in defaults {
            match value {
                figment::value::Value::Dict(_, table) => names.extend(table.keys().map(|k| format!("{key}.{k}"))),
                _ => names.push(key),
            }
        }
        names
    }

    #[test]
    fn the_setting_lists_of_these_tests_cover_default_toml() {
        let mut listed: Vec<String> = DURATION_SETTINGS
            .iter()
            .chain(COUNT_SETTINGS.iter().map(|(name, _, _)| name))
            .chain(OTHER_SETTINGS)
            .map(|name| name.to_string())
            .collect();
        let mut defaults = default_setting_names();
        listed.sort();
        defaults.sort();
        assert_eq!(listed, defaults);
    }

    #[test]
    fn a_huge_value_of_any_duration_setting_is_refused_by_name() {
        for name in DURATION_SETTINGS {
            for huge in ["\"1000000y\"", "\"11y\"", "31557600000", "\"18446744073709551615\""] {
                let error = with(&setting(name, huge)).unwrap_err().to_string();
                assert!(error.contains(&format!("setting `{name}`")), "{name} = {huge}: {error}");
                assert!(error.contains("out of range: it must be between"), "{name} = {huge}: {error}");
            }
        }
    }

    #[test]
    fn every_duration_setting_accepts_its_upper_bound_and_refuses_one_second_more() {
        for name in DURATION_SETTINGS {
            let error = with(&setting(name, "\"1000000y\"")).unwrap_err().to_string();
            let max = error.rsplit(" and ").next().unwrap().split(';').next().unwrap().trim();
            let max = humantime::parse_duration(max).unwrap_or_else(|e| panic!("{name}: `{max}` ({e}): {error}"));
            assert!(max <= Duration::from_millis(MAX_DURATION), "{name}");
            // The rotation rule between key settings may refuse a legal value; test the bound alone.
            let accepted = |seconds: u64| match with(&setting(name, &seconds.to_string())) {
                Ok(_) => true,
                Err(e) => !e.to_string().contains(&format!("setting `{name}`")),
            };
            assert!(accepted(max.as_secs()), "{name} = {max:?} must be accepted");
            assert!(!accepted(max.as_secs() + 1), "{name} = {max:?} + 1s must be refused");
        }
    }

    #[test]
    fn tight_bounds_name_the_setting_and_the_range() {
        let error = with("[tokens]\naccess_token_ttl = \"2d\"").unwrap_err().to_string();
        assert!(error.contains("setting `tokens.access_token_ttl`"), "{error}");
        assert!(error.contains("2days is out of range: it must be between 1s and 1day"), "{error}");
        let error = with("[tokens]\nauthorization_code_ttl = \"1h\"").unwrap_err().to_string();
        assert!(error.contains("between 1s and 10m"), "{error}");
        let error = with("[refresh_tokens]\nretry_window = \"5m\"").unwrap_err().to_string();
        assert!(error.contains("refresh_tokens.retry_window") && error.contains("between 0 and 1m"), "{error}");
    }

    #[test]
    fn token_lifetimes_are_whole_seconds_but_timeouts_may_be_shorter() {
        let error = with("[tokens]\naccess_token_ttl = \"500ms\"").unwrap_err().to_string();
        assert!(error.contains("tokens.access_token_ttl") && error.contains("between 1s and"), "{error}");
        let settings = with("[database]\nacquire_timeout = \"500ms\"").unwrap();
        assert_eq!(settings.database.acquire_timeout.0, Duration::from_millis(500));
        let settings = with("[refresh_tokens]\nretry_window = 0").unwrap();
        assert_eq!(settings.refresh_tokens.retry_window.0, Duration::ZERO);
    }

    #[test]
    fn negative_durations_are_refused_by_name() {
        for name in DURATION_SETTINGS {
            let error = with(&setting(name, "-5")).unwrap_err().to_string();
            assert!(error.contains(&format!("setting `{name}`")), "{name}: {error}");
        }
    }

    #[test]
    fn whole_number_settings_are_bounded_by_name() {
        for (name, min, max) in COUNT_SETTINGS {
            let range = format!("it must be between {min} and {max}");
            let mut refused = vec![max + 1, u64::from(u32::MAX) + 1];
            if *min > 0 {
                refused.push(min - 1);
            }
            for value in refused {
                let error = with(&setting(name, &value.to_string())).unwrap_err().to_string();
                assert!(
                    error.contains(&format!("setting `{name}`")) && error.contains(&range),
                    "{name} = {value}: {error}"
                );
            }
            for value in [min, max] {
                with(&setting(name, &value.to_string())).unwrap_or_else(|e| panic!("{name} = {value}: {e}"));
            }
            let error = with(&setting(name, "-1")).unwrap_err().to_string();
            assert!(error.contains(&format!("setting `{name}`")), "{name} = -1: {error}");
        }
    }

    #[test]
    fn the_rotation_rule_cannot_overflow() {
        let mut settings = with("").unwrap();
        settings.keys.jwks_max_age = Lifetime(Duration::MAX);
        settings.keys.rotation_margin = Lifetime(Duration::MAX);
        let error = settings.check_consistency().unwrap_err().to_string();
        assert!(error.contains("keys.rotation_period"), "{error}");
    }

    #[test]
    fn a_postgres_password_in_the_query_is_redacted() {
        for raw in [
            "postgres://postgres@127.0.0.1:1/x?password=hunter2",
            "postgres://postgres@127.0.0.1:1/x?sslmode=prefer&password=hunter2&application_name=t",
            "postgres://postgres:hunter2@127.0.0.1:1/x?password=hunter2",
            "postgresql://postgres@127.0.0.1:1/x?password=hun%74er2",
            "postgres://postgres@127.0.0.1:1/x?sslkey=-----BEGIN%20PRIVATE%20KEY-----hunter2-----END%20PRIVATE%20KEY-----",
        ] {
            let url = DatabaseUrl::parse(raw).unwrap();
            for shown in [url.to_string(), format!("{url:?}")] {
                assert!(!shown.contains("hunter2") && !shown.contains("hun%74er2"), "{raw}: {shown}");
                assert!(shown.contains("127.0.0.1:1/x"), "{raw}: {shown}");
            }
        }
        let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/x?sslmode=prefer&password=hunter2").unwrap();
        assert_eq!(url.to_string(), "postgres://postgres@127.0.0.1:1/x?sslmode=prefer&password=***");
    }

    #[test]
    fn a_postgres_password_never_reaches_an_error_message() {
        for raw in [
            "postgres://postgres@127.0.0.1:1/x?password=hunter2&sslmode=nonsense",
            "postgres://postgres@127.0.0.1:1/x?password=hunter2&port=nonsense",
            "postgres://postgres@127.0.0.1:1/x?password=hunter2&sslpassword=hunter2",
            "postgres://postgres@127.0.0.1:1/x?password=hunter2&connect_timeout=10",
            "postgres://postgres:12#hunter2@127.0.0.1:1/x",
            "postgres://postgres:12?hunter2=@127.0.0.1:1/x",
        ] {
            let error = with(&format!("database_url = \"{raw}\"")).unwrap_err().to_string();
            assert!(error.contains("setting `database_url`"), "{raw}: {error}");
            assert!(!error.contains("hunter2"), "{raw}: {error}");
        }
    }

    #[test]
    fn unsupported_postgres_parameters_are_refused_by_name() {
        let error = DatabaseUrl::parse("postgres://db/x?connect_timeout=10").err().unwrap();
        assert!(error.contains("`connect_timeout` is not supported"), "{error}");
        let error = DatabaseUrl::parse("postgres://db/x?sslkey=k.pem&sslpassword=pass").err().unwrap();
        assert!(error.contains("`sslpassword` is not supported") && error.contains("openssl pkey"), "{error}");
        let url = DatabaseUrl::parse("postgres://db/x?options%5Bsearch_path%5D=s1&sslmode=disable").unwrap();
        assert_eq!(url.backend(), "postgres");
    }

    #[test]
    fn scrub_removes_every_secret_form_from_driver_text() {
        let url = DatabaseUrl::parse("postgres://u:p%40ss@db/x?password=hun%74er2").unwrap();
        let scrubbed = url.scrub("auth failed for p@ss / p%40ss / hunter2 / hun%74er2");
        assert_eq!(scrubbed, "auth failed for *** / *** / *** / ***");
        let sqlite = DatabaseUrl::parse("sqlite://data/t.db").unwrap();
        assert_eq!(sqlite.scrub("unchanged"), "unchanged");
    }

    #[test]
    fn secrets_do_not_print() {
        let figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Serialized::default("key_encryption_key", "super-secret-value"));
        let settings = extract(figment).unwrap();
        assert!(!format!("{settings:?}").contains("super-secret-value"));
    }

    fn secret_file(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    fn with_files(overrides: &[(&str, String)]) -> Result<Settings, ConfigError> {
        let figment = overrides
            .iter()
            .fold(Figment::from(Defaults), |figment, (key, value)| figment.merge(Serialized::default(key, value)));
        extract(read_secret_files(figment)?)
    }

    #[test]
    fn secrets_are_read_from_files_without_their_final_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let kek = secret_file(&dir, "kek", "a2V5LWVuY3J5cHRpb24ta2V5\n");
        let url = secret_file(&dir, "url", "postgres://tessera@db.internal/tessera\r\n");
        let password = secret_file(&dir, "password", "pa ss\n\n");
        let settings = with_files(&[
            ("key_encryption_key_file", kek),
            ("database_url_file", url),
            ("database.password_file", password),
        ])
        .unwrap();
        assert_eq!(settings.key_encryption_key.unwrap().expose(), "a2V5LWVuY3J5cHRpb24ta2V5");
        assert_eq!(settings.database_url.backend(), "postgres");
        // Only one line break goes: a password may end in whitespace.
        assert_eq!(settings.database_url.scrub("connecting with pa ss\n"), "connecting with ***");
    }

    #[test]
    fn a_secret_given_directly_and_as_a_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let kek = secret_file(&dir, "kek", "a2V5");
        let error = with_files(&[("key_encryption_key", "other".into()), ("key_encryption_key_file", kek)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("setting `key_encryption_key` is given twice"), "{error}");
        // The default database URL is not "given": its file replaces it.
        let url = secret_file(&dir, "url", "sqlite://elsewhere.db");
        assert!(with_files(&[("database_url_file", url)]).is_ok());
    }

    #[test]
    fn unreadable_empty_or_huge_secret_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let empty = secret_file(&dir, "empty", "\n");
        let huge = secret_file(&dir, "huge", &"x".repeat(64 * 1024 + 1));
        for (file, why) in [(empty, "it is empty"), (huge, "longer than"), ("/nonexistent/kek".into(), "No such file")]
        {
            let error = with_files(&[("key_encryption_key_file", file)]).unwrap_err().to_string();
            assert!(error.contains("setting `key_encryption_key_file`: cannot read") && error.contains(why), "{error}");
        }
    }

    #[test]
    fn the_database_password_setting_is_for_a_postgres_url_without_one() {
        let error = with_files(&[("database.password", "pw".into())]).unwrap_err().to_string();
        assert!(error.contains("applies to a postgres:// `database_url` only"), "{error}");
        let error = with_files(&[
            ("database_url", "postgres://u:inline@localhost/db".into()),
            ("database.password", "pw".into()),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("has a password too") && !error.contains("inline"), "{error}");
    }

    #[test]
    fn config_check_names_each_origin_and_hides_each_secret() {
        let figment = Figment::from(Defaults)
            .merge(Serialized::default("key_encryption_key", "super-secret-value"))
            .merge(Serialized::default("database_url", "postgres://u:hunter2@localhost/db"));
        let origins: std::collections::HashMap<String, (String, String)> =
            listing(&figment).into_iter().map(|s| (s.name, (s.value, s.origin))).collect();
        assert_eq!(origins["tokens.access_token_ttl"], ("300".to_owned(), "default".to_owned()));
        assert_eq!(origins["key_encryption_key"].0, "***");
        assert_eq!(origins["database_url"].0, "\"postgres://u:***@localhost/db\"");
        let everything = format!("{origins:?}");
        assert!(!everything.contains("super-secret-value") && !everything.contains("hunter2"));
    }

    #[test]
    fn a_numeric_secret_is_read_as_text_and_never_printed_in_an_error() {
        let settings =
            with_files(&[("database_url", "postgres://u@localhost/db".into()), ("database.password", "123456".into())])
                .unwrap();
        assert_eq!(settings.database_url.scrub("pw 123456"), "pw ***");
        let figment = Figment::from(Defaults)
            .merge(Serialized::default("database_url", "postgres://u@localhost/db"))
            .merge(Serialized::default("database.password", 123456))
            .merge(Serialized::default("key_encryption_key", 98765.4321));
        let error = extract(figment).unwrap_err().to_string();
        assert!(error.contains("setting `key_encryption_key`"), "{error}");
        assert!(!error.contains("98765") && !error.contains("123456"), "{error}");
    }
}
