//! `SqliteStore` on disk: the database, `-wal` and `-shm` files are 0600,
//! and re-encryption leaves no clear text in any of them.

use std::path::{Path, PathBuf};

use oauth2_adapters_core::store::TokenStore;
use oauth2_adapters_store_sql::SqliteStore;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::{contains, ClearTextHistory};
use crate::conformance::{key, record};
use crate::encryption::ring_a;

fn files(path: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

#[cfg(unix)]
mod modes {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    /// Sets the process's umask, and restores it when dropped.
    struct Umask(libc::mode_t);

    impl Umask {
        fn set(mask: libc::mode_t) -> Self {
            // SAFETY: `umask` has no preconditions and cannot fail.
            Self(unsafe { libc::umask(mask) })
        }
    }

    impl Drop for Umask {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { libc::umask(self.0) };
        }
    }

    /// With a umask that takes nothing off, a new database and its `-wal`
    /// and `-shm` files (there after a write) are 0600: exactly.
    #[tokio::test]
    async fn a_new_database_and_its_wal_and_shm_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        let store = {
            let _umask = Umask::set(0);
            let store = SqliteStore::open(&path).await.unwrap();
            store
                .compare_and_swap(&key("mode"), None, &record("a"))
                .await
                .unwrap();
            store
        };
        for file in files(&path) {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        store.pool().close().await;
    }

    /// Existing files that others may read are set to 0600 by `open`.
    #[tokio::test]
    async fn existing_loose_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            store
                .compare_and_swap(&key("loose"), None, &record("a"))
                .await
                .unwrap();
            // Still open (as by another process), so -wal and -shm stay.
            let _keep = SqliteStore::open(&path).await.unwrap();
            for file in files(&path) {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            let store = SqliteStore::open(&path).await.unwrap();
            for file in files(&path) {
                assert_eq!(mode(&file), 0o600, "{}", file.display());
            }
            store.pool().close().await;
        }
    }
}

/// Clear-text tokens, three versions each, and tokens since deleted, then
/// `reencrypt_all`: none of them is left anywhere in the database, `-wal`
/// or `-shm` file (while they were, before). They are written as the
/// previous version of this crate did, without `secure_delete`, so that the
/// deleted ones are left in free pages, which only `VACUUM` clears.
#[tokio::test]
async fn reencrypting_leaves_no_clear_text_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let without_secure_delete = SqlitePoolOptions::new()
        .connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    let plain = SqliteStore::from_pool(without_secure_delete).await.unwrap();
    let history = ClearTextHistory::write(&plain, 2).await;
    let deleted: Vec<_> = (0..40).map(|i| key(&format!("deleted-{i}"))).collect();
    for (i, key) in deleted.iter().enumerate() {
        let access = format!("{}-deleted-{i}-{}", history.marker, "p".repeat(300));
        plain
            .compare_and_swap(key, None, &record(&access))
            .await
            .unwrap();
    }
    for key in &deleted {
        plain.delete(key).await.unwrap();
    }
    let marker = history.marker.as_bytes();
    let found = |path: &Path| {
        files(path)
            .iter()
            .filter(|file| contains(&std::fs::read(file).unwrap_or_default(), marker))
            .count()
    };
    assert!(found(&path) > 0, "the test would find clear text");

    plain.pool().close().await;
    let store = store.with_encryption(ring_a());
    assert_eq!(store.reencrypt_all().await.unwrap(), 2);
    for file in files(&path) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !contains(&bytes, marker),
            "clear text in {}",
            file.display()
        );
    }
    history.check_readable(&store).await;
    let strict = store.clone().require_encryption();
    history.check_readable(&strict).await;
    // Running again (nothing to rewrite) purges again, and succeeds.
    assert_eq!(store.reencrypt_all().await.unwrap(), 0);
    store.purge_superseded_rows().await.unwrap();
    store.pool().close().await;
}
