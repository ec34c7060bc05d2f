//! The PostgreSQL store.

use async_trait::async_trait;
use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::store::{
    CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenPage, TokenStore,
};
use oauth2_adapters_core::Result;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

use crate::codec::Codec;
use crate::lease::{self, Decision};
use crate::record::{self, db_error};
use crate::rotate::{self, Row, Rows};
use crate::{migrate, EncryptionKeys};

/// The key of the transaction-level advisory lock under which migrations run
/// (the bytes of `"oauth2ad"`), so that processes starting at once take turns.
const MIGRATION_LOCK: i64 = 0x6f61_7574_6832_6164;

/// Tokens in a PostgreSQL database, shared by any number of processes.
///
/// Lease expiry is computed with the database's clock (`now()`), so
/// instances whose clocks disagree still agree on who holds a lease.
///
/// Secrets are stored in clear text unless the store is given keys with
/// [`PostgresStore::with_encryption`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    codec: Codec,
}

impl PostgresStore {
    /// Connects a pool to `url` (`postgres://user@host:port/database`) and
    /// runs the migrations.
    ///
    /// TLS is chosen by the URL's `sslmode`, as with libpq: `disable`,
    /// `prefer` (the default: TLS when the server offers it, unverified),
    /// `require` (TLS, unverified), `verify-ca` (TLS, the server's
    /// certificate must chain to a trusted root) and `verify-full` (also
    /// for the host name connected to). `sslrootcert=<path>` adds a trusted
    /// root (a PEM file); without it, `verify-ca` and `verify-full` trust
    /// the Mozilla roots (`webpki-roots`). See the crate's
    /// [TLS](crate#tls) section.
    ///
    /// A URL that does not parse, and a failure to connect, are
    /// [`Error::Store`](oauth2_adapters_core::Error::Store) errors; neither
    /// quotes the URL's password.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .connect(url)
            .await
            .map_err(db_error("connecting to PostgreSQL"))?;
        Self::from_pool(pool).await
    }

    /// Connects a pool with typed options and runs the migrations: the
    /// same as [`PostgresStore::connect`], with the TLS settings (and any
    /// other) given as code rather than in a URL.
    ///
    /// ```no_run
    /// # async fn example() -> oauth2_adapters::Result<()> {
    /// use oauth2_adapters::store_sql::sqlx::postgres::{PgConnectOptions, PgSslMode};
    /// use oauth2_adapters::store_sql::PostgresStore;
    ///
    /// let options = PgConnectOptions::new()
    ///     .host("db.example.com")
    ///     .username("app")
    ///     .password("from-a-secret-store")
    ///     .database("app")
    ///     .ssl_mode(PgSslMode::VerifyFull)
    ///     .ssl_root_cert("/etc/ssl/certs/db-ca.pem");
    /// let store = PostgresStore::connect_with(options).await?;
    /// # let _ = store; Ok(()) }
    /// ```
    ///
    /// The options' `Debug` shows the password (it is `sqlx`'s type): do
    /// not log them.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .connect_with(options)
            .await
            .map_err(db_error("connecting to PostgreSQL"))?;
        Self::from_pool(pool).await
    }

    /// A store on an existing pool; runs the migrations.
    pub async fn from_pool(pool: PgPool) -> Result<Self> {
        migrate_postgres(&pool).await?;
        Ok(Self {
            pool,
            codec: Codec::default(),
        })
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Encrypts the secrets of every record this store writes (the access
    /// and refresh tokens and the provider's extra fields) with `keys`'
    /// current key, and decrypts with any key of the ring. Rows written in
    /// clear text stay readable (unless [`PostgresStore::require_encryption`])
    /// and are encrypted by their next write, or by
    /// [`PostgresStore::reencrypt_all`]. Give every instance sharing the
    /// database the same keys. See the crate's
    /// [Encryption at rest](crate#encryption-at-rest).
    pub fn with_encryption(mut self, keys: EncryptionKeys) -> Self {
        self.codec = self.codec.with_keys(keys);
        self
    }

    /// Refuses to read a row whose secrets are in clear text (an
    /// [`Error::Store`](oauth2_adapters_core::Error::Store) whose source is a
    /// [`DecryptionError`](crate::DecryptionError)), for when every row is
    /// known to be encrypted. Without [`PostgresStore::with_encryption`],
    /// every write fails too (an
    /// [`Error::Configuration`](oauth2_adapters_core::Error::Configuration)).
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
    /// The rows' previous versions stay in the table's pages until
    /// [`PostgresStore::purge_superseded_rows`].
    pub async fn reencrypt_all(&self) -> Result<u64> {
        rotate::reencrypt_all(&self.codec, self).await
    }

    /// Rewrites the tokens table with its current rows only: `VACUUM (FULL)
    /// oauth2_adapters_tokens`. An `UPDATE` (every write, and
    /// [`PostgresStore::reencrypt_all`]) leaves the row's previous version
    /// in the table's pages, and a plain `VACUUM` frees that space without
    /// overwriting it; after this, no earlier version of a row (in clear
    /// text, or under an old key) is left in the table's pages, unless a
    /// transaction older than the rewrite could still see it. It takes an
    /// `ACCESS EXCLUSIVE` lock on the table (every read and write of tokens
    /// waits) for as long as the rewrite lasts, and needs the table's owner
    /// (or, from PostgreSQL 17, the `MAINTAIN` privilege). What it does not
    /// reach (WAL, replicas, backups, freed disk blocks) is listed in the
    /// crate's [Encryption at rest](crate#encryption-at-rest).
    pub async fn purge_superseded_rows(&self) -> Result<()> {
        sqlx::raw_sql("VACUUM (FULL) oauth2_adapters_tokens")
            .execute(&self.pool)
            .await
            .map_err(db_error("rewriting the tokens table (VACUUM FULL)"))?;
        Ok(())
    }
}

/// The table recording the applied migrations (named in [`migrate::TABLE`]).
const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE oauth2_adapters_migrations (
    version     BIGINT      NOT NULL PRIMARY KEY,
    description TEXT        NOT NULL,
    checksum    BIGINT      NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Applies the pending migrations in one transaction that first takes an
/// advisory lock: concurrent runs wait for each other, then find nothing to
/// do. The migrations table is created only when missing, so a role without
/// `CREATE` privilege can use an already migrated database.
async fn migrate_postgres(pool: &PgPool) -> Result<()> {
    let fail = || db_error("migrating the PostgreSQL database");
    let mut tx = pool.begin().await.map_err(fail())?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db_error("locking the PostgreSQL database for migrations"))?;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(migrate::TABLE)
        .fetch_one(&mut *tx)
        .await
        .map_err(fail())?;
    if !exists {
        (&mut *tx)
            .execute(CREATE_MIGRATIONS_TABLE)
            .await
            .map_err(fail())?;
    }
    let applied: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT version, checksum FROM {} ORDER BY version",
        migrate::TABLE
    ))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_error("reading the applied migrations"))?;
    for migration in migrate::pending(migrate::POSTGRES, &applied)? {
        (&mut *tx)
            .execute(migration.sql)
            .await
            .map_err(db_error("applying a migration to the PostgreSQL database"))?;
        sqlx::query(&format!(
            "INSERT INTO {} (version, description, checksum) VALUES ($1, $2, $3)",
            migrate::TABLE
        ))
        .bind(migration.version)
        .bind(migration.description)
        .bind(migration.checksum())
        .execute(&mut *tx)
        .await
        .map_err(db_error("recording a migration"))?;
    }
    tx.commit().await.map_err(fail())
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT record, version FROM oauth2_adapters_tokens WHERE key = $1")
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("loading a token"))?;
        row.map(|(text, version)| self.codec.decode(key, &text, version))
            .transpose()
    }

    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.write(key, expected, record, None).await
    }

    async fn delete(&self, key: &TokenKey) -> Result<()> {
        // The token first, then the lease (the subquery makes the lease's
        // delete wait for the token's): the order the lease statement locks
        // them in, so the two never deadlock.
        sqlx::query(
            "WITH token AS (DELETE FROM oauth2_adapters_tokens WHERE key = $1 RETURNING 1)
             DELETE FROM oauth2_adapters_leases
             WHERE key = $1 AND (SELECT count(*) FROM token) >= 0",
        )
        .bind(key.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_error("deleting a token"))?;
        Ok(())
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
        // Two statements, not `$1 IS NULL OR key > $1`: each keeps its
        // plan a range scan of the primary key.
        let rows: Vec<(String, String, String, i64)> = match after {
            None => sqlx::query_as(
                "SELECT key, provider, record, version FROM oauth2_adapters_tokens
                 ORDER BY key LIMIT $1",
            )
            .bind(db_limit),
            Some(after) => sqlx::query_as(
                "SELECT key, provider, record, version FROM oauth2_adapters_tokens
                 WHERE key > $1 ORDER BY key LIMIT $2",
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
        let keys: Vec<&str> = keys.iter().map(TokenKey::as_str).collect();
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT key, provider, record, version FROM oauth2_adapters_tokens
             WHERE key = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("loading a batch of tokens"))?;
        Ok(Some(record::decode_rows(&self.codec, rows)))
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        let row: LeaseStatementRow = sqlx::query_as(ACQUIRE_LEASE)
            .bind(key.as_str())
            .bind(request.holder)
            .bind(record::lease_ms(request.ttl))
            .bind(record::lease_ms(request.in_doubt_grace))
            .fetch_one(&self.pool)
            .await
            .map_err(db_error("taking a refresh lease"))?;
        let (taken, unexpired, remaining_ms, retry_after_ms, text, version) = row;
        let decision = if taken {
            Decision::Take
        } else if unexpired {
            Decision::HeldByOther { remaining_ms }
        } else {
            Decision::InDoubt { retry_after_ms }
        };
        // The statement has committed: a row this store cannot read is an
        // error, and a lease it took lapses by itself.
        let current = match (text, version) {
            (Some(text), Some(version)) => Some(self.codec.decode(key, &text, version)?),
            _ => None,
        };
        Ok(lease::outcome(decision, current))
    }

    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM oauth2_adapters_leases WHERE key = $1 AND holder = $2")
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
        self.write(key, expected, record, Some(holder)).await
    }
}

