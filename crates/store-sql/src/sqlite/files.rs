//! The database file's permissions: only its owner may read or write it.
//!
//! SQLite creates a new database file with mode 0644 (less the umask), and
//! its `-wal` and `-shm` files with the database file's mode. So the store
//! creates the file itself, with mode 0600, before SQLite opens it; the
//! `-wal` and `-shm` files follow. A file that exists already, or its
//! `-wal` and `-shm` files, readable or writable by others, is tightened to
//! 0600 when this process owns it, and otherwise logged (its path and mode
//! only).

use std::path::{Path, PathBuf};

use oauth2_adapters_core::{Error, Result};

/// The mode of the database file and its `-wal` and `-shm` files.
#[cfg(unix)]
pub(super) const MODE: u32 = 0o600;

/// Creates the database file at `path` with mode 0600 if it is missing,
/// and tightens the modes of the database, `-wal` and `-shm` files. Names
/// SQLite does not take for a file (`:memory:`, `file:` URIs) are left to it.
#[cfg(unix)]
pub(super) fn secure(path: &Path) -> Result<()> {
    use std::fs::{OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let name = path.as_os_str().as_encoded_bytes();
    if name.is_empty() || name == b":memory:" || name.starts_with(b"file:") {
        return Ok(());
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .open(path)
    {
        // The umask may have taken bits off: set the mode exactly.
        Ok(file) => file
            .set_permissions(Permissions::from_mode(MODE))
            .map_err(|err| Error::store("setting the mode of the new SQLite database file", err))?,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => return Err(Error::store("creating the SQLite database file", err)),
    }
    for file in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        tighten(&file);
    }
    Ok(())
}

/// Without Unix modes, there is nothing to set.
#[cfg(not(unix))]
pub(super) fn secure(_path: &Path) -> Result<()> {
    Ok(())
}

/// `path` with `suffix` appended to its file name (`tokens.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Sets `file`'s mode to 0600 if others may read or write it and this
/// process owns it; warns if it does not, or if that fails.
#[cfg(unix)]
fn tighten(file: &Path) {
    use std::fs::Permissions;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let Ok(metadata) = std::fs::metadata(file) else {
        return; // No such file (yet): nothing to tighten.
    };
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let owner = metadata.uid() == unsafe { libc::geteuid() };
    let outcome = if owner {
        std::fs::set_permissions(file, Permissions::from_mode(MODE))
    } else {
        Err(std::io::ErrorKind::PermissionDenied.into())
    };
    if let Err(err) = outcome {
        tracing::warn!(
            path = %file.display(),
            mode = %format_args!("{mode:o}"),
            owned = owner,
            error = %err,
            "the SQLite token database file is readable or writable by other users, \
             and its mode could not be set to 600"
        );
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_is_0600_and_existing_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        secure(&path).unwrap();
        assert_eq!(mode(&path), MODE);

        let wal = sibling(&path, "-wal");
        assert_eq!(wal, dir.path().join("tokens.db-wal"));
        for (file, loose) in [(&path, 0o644), (&wal, 0o666)] {
            std::fs::write(file, b"").unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(loose)).unwrap();
        }
        secure(&path).unwrap();
        assert_eq!((mode(&path), mode(&wal)), (MODE, MODE));
        // Stricter modes are left alone.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        secure(&path).unwrap();
        assert_eq!(mode(&path), 0o400);
    }
}
