//! Running the built binary against a database of the test's own: a
//! SQLite file in a temporary directory, or a PostgreSQL schema made for
//! the test (`DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! unreachable: skipped, except under `CI=true`, where that fails).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use oauth2_adapters::store_sql::sqlx;
use oauth2_adapters::store_sql::{EncryptionKeys, PostgresStore, SqliteStore};
use oauth2_adapters::{ProviderId, SecretString, Token, TokenKey, TokenStore};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Key rings in the `--keys` format.
pub const OLD_KEYS: &str = "old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
pub const NEW_KEYS: &str =
    "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
/// Only the new key: rows under `old` do not decode with it.
pub const ONLY_NEW_KEYS: &str = "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
/// The key bytes' base64, which must never be printed either.
pub const KEY_TEXTS: [&str; 2] = [
    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI",
];

/// Where a test's tokens live.
pub enum Db {
    /// A SQLite file.
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    /// A PostgreSQL schema of its own.
    Postgres { url: String, schema: String },
}

impl Db {
    /// A new SQLite file (created by the store, as an application would).
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.db");
        drop(SqliteStore::open(&path).await.unwrap());
        Db::Sqlite { _dir: dir, path }
    }

    /// A new schema in the test database; `None` (skip) when it is
    /// unreachable outside CI.
    pub async fn postgres() -> Option<Db> {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let pool = match tokio::time::timeout(Duration::from_secs(10), sqlx::PgPool::connect(&url))
            .await
        {
            Ok(Ok(pool)) => pool,
            outcome => {
                let reason = match outcome {
                    Ok(Err(err)) => err.to_string(),
                    _ => "no answer within 10 s".to_owned(),
                };
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!("PostgreSQL is required under CI=true (DATABASE_URL): {reason}");
                }
                eprintln!("skipped: PostgreSQL is unreachable ({reason}); set DATABASE_URL");
                return None;
            }
        };
        let schema = format!("cli_test_{:016x}", fastrand::u64(..));
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        Some(Db::Postgres { url, schema })
    }

    /// The CLI's options naming this database.
    pub fn args(&self) -> Vec<String> {
        match self {
            Db::Sqlite { path, .. } => vec!["--sqlite".into(), path.display().to_string()],
            Db::Postgres { url, .. } => vec!["--postgres".into(), url.clone()],
        }
    }

    /// A store on it, with `keys` (the `--keys` format) if given.
    pub async fn store(&self, keys: Option<&str>) -> Arc<dyn TokenStore> {
        let keys: Option<EncryptionKeys> = keys.map(|k| k.parse().unwrap());
        match self {
            Db::Sqlite { path, .. } => {
                let store = SqliteStore::open(path).await.unwrap();
                Arc::new(match keys {
                    Some(keys) => store.with_encryption(keys),
                    None => store,
                })
            }
            Db::Postgres { url, .. } => {
                let store = PostgresStore::connect(url).await.unwrap();
                Arc::new(match keys {
                    Some(keys) => store.with_encryption(keys),
                    None => store,
                })
            }
        }
    }

    /// The `record` column of `key`, as stored.
    pub async fn column(&self, key: &TokenKey) -> String {
        let query = "SELECT record FROM oauth2_adapters_tokens WHERE key = ";
        match self {
            Db::Sqlite { path, .. } => {
                let store = SqliteStore::open(path).await.unwrap();
                sqlx::query_scalar(&format!("{query}?"))
                    .bind(key.as_str())
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
            }
            Db::Postgres { url, .. } => {
                let store = PostgresStore::connect(url).await.unwrap();
                sqlx::query_scalar(&format!("{query}$1"))
                    .bind(key.as_str())
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
            }
        }
    }

    /// Writes a row whose key does not parse (as a foreign writer might).
    pub async fn plant_garbage_key(&self, text: &str) {
        let record = r#"{"provider":"x","access_token":"t","refresh_token":null,"token_type":"Bearer","expires_at_ms":null,"refresh_expires_at_ms":null,"scopes":[],"subject":null,"issued_at_ms":0,"sealed":[]}"#;
        let insert = "INSERT INTO oauth2_adapters_tokens (key, provider, record, version, updated_at_ms) VALUES ";
        match self {
            Db::Sqlite { path, .. } => {
                let store = SqliteStore::open(path).await.unwrap();
                sqlx::query(&format!("{insert}(?, 'x', ?, 1, 0)"))
                    .bind(text)
                    .bind(record)
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
            Db::Postgres { url, .. } => {
                let store = PostgresStore::connect(url).await.unwrap();
                let insert = insert.replace(", updated_at_ms", "");
                sqlx::query(&format!("{insert}($1, 'x', $2, 1)"))
                    .bind(text)
                    .bind(record)
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
        }
    }

    /// Drops the schema (PostgreSQL); the file goes with its directory.
    pub async fn cleanup(self) {
        if let Db::Postgres { url, schema } = self {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// A token of `provider` for `account`, expiring `expires_in` from now
/// (negative: in the past), with a refresh token if given. Its secrets are
/// unique to the call.
pub fn token(provider: &str, expires_in: i64, refresh_token: Option<&str>) -> Token {
    let now = SystemTime::now();
    let at = |secs: i64| {
        if secs >= 0 {
            now + Duration::from_secs(secs.unsigned_abs())
        } else {
            now - Duration::from_secs(secs.unsigned_abs())
        }
    };
    let access = format!("access-{:016x}", fastrand::u64(..));
    let mut token = Token::new(
        ProviderId::new(provider.to_owned()),
        SecretString::from(access),
        at(expires_in - 3600),
    );
    token.expires_at = Some(at(expires_in));
    token.refresh_token = refresh_token.map(|r| SecretString::from(r.to_owned()));
    token
}

/// Stores `token` under `key` (nothing may be stored there yet).
pub async fn plant(store: &dyn TokenStore, key: &TokenKey, token: &Token) {
    store
        .compare_and_swap(key, None, &token.to_record())
        .await
        .unwrap();
}

/// The secrets of `token`, to check they never appear.
pub fn secrets_of(token: &Token) -> Vec<String> {
    let mut secrets = vec![token.expose_access_token().to_owned()];
    secrets.extend(token.expose_refresh_token().map(str::to_owned));
    secrets
}

/// A finished run of the binary.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    /// Panics if any secret (or the test key ring) appears in the output.
    #[track_caller]
    pub fn assert_no_secret(&self, secrets: &[String]) -> &Self {
        for secret in secrets.iter().map(String::as_str).chain(KEY_TEXTS) {
            assert!(!secret.is_empty());
            for (name, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
                assert!(!text.contains(secret), "a secret in {name}:\n{text}");
            }
        }
        self
    }

    /// Stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}

/// Runs the binary with `args`, `env` and `stdin`, with none of the
/// tool's variables inherited. Off the async threads, so that mocks in
/// this process keep answering.
pub async fn cli(args: &[String], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oauth2-adapters-cli"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("OAUTH2_ADAPTERS_DATABASE")
        .env_remove("TOKEN_KEYS")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("the binary starts");
        if let Some(text) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        if std::env::var_os("CLI_TEST_SHOW").is_some() {
            eprintln!(
                "$ oauth2-adapters-cli ...\n{}{}[exit {:?}]",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                output.status.code()
            );
        }
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// `db`'s options followed by `rest`.
pub fn with_db(db: &Db, rest: &[&str]) -> Vec<String> {
    let mut args = db.args();
    args.extend(rest.iter().map(|s| (*s).to_owned()));
    args
}

/// Runs the test body on SQLite and then on PostgreSQL (skipped there
/// when the database is unreachable outside CI).
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::harness::Db::sqlite().await;
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::harness::Db::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}
pub(crate) use on_both_stores;