/// What [`ACQUIRE_LEASE`] returns: taken, unexpired, the milliseconds left
/// on the lease and until its grace ends, and the token's record and version.
type LeaseStatementRow = (bool, bool, i64, i64, Option<String>, Option<i64>);

/// The condition under which the lease upsert takes the lease (`lease`: the
/// stored row, `EXCLUDED`: the proposed one, `$4`: the grace in
/// milliseconds): the rule of [`lease::decide`].
macro_rules! take_lease {
    () => {
        "(lease.holder = EXCLUDED.holder
          OR (lease.expires_at <= now()
              AND (lease.version IS DISTINCT FROM EXCLUDED.version
                   OR lease.expires_at + $4 * interval '1 millisecond' <= now())))"
    };
}

/// The lease, in one statement (`$1` key, `$2` holder, `$3` ttl and `$4`
/// grace in milliseconds).
///
/// `token` reads the token row `FOR SHARE`: it waits for a write in
/// progress and returns the row as that write left it (READ COMMITTED
/// re-reads a row it had to wait for), and no write lands until this
/// statement commits. The upsert's `VALUES` needs its version, so the token
/// is locked before the lease. The upsert always updates a conflicting row
/// (so that `RETURNING` reports the lease as it is after the decision, which
/// a second read could not see atomically), but keeps its values unless
/// [`take_lease!`] holds. `now()` decides; the times left are measured with
/// `clock_timestamp()`, after any wait for a lock.
const ACQUIRE_LEASE: &str = concat!(
    "WITH token AS (
        SELECT record, version FROM oauth2_adapters_tokens WHERE key = $1 FOR SHARE
    ),
    lease AS (
        INSERT INTO oauth2_adapters_leases AS lease (key, holder, expires_at, version)
        VALUES ($1, $2, now() + $3 * interval '1 millisecond',
                COALESCE((SELECT version FROM token), 0))
        ON CONFLICT (key) DO UPDATE SET
            holder = CASE WHEN ",
    take_lease!(),
    " THEN EXCLUDED.holder ELSE lease.holder END,
            expires_at = CASE WHEN ",
    take_lease!(),
    " THEN EXCLUDED.expires_at ELSE lease.expires_at END,
            version = CASE WHEN ",
    take_lease!(),
    " THEN EXCLUDED.version ELSE lease.version END
        RETURNING
            lease.holder = $2 AS taken,
            lease.expires_at > now() AS unexpired,
            CEIL(EXTRACT(EPOCH FROM (lease.expires_at - clock_timestamp())) * 1000)::BIGINT
                AS remaining_ms,
            CEIL(EXTRACT(EPOCH FROM (lease.expires_at + $4 * interval '1 millisecond'
                                     - clock_timestamp())) * 1000)::BIGINT
                AS retry_after_ms
    )
    SELECT lease.taken, lease.unexpired, lease.remaining_ms, lease.retry_after_ms,
           token.record, token.version
    FROM lease LEFT JOIN token ON TRUE"
);

