//! The store the tool works on: SQLite or PostgreSQL, with the key ring if
//! one was given, and the few raw reads the `TokenStore` contract has no
//! call for (rows that do not decode, counts for the progress bar).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::store_sql::sqlx;
use oauth2_adapters::store_sql::{EncryptionKeys, PostgresStore, SqliteStore};
use oauth2_adapters::{ExposeSecret, SecretString, TokenStore};

use crate::cli::{DatabaseArgs, SecretArg};
use crate::error::{CliError, CliResult};

/// The table every store keeps its tokens in.
const TOKENS: &str = "oauth2_adapters_tokens";

/// Rows read per query when listing.
const PAGE: i64 = 500;

/// Where the database is, before connecting.
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (it may hold a password).
    Postgres(SecretString),
}

impl Location {
    /// From the options, else from `OAUTH2_ADAPTERS_DATABASE`, else from
    /// `DATABASE_URL`.
    pub fn resolve(args: &DatabaseArgs) -> CliResult<Self> {
        if let Some(path) = &args.sqlite {
            return Ok(Self::Sqlite(path.clone()));
        }
        if let Some(SecretArg(url)) = &args.postgres {
            return Ok(Self::Postgres(url.clone()));
        }
        for variable in ["OAUTH2_ADAPTERS_DATABASE", "DATABASE_URL"] {
            let Some(value) = std::env::var_os(variable) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| CliError::UnknownDatabaseUrl { variable })?;
            if value.is_empty() {
                continue;
            }
            return Self::from_url(variable, value);
        }
        Err(CliError::NoDatabase)
    }

    fn from_url(variable: &'static str, url: String) -> CliResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(SecretString::from(url)));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            // `sqlite:///abs/path` and `sqlite://rel` as well as `sqlite:path`.
            let path = path.strip_prefix("//").unwrap_or(path);
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(CliError::UnknownDatabaseUrl { variable })
    }
}

/// An open store.
#[derive(Clone)]
pub enum Database {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

/// One row as stored, before decoding: what listing needs when the record
/// cannot be read.
pub struct RawRow {
    /// The key column.
    pub key: String,
    /// The provider column.
    pub provider: String,
    /// The record column (JSON text; its secrets may be in clear text, so
    /// only its expiry fields are ever read from it).
    pub record: String,
    /// The version column.
    pub version: i64,
}

impl Database {
    /// Connects (and migrates, as every store constructor does), with the
    /// key ring if there is one.
    pub async fn open(location: Location, keys: Option<EncryptionKeys>) -> CliResult<Self> {
        let db = match location {
            Location::Sqlite(path) => {
                if !path.is_file() {
                    return Err(CliError::NoSqliteFile(path));
                }
                let store = SqliteStore::open(&path)
                    .await
                    .map_err(CliError::library(path.display().to_string()))?;
                Self::Sqlite(match keys {
                    Some(keys) => store.with_encryption(keys),
                    None => store,
                })
            }
            Location::Postgres(url) => {
                check_reachable(url.expose_secret()).await?;
                let store = PostgresStore::connect(url.expose_secret())
                    .await
                    .map_err(CliError::library(""))?;
                Self::Postgres(match keys {
                    Some(keys) => store.with_encryption(keys),
                    None => store,
                })
            }
        };
        Ok(db)
    }

