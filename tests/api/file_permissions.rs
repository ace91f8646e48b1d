//! Finding 10 of the hardening issue: the SQLite database holds password hashes and
//! token digests, so it and its `-wal`/`-shm` files are readable by Tessera's own user
//! only, and a directory Tessera creates for them is 0700.
//!
//! SQLite only: a PostgreSQL database has no files of Tessera's. Unix only (modes).
#![cfg(unix)]

use crate::helpers::test_app::TestApp;
use crate::helpers::test_database::{Backend, TestDatabase};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera::config::DatabaseUrl;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// SQLite only (see the module comment): a running server's database, `-wal` and `-shm`
/// are 0600, and the directories it created for them 0700.
#[tokio::test]
async fn the_sqlite_database_and_its_wal_and_shm_files_are_private() {
    let database = TestDatabase::create(Backend::Sqlite).await.expect("SQLite is always available");
    let data = database.scratch_dir().join("data");
    let path = data.join("nested").join("tessera.db");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    let app = TestApp::spawn(&database, |settings| settings.database_url = url).await.expect("the server starts");
    // Startup wrote the migrations and the bootstrap key; the pools are still open, so
    // the -wal and -shm files exist.
    app.storage.ping().await.expect("the database answers");

    for file in [path.clone(), with_suffix(&path, "-wal"), with_suffix(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    assert_eq!(mode(&data.join("nested")), 0o700);
    app.stop().await;
}

/// SQLite only (see the module comment): a database left 0644 by an earlier version is
/// tightened to 0600 at startup, with a warning naming the file.
#[test]
fn an_existing_world_readable_sqlite_database_is_tightened_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let path = data.join("tessera.db"); // the default `database_url`, relative to the working directory
    for file in [path.clone(), with_suffix(&path, "-wal")] {
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        command.env_remove(name);
    }
    let output = command.current_dir(dir.path()).arg("migrate").output().expect("the tessera binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    assert_eq!(mode(&path), 0o600);
    assert!(stderr.contains("data/tessera.db") && stderr.contains("0600"), "a warning names the file: {stderr}");
    assert!(stderr.contains("data/tessera.db-wal"), "and the -wal file: {stderr}");
}