/// The compare-and-swap statements (`$1` key, `$2` provider, `$3` record,
/// `$4` expected version), alone and releasing the lease of `$5` (`$4`
/// without an expected version) in the same statement: the lease's delete
/// reads the write's result, so it runs after it (the token is locked
/// before the lease, as everywhere), and only if it wrote.
mod cas {
    pub(super) const INSERT: &str = "INSERT INTO oauth2_adapters_tokens
            (key, provider, record, version, updated_at)
        VALUES ($1, $2, $3, 1, now())
        ON CONFLICT (key) DO NOTHING
        RETURNING version";

    pub(super) const UPDATE: &str = "UPDATE oauth2_adapters_tokens
        SET record = $3, provider = $2, version = version + 1, updated_at = now()
        WHERE key = $1 AND version = $4
        RETURNING version";

    pub(super) const INSERT_RELEASING: &str = "WITH written AS (
            INSERT INTO oauth2_adapters_tokens (key, provider, record, version, updated_at)
            VALUES ($1, $2, $3, 1, now())
            ON CONFLICT (key) DO NOTHING
            RETURNING version
        ),
        released AS (
            DELETE FROM oauth2_adapters_leases
            WHERE key = $1 AND holder = $4 AND EXISTS (SELECT 1 FROM written)
        )
        SELECT version FROM written";

    pub(super) const UPDATE_RELEASING: &str = "WITH written AS (
            UPDATE oauth2_adapters_tokens
            SET record = $3, provider = $2, version = version + 1, updated_at = now()
            WHERE key = $1 AND version = $4
            RETURNING version
        ),
        released AS (
            DELETE FROM oauth2_adapters_leases
            WHERE key = $1 AND holder = $5 AND EXISTS (SELECT 1 FROM written)
        )
        SELECT version FROM written";
}