    /// The store, for the token manager and the `TokenStore` calls.
    pub fn token_store(&self) -> Arc<dyn TokenStore> {
        match self {
            Self::Sqlite(store) => Arc::new(store.clone()),
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    /// Up to [`PAGE`] rows in key order, after `after`.
    pub async fn rows(&self, after: Option<&str>) -> CliResult<Vec<RawRow>> {
        let after = after.unwrap_or("");
        let rows: Vec<(String, String, String, i64)> = match self {
            Self::Sqlite(store) => sqlx::query_as(&format!(
                "SELECT key, provider, record, version FROM {TOKENS} WHERE key > ? ORDER BY key LIMIT ?"
            ))
            .bind(after)
            .bind(PAGE)
            .fetch_all(store.pool())
            .await,
            Self::Postgres(store) => sqlx::query_as(&format!(
                "SELECT key, provider, record, version FROM {TOKENS} WHERE key > $1 ORDER BY key LIMIT $2"
            ))
            .bind(after)
            .bind(PAGE)
            .fetch_all(store.pool())
            .await,
        }
        .map_err(sql_error("reading the stored tokens"))?;
        Ok(rows
            .into_iter()
            .map(|(key, provider, record, version)| RawRow {
                key,
                provider,
                record,
                version,
            })
            .collect())
    }

    /// Whether a row exists for the key text (decodable or not).
    pub async fn exists(&self, key: &str) -> CliResult<bool> {
        let found: Option<i64> = match self {
            Self::Sqlite(store) => {
                sqlx::query_scalar(&format!("SELECT 1 FROM {TOKENS} WHERE key = ?"))
                    .bind(key)
                    .fetch_optional(store.pool())
                    .await
            }
            Self::Postgres(store) => {
                sqlx::query_scalar(&format!("SELECT 1::BIGINT FROM {TOKENS} WHERE key = $1"))
                    .bind(key)
                    .fetch_optional(store.pool())
                    .await
            }
        }
        .map_err(sql_error("looking the token up"))?;
        Ok(found.is_some())
    }

    /// How many rows there are, and how many of them have their access
    /// token under the key `key_id` (the documented column format:
    /// `"access_token":"enc:v1:<key id>:…`). For the progress bar only.
    pub async fn count_under(&self, key_id: &str) -> CliResult<(u64, u64)> {
        let needle = format!("\"access_token\":\"enc:v1:{key_id}:");
        let (total, under): (i64, i64) = match self {
            Self::Sqlite(store) => {
                sqlx::query_as(&format!(
                    "SELECT count(*), coalesce(sum(instr(record, ?) > 0), 0) FROM {TOKENS}"
                ))
                .bind(&needle)
                .fetch_one(store.pool())
                .await
            }
            Self::Postgres(store) => {
                sqlx::query_as(&format!(
                    "SELECT count(*), count(*) FILTER (WHERE strpos(record, $1) > 0) FROM {TOKENS}"
                ))
                .bind(&needle)
                .fetch_one(store.pool())
                .await
            }
        }
        .map_err(sql_error("counting the stored tokens"))?;
        Ok((
            u64::try_from(total).unwrap_or(0),
            u64::try_from(under).unwrap_or(0),
        ))
    }

    /// `reencrypt_all`: rows rewritten. On SQLite this also purges.
    pub async fn reencrypt_all(&self) -> CliResult<u64> {
        match self {
            Self::Sqlite(store) => store.reencrypt_all().await,
            Self::Postgres(store) => store.reencrypt_all().await,
        }
        .map_err(CliError::library("re-encrypting"))
    }

    /// `purge_superseded_rows`.
    pub async fn purge_superseded_rows(&self) -> CliResult<()> {
        match self {
            Self::Sqlite(store) => store.purge_superseded_rows().await,
            Self::Postgres(store) => store.purge_superseded_rows().await,
        }
        .map_err(CliError::library("purging superseded row versions"))
    }

    /// True for SQLite, whose `reencrypt_all` purges by itself.
    pub fn purges_after_reencrypting(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// How long the first connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One connection first, with a time limit: the pool behind
/// `PostgresStore::connect` retries a refused connection until its own
/// 30 s timeout, and then reports only that it timed out.
async fn check_reachable(url: &str) -> CliResult {
    use sqlx::Connection as _;
    let error = match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(url)).await
    {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            return Ok(());
        }
        // sqlx's configuration errors say what is wrong with the URL
        // (a port, an option), never its password.
        Ok(Err(sqlx::Error::Configuration(err))) => {
            oauth2_adapters::Error::configuration(format!("the PostgreSQL URL is unusable: {err}"))
        }
        Ok(Err(err)) => oauth2_adapters::Error::store("connecting to PostgreSQL", err),
        Err(_) => oauth2_adapters::Error::Store {
            message: format!(
                "connecting to PostgreSQL: no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
            source: None,
        },
    };
    Err(CliError::library("")(error))
}

/// A database error as a store error saying what failed (sqlx's messages
/// quote no bound value).
fn sql_error(what: &'static str) -> impl FnOnce(sqlx::Error) -> CliError {
    move |err| CliError::Library {
        context: what.to_owned(),
        source: Box::new(oauth2_adapters::Error::store(what, err)),
    }
}

/// The key ring from `--keys` / `TOKEN_KEYS`, if given.
pub fn key_ring(keys: Option<&SecretArg>) -> CliResult<Option<EncryptionKeys>> {
    keys.map(|SecretArg(text)| text.expose_secret().parse().map_err(CliError::BadKeys))
        .transpose()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn database_urls_from_the_environment() {
        let url = |text: &str| Location::from_url("DATABASE_URL", text.to_owned());
        assert!(matches!(
            url("postgres://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert!(matches!(
            url("postgresql://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        assert!(
            matches!(url("sqlite:tokens.db"), Ok(Location::Sqlite(p)) if p == Path::new("tokens.db"))
        );
        assert!(
            matches!(url("sqlite:///var/t.db"), Ok(Location::Sqlite(p)) if p == Path::new("/var/t.db"))
        );
        let err = url("mysql://u:hunter2@h/db").err().unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_keys_are_not_quoted() {
        let keys: SecretArg = "k1:not-base64-sekrit!".parse().unwrap();
        let err = key_ring(Some(&keys)).err().unwrap();
        assert!(!err.to_string().contains("sekrit"), "{err}");
        assert!(err.to_string().contains("--keys"), "{err}");
    }
}
