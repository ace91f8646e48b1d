//! A fresh database per test: a temporary SQLite file, or a fresh PostgreSQL schema in
//! the database named by `TESSERA_TEST_POSTGRES_URL`.
//!
//! Without that variable the Postgres leg is skipped with a message — unless `CI` is
//! set, where a missing Postgres fails the test: CI must never silently skip a backend.
//!
//! Shared by the API suite (`tests/api`) and the storage contract suite (`tests/storage`,
//! which includes this file with `#[path]`), so both run their tests per backend alike.

use sqlx::{Connection, Executor, PgConnection};
use std::time::{SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use url::Url;

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(fixture)`:
/// `sqlite::name` and `postgres::name`. Each calls `crate::helpers::run(backend, name)`,
/// which sets up the suite's fixture (the API suite: a server, `&TestApp`; the storage
/// suite: a connected store, `&TestStorage`) on a fresh database and drops it afterwards.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::run($crate::helpers::Backend::Sqlite, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::run($crate::helpers::Backend::Postgres, super::$name).await
                }
            )*
        }
    };
}

pub const POSTGRES_URL_VAR: &str = "TESSERA_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub enum TestDatabase {
    Sqlite { dir: TempDir, url: String },
    Postgres { admin_url: String, schema: String, url: String, dir: TempDir },
}

impl TestDatabase {
    /// `None` when the Postgres leg is not configured (and this is not CI).
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
                Some(Self::Sqlite { dir, url })
            }
            Backend::Postgres => {
                let admin_url = match std::env::var(POSTGRES_URL_VAR) {
                    Ok(url) if !url.is_empty() => url,
                    _ if std::env::var_os("CI").is_some() => {
                        panic!("{POSTGRES_URL_VAR} is not set in CI: the Postgres leg must run")
                    }
                    _ => {
                        eprintln!("skipping the Postgres leg: set {POSTGRES_URL_VAR} to run it");
                        return None;
                    }
                };
                remove_stale_schemas(&admin_url).await;
                let created = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                let schema = format!("tessera_test_{created}_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
                admin.execute(format!(r#"CREATE SCHEMA "{schema}""#).as_str()).await.expect("create schema");
                let mut url = Url::parse(&admin_url).expect("a postgres:// URL");
                url.query_pairs_mut().append_pair("options[search_path]", &schema);
                let dir = tempfile::tempdir().expect("temporary directory");
                Some(Self::Postgres { admin_url, schema, url: url.to_string(), dir })
            }
        }
    }

    /// The `database_url` setting for this database.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    /// A scratch directory that lives as long as the database (SQLite: beside the file).
    pub fn scratch_dir(&self) -> &std::path::Path {
        match self {
            Self::Sqlite { dir, .. } | Self::Postgres { dir, .. } => dir.path(),
        }
    }

    /// Drops the Postgres schema; the SQLite directory goes away on drop.
    pub async fn drop_database(self) {
        if let Self::Postgres { admin_url, schema, .. } = self {
            if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                let _ = admin.execute(format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#).as_str()).await;
            }
        }
    }
}

/// Schemas left behind by tests that panicked in an earlier run (over an hour old).
async fn remove_stale_schemas(admin_url: &str) {
    static ONCE: OnceCell<()> = OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let Ok(mut admin) = PgConnection::connect(admin_url).await else { return };
        let cutoff = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().saturating_sub(3600);
        let schemas: Vec<(String,)> =
            sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tessera_test_%'")
                .fetch_all(&mut admin)
                .await
                .unwrap_or_default();
        for (schema,) in schemas {
            let created = schema.split('_').nth(2).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
            if created < cutoff {
                let _ = admin.execute(format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#).as_str()).await;
            }
        }
    })
    .await;
}
