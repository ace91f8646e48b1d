//! Test harness: the real server, in-process, on a random port, against a fresh database.
//! Helpers are grouped by flow (clients, tokens), not one function per route.

pub mod backchannel;
pub mod browser;
pub mod cli;
pub mod client_assertions;
pub mod clients;
pub mod dpop;
pub mod example_app;
pub mod logout;
pub mod node;
pub mod refresh;
pub mod signals;
pub mod sql;
pub mod test_app;
pub mod test_database;
pub mod tokens;

pub use test_app::{run, TestApp};
pub use test_database::{Backend, TestDatabase};

/// Like `backend_tests!` (in `test_database.rs`), for `async fn name(database: &TestDatabase)`
/// tests that start and stop servers themselves.
#[macro_export]
macro_rules! database_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::test_app::run_on_database($crate::helpers::Backend::Sqlite, super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::test_app::run_on_database($crate::helpers::Backend::Postgres, super::$name).await
                }
            )*
        }
    };
}

/// Like `backend_tests!`, with the issuer under `/auth` (`run_at`), as behind a reverse
/// proxy that serves Tessera at a path.
#[macro_export]
macro_rules! path_issuer_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::test_app::run_at($crate::helpers::Backend::Sqlite, "/auth", super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::helpers::test_app::run_at($crate::helpers::Backend::Postgres, "/auth", super::$name).await
                }
            )*
        }
    };
}

/// Asserts an RFC 6749 §5.2 error response: status, JSON `error`, and `no-store`.
pub async fn assert_oauth_error(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status for expected `{code}`");
    assert_eq!(
        response.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "error responses must not be cached"
    );
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "content type {content_type}");
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "body: {body}");
    assert!(body["error_description"].is_string(), "body: {body}");
    body
}
