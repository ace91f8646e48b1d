//! Raw SQL on the test database, for arranging rows in bulk and counting what the server
//! stored — things no endpoint shows. Both dialects are written out where they differ.

use super::TestApp;
use sqlx::Connection;
use tessera::config::DatabaseUrl;

impl TestApp {
    /// `SELECT COUNT(*) FROM table`.
    pub async fn count_rows(&self, table: &str) -> i64 {
        self.query_i64(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// The one integer that `sql`, written the same in both dialects, answers.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        match &self.settings.database_url {
            DatabaseUrl::Sqlite { options, .. } => {
                let mut connection = sqlx::SqliteConnection::connect_with(options).await.unwrap();
                sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut connection).await.unwrap()
            }
            DatabaseUrl::Postgres { options, .. } => {
                let mut connection = sqlx::PgConnection::connect_with(options).await.unwrap();
                sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut connection).await.unwrap()
            }
        }
    }

    /// Asserts that `table` counts public clients' rows under one digest per network of
    /// `networks` (as `ip_prefix` writes them), and that none is the plain SHA-256 of its
    /// network, which anyone holding the table could undo by trying every address.
    pub async fn assert_sources_keyed(&self, table: &str, networks: &[&str]) {
        let distinct = format!("SELECT COUNT(DISTINCT source_digest) FROM {table} WHERE source_digest IS NOT NULL");
        assert_eq!(self.query_i64(&distinct).await, networks.len() as i64, "one digest per network");
        for network in networks {
            let plain = tessera::domain::secret::SecretDigest::of(network);
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE source_digest = '{}'", plain.as_str());
            assert_eq!(self.query_i64(&sql).await, 0, "{network} is stored under an unkeyed digest");
        }
    }

    /// Runs `sqlite` or `postgres`, whichever the server uses.
    pub async fn execute_sql(&self, sqlite: &str, postgres: &str) {
        match &self.settings.database_url {
            DatabaseUrl::Sqlite { options, .. } => {
                let mut connection = sqlx::SqliteConnection::connect_with(options).await.unwrap();
                sqlx::query(sqlite).execute(&mut connection).await.unwrap();
            }
            DatabaseUrl::Postgres { options, .. } => {
                let mut connection = sqlx::PgConnection::connect_with(options).await.unwrap();
                sqlx::query(postgres).execute(&mut connection).await.unwrap();
            }
        }
    }
}
