//! What the tests that leave the process need: PostgreSQL and the example
//! binary used as a worker process.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oauth2_adapters::store_sql::PostgresStore;

/// True under CI, where a missing dependency must fail a test, not skip it.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The database the tests use (`DATABASE_URL`, or the local default).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL store with its own pool. `None` (the test should return)
/// when the database is unreachable outside CI; under CI, a panic.
pub async fn postgres_store() -> Option<PostgresStore> {
    match PostgresStore::connect(&database_url()).await {
        Ok(store) => Some(store),
        Err(error) if under_ci() => {
            panic!("PostgreSQL is required under CI (DATABASE_URL): {error}")
        }
        Err(error) => {
            eprintln!("skipped: PostgreSQL is unreachable ({error})");
            None
        }
    }
}

/// The `token_manager` example binary, built by `cargo test --workspace`
/// (which builds every example). `None` (skip) outside CI when it is missing.
/// A binary older than the library or example sources is used, with a
/// warning: it runs the code it was built from.
pub fn token_manager_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let debug_dir = exe.parent()?.parent()?;
    let binary = debug_dir.join("examples").join("token_manager");
    if binary.exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let built = binary.metadata().and_then(|m| m.modified()).ok();
        let crates = std::fs::read_dir(root.join("crates")).into_iter().flatten();
        let sources = crates
            .flatten()
            .map(|c| c.path().join("src"))
            .chain([root.join("examples")]);
        if sources.filter_map(|dir| newest_source(&dir)).max() > built {
            eprintln!(
                "note: {} is older than the sources; rebuild it \
                 (`cargo build --example token_manager`) to test them",
                binary.display()
            );
        }
        return Some(binary);
    }
    let hint = format!(
        "{} is missing: run `cargo build --example token_manager` (or `cargo test --workspace`)",
        binary.display()
    );
    if under_ci() {
        panic!("{hint}");
    }
    eprintln!("skipped: {hint}");
    None
}

/// The newest modification time of the `.rs` files under `dir`.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let modified = if path.is_dir() {
            newest_source(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            entry.metadata().and_then(|m| m.modified()).ok()
        } else {
            None
        };
        newest = newest.max(modified);
    }
    newest
}

/// A prefix no other test run uses, for accounts in a shared database.
pub fn unique_prefix(test: &str) -> String {
    format!("{test}-{:08x}-", fastrand::u32(..))
}
