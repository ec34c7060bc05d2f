//! The SQLite store.

mod files;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::store::{
    CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenPage, TokenStore,
};
use oauth2_adapters_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Sqlite};

use crate::codec::Codec;
use crate::lease::{self, Decision, LeaseRow};
use crate::record::{self, db_error};
use crate::rotate::{self, Row, Rows};
use crate::{migrate, EncryptionKeys};

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tokens in a SQLite database: one file shared by the processes of one
/// machine, or an in-memory database for tests.
///
/// [`SqliteStore::open`] sets the durability the store relies on: WAL
/// journal, `synchronous=FULL` (a committed rotation survives a power loss)
/// and a 5 s busy timeout; it creates the file with mode 0600 and turns on
/// `secure_delete`. The refresh lease is kept in the database too, so
/// several processes sharing the file refresh a key one at a time.
///
/// Secrets are stored in clear text unless the store is given keys with
/// [`SqliteStore::with_encryption`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    codec: Codec,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` and runs
    /// the migrations.
    ///
    /// A new file is created with mode 0600 (its `-wal` and `-shm` files
    /// get the same mode from SQLite), whatever the umask; an existing one
    /// (or its `-wal` or `-shm`) that others may read or write is set to
    /// 0600 if this process owns it, and a warning is logged if not. Every
    /// connection has `secure_delete` on: deleted and overwritten records
    /// are zeroed in the file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        files::secure(path)?;
        // No `journal_mode` here: the switch to WAL is made once, below,
        // where it can be retried (it is persistent in the file).
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(db_error("opening the SQLite database"))?;
        enable_wal(&pool).await?;
        Self::from_pool(pool).await
    }

    /// A private in-memory database (for tests). It lives as long as the
    /// store and its clones: the pool keeps its one connection open for good.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(db_error("configuring an in-memory SQLite database"))?
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db_error("opening an in-memory SQLite database"))?;
        Self::from_pool(pool).await
    }

    /// A store on an existing pool; runs the migrations. The pool's own
    /// settings apply: see [`SqliteStore::open`] for those the store expects
    /// (WAL, `synchronous=FULL`, a busy timeout, `secure_delete`, a file only
    /// its owner may read).
    pub async fn from_pool(pool: SqlitePool) -> Result<Self> {
        migrate_sqlite(&pool).await?;
        Ok(Self {
            pool,
            codec: Codec::default(),
        })
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Encrypts the secrets of every record this store writes (the access
    /// and refresh tokens and the provider's extra fields) with `keys`'
    /// current key, and decrypts with any key of the ring. Rows written in
    /// clear text stay readable (unless [`SqliteStore::require_encryption`])
    /// and are encrypted by their next write, or by
    /// [`SqliteStore::reencrypt_all`]. See the crate's
    /// [Encryption at rest](crate#encryption-at-rest).
    pub fn with_encryption(mut self, keys: EncryptionKeys) -> Self {
        self.codec = self.codec.with_keys(keys);
        self
    }

    /// Refuses to read a row whose secrets are in clear text (an
    /// [`Error::Store`] whose source is a
    /// [`DecryptionError`](crate::DecryptionError)), for when every row is
    /// known to be encrypted. Without [`SqliteStore::with_encryption`], every
    /// write fails too (an [`Error::Configuration`]).
    pub fn require_encryption(mut self) -> Self {
        self.codec = self.codec.requiring_encryption();
        self
    }

    /// Rewrites every row that is not under the current key (rows under an
    /// old key, rows in clear text, and rows of the previous format) under
    /// the current key; returns how many it rewrote. A row is rewritten only
    /// if no one wrote it since it was read, and keeps its version, so a
    /// concurrent refresh is never overwritten and never conflicts. Stops at
    /// the first row it cannot decrypt, leaving it as it was; running again
    /// resumes.
    ///
    /// Then it runs [`SqliteStore::purge_superseded_rows`], so that no
    /// earlier version of a row (in clear text, or under an old key) is left
    /// in the database, `-wal` or `-shm` file.
    pub async fn reencrypt_all(&self) -> Result<u64> {
        let rewritten = rotate::reencrypt_all(&self.codec, self).await?;
        self.purge_superseded_rows().await?;
        Ok(rewritten)
    }

    /// Removes what earlier versions of rows left in the files: `VACUUM`
    /// rebuilds the database with its current rows only, then
    /// `wal_checkpoint(TRUNCATE)` copies the result into the database file
    /// and empties the `-wal` file. It takes the write lock for as long as
    /// the rebuild lasts, and fails (an [`Error::Store`]; run it again) if
    /// another connection keeps the checkpoint from completing for the busy
    /// timeout. What the file system does with the blocks it frees is
    /// beyond it (see the crate's [Encryption at rest](crate#encryption-at-rest)).
    pub async fn purge_superseded_rows(&self) -> Result<()> {
        sqlx::raw_sql("VACUUM")
            .execute(&self.pool)
            .await
            .map_err(db_error("vacuuming the SQLite database"))?;
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error("checkpointing the SQLite write-ahead log"))?;
        if busy != 0 {
            return Err(Error::Store {
                message: "the SQLite write-ahead log could not be checkpointed (another \
                          connection was busy): earlier versions of rows may remain in the \
                          -wal file; run it again"
                    .into(),
                source: None,
            });
        }
        Ok(())
    }
}