impl PostgresStore {
    /// The compare-and-swap, in one statement, releasing `holder`'s lease
    /// when it writes.
    async fn write(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: Option<&str>,
    ) -> Result<CasOutcome> {
        let json = self.codec.encode(key.as_str(), record)?;
        let expected = match expected.map(record::expected_to_db) {
            None => None,
            Some(Ok(expected)) => Some(expected),
            // Not a version the database can hold: it cannot match.
            Some(Err(())) => {
                return Ok(CasOutcome::Conflict {
                    current: self.load(key).await?.map(Box::new),
                })
            }
        };
        let sql = match (expected, holder) {
            (None, None) => cas::INSERT,
            (Some(_), None) => cas::UPDATE,
            (None, Some(_)) => cas::INSERT_RELEASING,
            (Some(_), Some(_)) => cas::UPDATE_RELEASING,
        };
        let provider = key.provider();
        let mut query = sqlx::query_scalar(sql)
            .bind(key.as_str())
            .bind(provider.as_str())
            .bind(&json);
        if let Some(expected) = expected {
            query = query.bind(expected);
        }
        if let Some(holder) = holder {
            query = query.bind(holder);
        }
        let written: Option<i64> =
            query
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error(if expected.is_some() {
                    "updating a token"
                } else {
                    "inserting a token"
                }))?;
        match written {
            Some(version) => record::written(key, version),
            None => Ok(CasOutcome::Conflict {
                current: self.load(key).await?.map(Box::new),
            }),
        }
    }
}

impl Rows for PostgresStore {
    async fn page(&self, after: Option<&str>) -> Result<Vec<Row>> {
        sqlx::query_as(
            "SELECT key, record, version FROM oauth2_adapters_tokens
             WHERE $1::TEXT IS NULL OR key > $1 ORDER BY key LIMIT $2",
        )
        .bind(after)
        .bind(rotate::PAGE)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("reading tokens to re-encrypt"))
    }

    async fn row(&self, key: &str) -> Result<Option<(String, i64)>> {
        sqlx::query_as("SELECT record, version FROM oauth2_adapters_tokens WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading a token to re-encrypt"))
    }

    async fn replace(&self, key: &str, version: i64, old: &str, new: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oauth2_adapters_tokens SET record = $4
             WHERE key = $1 AND version = $2 AND record = $3",
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
