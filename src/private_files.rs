//! Files that hold secrets — the key-encryption key file, the SQLite database with its
//! password hashes and digests — are readable by Tessera's own user only: directories
//! Tessera creates for them are 0700, the files 0600, and a file found open to group or
//! others is tightened with a warning naming it.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates `path`, 0600, for writing; fails with `AlreadyExists` rather than overwrite.
pub fn create_new(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes `path` 0600 when group or others may read or write it (copied in with the wrong
/// umask, say), with a warning naming it as `what`. A missing file is left alone.
#[cfg(unix)]
pub fn tighten(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else { return };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => tracing::warn!(
            path = %path.display(),
            was = format!("{mode:04o}"),
            "the {what} was open to other users; its mode is now 0600"
        ),
        Err(error) => tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            %error,
            "the {what} is open to other users and Tessera cannot change that: run `chmod 600` on it"
        ),
    }
}

#[cfg(not(unix))]
pub fn tighten(_path: &Path, _what: &str) {}