/// The table recording the applied migrations (named in [`migrate::TABLE`]).
const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS oauth2_adapters_migrations (
    version       INTEGER NOT NULL PRIMARY KEY,
    description   TEXT    NOT NULL,
    checksum      INTEGER NOT NULL,
    applied_at_ms INTEGER NOT NULL
) STRICT";

/// Applies the pending migrations in one `BEGIN IMMEDIATE` transaction, so
/// that processes opening one file at once take turns.
async fn migrate_sqlite(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db_error("migrating the SQLite database"))?;
    (&mut *tx)
        .execute(CREATE_MIGRATIONS_TABLE)
        .await
        .map_err(db_error("migrating the SQLite database"))?;
    let applied: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT version, checksum FROM {} ORDER BY version",
        migrate::TABLE
    ))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error("reading the applied migrations"))?;
    for migration in migrate::pending(migrate::SQLITE, &applied)? {
        (&mut *tx)
            .execute(migration.sql)
            .await
            .map_err(db_error("applying a migration to the SQLite database"))?;
        sqlx::query(&format!(
            "INSERT INTO {} (version, description, checksum, applied_at_ms) VALUES (?, ?, ?, ?)",
            migrate::TABLE
        ))
        .bind(migration.version)
        .bind(migration.description)
        .bind(migration.checksum())
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db_error("recording a migration"))?;
    }
    tx.commit()
        .await
        .map_err(db_error("migrating the SQLite database"))
}

/// Puts the database in WAL mode. Switching a new file to WAL takes an
/// exclusive lock that SQLite's busy timeout does not wait for, so when
/// several processes create the file at once, the losers retry (for as long
/// as the busy timeout) instead of failing with "database is locked".
async fn enable_wal(pool: &SqlitePool) -> Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await;
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(Error::Store {
                    message: format!("SQLite kept the journal mode {mode:?} instead of WAL"),
                    source: None,
                })
            }
            Err(err) if is_busy(&err) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => return Err(Error::store("switching the SQLite database to WAL", err)),
        }
    }
}

/// True for `SQLITE_BUSY` and its extended codes.
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|err| err.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Now, in milliseconds since the Unix epoch. Processes sharing one SQLite
/// file share one machine, and so one clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Keys per statement in `load_many` (SQLite binds at most 32,766).
const LOAD_MANY_CHUNK: usize = 500;

#[async_trait]

