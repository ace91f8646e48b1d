//! The SQLite database file holds password hashes and token digests: only Tessera's own
//! user may read it. SQLite creates `-wal` and `-shm` with the permissions of the main
//! file (`robust_open` in its unix VFS), so creating the main file 0600 before sqlx
//! opens it covers all three.

use crate::private_files;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Creates the directory (0700) and the empty database file (0600) at `path` unless they
/// exist; tightens an existing database, `-wal` or `-shm` file readable or writable by
/// group or others to 0600, with a warning naming it.
pub fn prepare(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            private_files::create_dir_all(dir).with_context(|| {
                format!(
                    "cannot create the directory {} for the SQLite database (setting `database_url`)",
                    dir.display()
                )
            })?;
        }
    }
    // An empty file, which SQLite takes for an empty database.
    match private_files::create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for file in [path.to_owned(), sibling(path, "-wal"), sibling(path, "-shm")] {
                private_files::tighten(&file, "SQLite database file");
            }
            Ok(())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot create the SQLite database {}: check the setting `database_url` (TESSERA_DATABASE_URL) and \
                 the directory's permissions",
                path.display()
            )
        }),
    }
}

/// `db` + `suffix`, as SQLite names its `-wal` and `-shm` files.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
