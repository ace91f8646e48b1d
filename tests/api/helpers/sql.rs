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