impl TokenStore for SqliteStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        let row = select_token(&self.pool, key.as_str())
            .await
            .map_err(db_error("loading a token"))?;
        self.decode(key, row)
    }

    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        let json = self.codec.encode(key.as_str(), record)?;
        match write_token(&self.pool, key, expected, &json).await? {
            Some(version) => record::written(key, version),
            None => Ok(CasOutcome::Conflict {
                current: self.load(key).await?.map(Box::new),
            }),
        }
    }

    async fn delete(&self, key: &TokenKey) -> Result<()> {
        let fail = || db_error("deleting a token");
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail())?;
        for table in ["oauth2_adapters_tokens", "oauth2_adapters_leases"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE key = ?"))
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(fail())?;
        }
        tx.commit().await.map_err(fail())
    }

    async fn keys(&self) -> Result<Vec<TokenKey>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT key, provider FROM oauth2_adapters_tokens ORDER BY key")
                .fetch_all(&self.pool)
                .await
                .map_err(db_error("listing the stored tokens"))?;
        Ok(record::parse_keys(rows))
    }

    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        let (limit, db_limit) = record::page_limit(limit);
        // Two statements, not `?1 IS NULL OR key > ?1`: each keeps its
        // plan a range scan of the primary key.
        let rows: Vec<(String, String, String, i64)> = match after {
            None => sqlx::query_as(
                "SELECT key, provider, record, version FROM oauth2_adapters_tokens
                 ORDER BY key LIMIT ?1",
            )
            .bind(db_limit),
            Some(after) => sqlx::query_as(
                "SELECT key, provider, record, version FROM oauth2_adapters_tokens
                 WHERE key > ?1 ORDER BY key LIMIT ?2",
            )
            .bind(after)
            .bind(db_limit),
        }
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("reading a page of tokens"))?;
        Ok(Some(record::page(&self.codec, rows, limit)))
    }

    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        let mut found = Vec::with_capacity(keys.len());
        // Within SQLite's limit on bound parameters.
        for chunk in keys.chunks(LOAD_MANY_CHUNK) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "SELECT key, provider, record, version FROM oauth2_adapters_tokens WHERE key IN (",
            );
            let mut list = query.separated(", ");
            for key in chunk {
                list.push_bind(key.as_str());
            }
            query.push(")");
            let rows: Vec<(String, String, String, i64)> = query
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(db_error("loading a batch of tokens"))?;
            found.extend(record::decode_rows(&self.codec, rows));
        }
        Ok(Some(found))
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        let fail = || db_error("taking a refresh lease");
        // One write transaction: the token, the lease and the decision all
        // see one state, which no other connection can change meanwhile.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail())?;
        let now = now_ms();
        let token = select_token(&mut *tx, key.as_str()).await.map_err(fail())?;
        let lease: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT holder, expires_at_ms, version FROM oauth2_adapters_leases WHERE key = ?",
        )
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail())?;
        let lease = lease.map(|(holder, expires_at_ms, version)| LeaseRow {
            holder,
            expires_at_ms,
            version,
        });
        let version = token
            .as_ref()
            .map_or(lease::NO_TOKEN, |(_, version)| *version);
        let decision = lease::decide(
            lease.as_ref(),
            request.holder,
            version,
            now,
            record::lease_ms(request.in_doubt_grace),
        );
        // Decoded before anything is written: a row this store cannot read
        // leaves the lease as it was (the transaction is rolled back).
        let current = self.decode(key, token)?;
        if decision == Decision::Take {
            sqlx::query(
                "INSERT INTO oauth2_adapters_leases (key, holder, expires_at_ms, version)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET holder = excluded.holder,
                     expires_at_ms = excluded.expires_at_ms, version = excluded.version",
            )
            .bind(key.as_str())
            .bind(request.holder)
            .bind(now.saturating_add(record::lease_ms(request.ttl)))
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(fail())?;
        }
        tx.commit().await.map_err(fail())?;
        Ok(lease::outcome(decision, current))
    }

    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM oauth2_adapters_leases WHERE key = ? AND holder = ?")
            .bind(key.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_error("releasing a refresh lease"))?;
        Ok(())
    }

    async fn compare_and_swap_releasing(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: &str,
    ) -> Result<CasOutcome> {
        let json = self.codec.encode(key.as_str(), record)?;
        let fail = || db_error("writing a token and releasing its lease");
        // One write transaction: the lease goes only with the write, and
        // any error rolls both back.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(fail())?;
        let outcome = match write_token(&mut *tx, key, expected, &json).await? {
            Some(version) => {
                sqlx::query("DELETE FROM oauth2_adapters_leases WHERE key = ? AND holder = ?")
                    .bind(key.as_str())
                    .bind(holder)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail())?;
                record::written(key, version)?
            }
            None => {
                let row = select_token(&mut *tx, key.as_str()).await.map_err(fail())?;
                CasOutcome::Conflict {
                    current: self.decode(key, row)?.map(Box::new),
                }
            }
        };
        tx.commit().await.map_err(fail())?;
        Ok(outcome)
    }
}

