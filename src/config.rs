//! Settings: `config/default.toml` (compiled in), then the file given with `--config`,
//! then `TESSERA_*` environment variables.
//!
//! Environment convention: `TESSERA_` + the setting's path in upper case, with `__`
//! between table and key. Top-level settings read as plain variables
//! (`TESSERA_ISSUER`, `TESSERA_BIND`, `TESSERA_DATABASE_URL`, `TESSERA_KEYS_DIR`,
//! `TESSERA_KEY_ENCRYPTION_KEY`); nested ones as e.g. `TESSERA_TOKENS__ACCESS_TOKEN_TTL`.
//! Every value is parsed into a typed setting once, here; an invalid or unknown one
//! stops startup with a message naming it.

use figment::providers::{Env, Format, Toml};
use figment::Figment;
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
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub sessions: SessionSettings,
    pub refresh_tokens: RefreshTokenSettings,
    pub housekeeping: HousekeepingSettings,
    pub login: LoginSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    pub acquire_timeout: Lifetime,
    pub sqlite_busy_timeout: Lifetime,
    /// How long a client registration read from the database is reused (0: not at all).
    pub client_cache_ttl: Window,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// RFC 9068 access-token lifetime (`exp - iat`).
    pub access_token_ttl: Lifetime,
    /// OpenID Connect ID-token lifetime.
    pub id_token_ttl: Lifetime,
    /// Authorization-code lifetime (RFC 6749 §4.1.2 recommends at most 10 minutes).
    pub authorization_code_ttl: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused for this long ends.
    pub idle_timeout: Lifetime,
    /// A session ends this long after login, used or not.
    pub absolute_timeout: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenSettings {
    /// A refresh token unused for this long expires (each rotation starts a new period).
    pub idle_ttl: Lifetime,
    /// A token family ends this long after the original grant, however it was used.
    pub absolute_ttl: Lifetime,
    /// After a rotation, presenting the old token again within this window returns the
    /// same successor (lost responses, racing tabs); 0 disables it.
    pub retry_window: Window,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingSettings {
    /// How often expired rows are purged.
    pub interval: Lifetime,
    /// Rows deleted per table per statement, so purges never hold long locks.
    pub batch_size: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    /// Failed logins per account (or per client IP × 4) within `failure_window` before lockout.
    pub max_failures: u32,
    pub failure_window: Lifetime,
    /// First lockout; each further failure doubles it, up to `max_lockout`.
    pub lockout: Lifetime,
    pub max_lockout: Lifetime,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub rsa_bits: RsaBits,
    /// `max-age` of the JWKS response.
    pub jwks_max_age: Lifetime,
    /// How long a key signs before the next one takes over.
    pub rotation_period: Lifetime,
    /// Added to `jwks_max_age` before a new key may sign, and to token lifetimes before a
    /// retired key is unpublished. Must be at least `refresh_interval`.
    pub rotation_margin: Lifetime,
    /// How often each replica reloads the key set from the database and runs due steps.
    pub refresh_interval: Lifetime,
    /// A PKCS#8 PEM RSA key imported as the first signing key instead of generating one.
    #[serde(default)]
    pub bootstrap_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Take the client IP (for login throttling) from `Forwarded` / `X-Forwarded-For`.
    /// Only behind a reverse proxy that sets them; otherwise clients could forge them.
    pub trust_forwarded_headers: bool,
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

/// Loads the settings: defaults, then `config_file`, then the environment.
pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
    let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
    if let Some(path) = config_file {
        if !path.is_file() {
            return Err(ConfigError(format!("config file {} does not exist (given with --config)", path.display())));
        }
        figment = figment.merge(Toml::file(path));
    }
    let env = Env::prefixed("TESSERA_")
        .split("__")
        .filter(|key| !NON_SETTING_ENV_PREFIXES.iter().any(|p| key.as_str().starts_with(p)));
    extract(figment.merge(env))
}

/// Extracts settings from any figment; used by `load` and by tests.
pub fn extract(figment: Figment) -> Result<Settings, ConfigError> {
    let settings: Settings = figment.extract().map_err(|error| {
        let messages: Vec<String> = error.into_iter().map(|e| describe(&e)).collect();
        ConfigError(messages.join("; "))
    })?;
    settings.check_consistency()?;
    Ok(settings)
}

impl Settings {
    /// Rules between settings, which no single value can check.
    fn check_consistency(&self) -> Result<(), ConfigError> {
        let keys = &self.keys;
        if keys.rotation_margin.0 < keys.refresh_interval.0 {
            return Err(ConfigError(
                "setting `keys.rotation_margin` must be at least `keys.refresh_interval`, or a replica could sign \
                 with a key verifiers have not seen"
                    .into(),
            ));
        }
        let longest_token = self.tokens.access_token_ttl.0.max(self.tokens.id_token_ttl.0);
        if keys.rotation_period.0 <= keys.jwks_max_age.0 + keys.rotation_margin.0 + longest_token {
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
    let key = if error.path.is_empty() { String::new() } else { format!("setting `{}`", error.path.join(".")) };
    let source = error
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(source) => format!(" (from {} {source})", m.name),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
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
    Sqlite { options: SqliteConnectOptions, path: Option<PathBuf> },
    Postgres { options: PgConnectOptions, redacted: String },
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
            let options = PgConnectOptions::from_str(raw)
                .map_err(|e| format!("`{}` is not a valid PostgreSQL URL ({e})", redact(raw)))?;
            Ok(Self::Postgres { options, redacted: redact(raw) })
        } else {
            Err(format!("`{}` must start with sqlite:// (embedded) or postgres:// (for several replicas)", redact(raw)))
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

/// Hides the password of a database URL.
fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
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

/// A strictly positive duration: whole seconds (`300`) or a humantime string (`"5m"`, `"14d"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime(pub Duration);

impl Lifetime {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let duration = match raw.trim().parse::<u64>() {
            Ok(seconds) => Duration::from_secs(seconds),
            Err(_) => humantime::parse_duration(raw.trim())
                .map_err(|e| format!("`{raw}` is not a duration like 300, \"5m\" or \"14d\" ({e})"))?,
        };
        Self::positive(duration)
    }

    fn positive(duration: Duration) -> Result<Self, String> {
        if duration.is_zero() {
            Err("must be greater than zero".to_owned())
        } else {
            Ok(Self(duration))
        }
    }

    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
}

impl<'de> Deserialize<'de> for Lifetime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) if s < 0 => Err("must be greater than zero".to_owned()),
            Raw::Seconds(s) => Lifetime::positive(Duration::from_secs(s as u64)),
            Raw::Text(text) => Lifetime::parse(&text),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// A duration that may be zero (a disabled window): seconds or a humantime string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window(pub Duration);

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(text) if text.trim() == "0" => Ok(Self(Duration::ZERO)),
            Raw::Text(text) => humantime::parse_duration(text.trim())
                .map(Self)
                .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration like 3 or \"3s\" ({e})"))),
        }
    }
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

/// A secret setting: never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

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
    fn secrets_do_not_print() {
        let figment = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Serialized::default("key_encryption_key", "super-secret-value"));
        let settings = extract(figment).unwrap();
        assert!(!format!("{settings:?}").contains("super-secret-value"));
    }
}
