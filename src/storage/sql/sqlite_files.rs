//! The SQLite database file holds password hashes and token digests: only Tessera's own
//! user may read it. SQLite creates `-wal` and `-shm` with the permissions of the main
//! file (`robust_open` in its unix VFS), so creating the main file 0600 before sqlx
//! opens it covers all three.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Creates the directory (0700) and the empty database file (0600) at `path` unless they
/// exist; tightens an existing database, `-wal` or `-shm` file readable or writable by
/// group or others to 0600, with a warning naming it.
pub fn prepare(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_private_dir(dir).with_context(|| {
                format!(
                    "cannot create the directory {} for the SQLite database (setting `database_url`)",
                    dir.display()
                )
            })?;
        }
    }
    match create_private_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            for file in [path.to_owned(), sibling(path, "-wal"), sibling(path, "-shm")] {
                tighten(&file);
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

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// An empty file, which SQLite takes for an empty database.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else { return }; // -wal and -shm come and go
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{mode:04o}"),
            "the SQLite database file was open to other users; its mode is now 0600"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            %error,
            "the SQLite database file is open to other users and Tessera cannot change that: run `chmod 600` on it"
        ),
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path) {}