impl SqliteStore {
    /// The stored token from a `(record, version)` row.
    fn decode(&self, key: &TokenKey, row: Option<(String, i64)>) -> Result<Option<StoredToken>> {
        row.map(|(text, version)| self.codec.decode(key, &text, version))
            .transpose()
    }
}

/// The `(record, version)` row of `key`.
async fn select_token<'c>(
    executor: impl Executor<'c, Database = Sqlite>,
    key: &str,
) -> std::result::Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT record, version FROM oauth2_adapters_tokens WHERE key = ?")
        .bind(key)
        .fetch_optional(executor)
        .await
}

/// The compare-and-swap statement: writes `json` for `key` if the stored
/// version is `expected`; the new version, or `None` when nothing was written.
async fn write_token<'c>(
    executor: impl Executor<'c, Database = Sqlite>,
    key: &TokenKey,
    expected: Option<u64>,
    json: &str,
) -> Result<Option<i64>> {
    match expected.map(record::expected_to_db) {
        None => sqlx::query_scalar(
            "INSERT INTO oauth2_adapters_tokens (key, provider, record, version, updated_at_ms)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT (key) DO NOTHING
             RETURNING version",
        )
        .bind(key.as_str())
        .bind(key.provider().as_str())
        .bind(json)
        .bind(now_ms())
        .fetch_optional(executor)
        .await
        .map_err(db_error("inserting a token")),
        Some(Ok(expected)) => sqlx::query_scalar(
            "UPDATE oauth2_adapters_tokens
             SET record = ?3, provider = ?2, version = version + 1, updated_at_ms = ?4
             WHERE key = ?1 AND version = ?5
             RETURNING version",
        )
        .bind(key.as_str())
        .bind(key.provider().as_str())
        .bind(json)
        .bind(now_ms())
        .bind(expected)
        .fetch_optional(executor)
        .await
        .map_err(db_error("updating a token")),
        Some(Err(())) => Ok(None),
    }
}

impl Rows for SqliteStore {
    async fn page(&self, after: Option<&str>) -> Result<Vec<Row>> {
        sqlx::query_as(
            "SELECT key, record, version FROM oauth2_adapters_tokens
             WHERE ?1 IS NULL OR key > ?1 ORDER BY key LIMIT ?2",
        )
        .bind(after)
        .bind(rotate::PAGE)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("reading tokens to re-encrypt"))
    }

    async fn row(&self, key: &str) -> Result<Option<(String, i64)>> {
        sqlx::query_as("SELECT record, version FROM oauth2_adapters_tokens WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading a token to re-encrypt"))
    }

    async fn replace(&self, key: &str, version: i64, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth2_adapters_tokens SET record = ?4
             WHERE key = ?1 AND version = ?2 AND record = ?3",
        )
        .bind(key)
        .bind(version)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await
        .map_err(db_error("re-encrypting a token"))?;
        Ok(done.rows_affected() == 1)
    }
}
