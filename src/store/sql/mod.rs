//! The database store: tokens and nonce counts in SQLite (default),
//! PostgreSQL (feature `postgres`) or MySQL/MariaDB (feature `mysql`), pooled
//! through rocket_db_pools' configuration and migrated at ignite.
//!
//! SQLite and PostgreSQL run the same SQL (`$n` placeholders work in both);
//! MySQL spells placeholders `?` and has neither `ON CONFLICT` nor
//! `RETURNING`. Where the spelling differs, each statement has a variant per
//! [`Dialect`], chosen in one place per module (`TokenSql::of`,
//! `CountSql::of`). `tokens.rs` holds the credential queries, `counts.rs`
//! every nonce-count statement, `failures.rs` the shared failure counts.

#[cfg(any(feature = "sqlite", feature = "mysql"))]
use std::time::Duration;

use rocket::figment::Figment;

use super::StoreError;
use super::StoreOptions;

mod counts;
mod failures;
mod tokens;

pub use counts::{DEFAULT_MYSQL_NC_LEASE, DEFAULT_SQLITE_NC_LEASE};

/// The pool the store runs on, of whichever backend.
#[derive(Debug, Clone)]
pub enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// How a backend spells the statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// SQLite and PostgreSQL: `$n` placeholders, `ON CONFLICT`, `RETURNING`.
    Standard,
    /// MySQL 8 and MariaDB: `?` placeholders (bound in order of appearance),
    /// `ON DUPLICATE KEY UPDATE`, no `RETURNING`. Its statements are
    /// compiled, and their placeholders unit-tested, without the feature too.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    MySql,
}

impl Dialect {
    /// `sql`, written with `$1`, `$2`, ... each appearing once and in
    /// increasing order, with this dialect's placeholders.
    pub(super) fn placeholders(self, sql: &str) -> String {
        if self == Dialect::Standard {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len());
        let mut next = 1;
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let number: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
            // A statement that re-uses or reorders parameters would bind the
            // wrong values with `?`: such a statement needs a variant of its own.
            assert_eq!(number, next, "placeholders out of order in: {sql}");
            next += 1;
            out.push('?');
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        out
    }
}

impl Pool {
    fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => Dialect::MySql,
            #[allow(unreachable_patterns)]
            _ => Dialect::Standard,
        }
    }
}

/// A sqlx connection pool the database store can run on:
/// `sqlx::SqlitePool`, `sqlx::PgPool` or `sqlx::MySqlPool`, as the features
/// `sqlite`, `postgres` and `mysql` allow. An app's rocket_db_pools database
/// of one of these types can hold the crate's tables
/// ([`DigestAuth::with_database`](crate::DigestAuth::with_database)), and
/// [`DigestAuth::pool`](crate::DigestAuth::pool) hands out the pool in use.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a pool the Digest database store can run on",
    note = "use a database whose pool is `sqlx::SqlitePool`, `sqlx::PgPool` or `sqlx::MySqlPool`, \
            with the crate feature `sqlite`, `postgres` or `mysql`"
)]
pub trait SqlPool: Clone + Send + Sync + 'static {
    /// This pool, for the store.
    #[doc(hidden)]
    fn to_store_pool(&self) -> Pool;
    /// The store's pool, when it is of this type.
    #[doc(hidden)]
    fn of_store_pool(pool: &Pool) -> Option<&Self>;
}

macro_rules! sql_pool {
    ($feature:literal, $ty:ty, $variant:ident) => {
        #[cfg(feature = $feature)]
        impl SqlPool for $ty {
            fn to_store_pool(&self) -> Pool {
                Pool::$variant(self.clone())
            }
            fn of_store_pool(pool: &Pool) -> Option<&Self> {
                match pool {
                    Pool::$variant(p) => Some(p),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}
sql_pool!("sqlite", sqlx::SqlitePool, Sqlite);
sql_pool!("postgres", sqlx::PgPool, Postgres);
sql_pool!("mysql", sqlx::MySqlPool, MySql);

/// Runs `$body` with `$p` bound to whichever pool this is: the SQL is shared,
/// the row and executor types are not.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($p) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => $body,
            #[cfg(feature = "mysql")]
            Pool::MySql($p) => $body,
        }
    };
}
use with_pool;

/// Tokens and nonce counts in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
    options: StoreOptions,
    counts: counts::Counts,
}

/// Refuses a connection SQLite opened read-only. Opening `mode=rwc` while the
/// file cannot be written silently falls back to read-only, and such a
/// connection would keep failing every claim (503) long after the file is
/// writable again. The statement deletes nothing; a refused connection makes
/// the pool retry within its acquire timeout.
#[cfg(feature = "sqlite")]
async fn refuse_read_only(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    const SQLITE_READONLY: i32 = 8;
    match sqlx::query("DELETE FROM digest_auth_nonce_counts WHERE 0")
        .execute(conn)
        .await
    {
        Err(sqlx::Error::Database(e))
            if e.code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == SQLITE_READONLY) =>
        {
            Err(sqlx::Error::Database(e))
        }
        // Anything else (no table yet, before the migrations) is not our concern here.
        _ => Ok(()),
    }
}

impl SqlStore {
    /// Connects with a rocket_db_pools configuration (the figment focused on
    /// `databases.digest_auth`, defaults joined in), runs the migrations and
    /// refreshes userhash values for the realm.
    ///
    /// The backend follows the URL: `sqlite://...`, `postgres://...`, or
    /// `mysql://...` (also `mariadb://...`).
    pub async fn connect(figment: &Figment, options: StoreOptions) -> Result<SqlStore, StoreError> {
        let config: rocket_db_pools::Config = figment.extract().map_err(StoreError::new)?;
        let url = config.url.as_str();
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::postgres(figment).await?
        } else if url.starts_with("sqlite:") {
            Self::sqlite(&config).await?
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Self::mysql(&config).await?
        } else {
            return Err(StoreError::new(format!(
                "unsupported database URL `{url}`: expected sqlite://..., postgres://... \
                 or mysql://..."
            )));
        };
        Self::on_pool(pool, options).await
    }

    /// The store over a pool the app opened (its rocket_db_pools database):
    /// runs the crate's migrations there and refreshes userhash values for
    /// the realm. The crate's tables all start with `digest_auth_`, and its
    /// migrations are recorded in `digest_auth_migrations`, apart from the
    /// app's own sqlx migrations (`_sqlx_migrations`).
    ///
    /// The pool's own settings apply: on SQLite the store's connections
    /// otherwise run in WAL mode with `synchronous=NORMAL`, and on MySQL at
    /// `READ COMMITTED`, which keeps instances leasing counts of one nonce
    /// from deadlocking each other.
    pub async fn from_pool(
        pool: &impl SqlPool,
        options: StoreOptions,
    ) -> Result<SqlStore, StoreError> {
        Self::on_pool(pool.to_store_pool(), options).await
    }

    async fn on_pool(pool: Pool, options: StoreOptions) -> Result<SqlStore, StoreError> {
        let nc_lease = options.nc_lease.unwrap_or(counts::default_nc_lease(&pool));
        let store = SqlStore {
            counts: counts::Counts::new(&pool, nc_lease),
            pool,
            options,
        };
        store.migrate().await?;
        store.agree_on_nc_lease(nc_lease).await?;
        store.refresh_userhashes().await?;
        Ok(store)
    }

    /// The pool this store runs on, when it is a `P`
    /// (`sqlx::SqlitePool`, `sqlx::PgPool`, `sqlx::MySqlPool`).
    pub fn pool<P: SqlPool>(&self) -> Option<&P> {
        P::of_store_pool(&self.pool)
    }

    /// Connects to `url` with rocket_db_pools' defaults (tests, tools).
    pub async fn connect_url(url: &str, options: StoreOptions) -> Result<SqlStore, StoreError> {
        let figment = Figment::new()
            .merge(("url", url))
            .merge(("max_connections", 16))
            .merge(("connect_timeout", 5));
        Self::connect(&figment, options).await
    }

    #[cfg(feature = "sqlite")]
    async fn sqlite(config: &rocket_db_pools::Config) -> Result<Pool, StoreError> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        use sqlx::ConnectOptions;
        use std::str::FromStr;

        // Built here rather than by rocket_db_pools so that every connection
        // gets WAL with synchronous=NORMAL: one fsync per checkpoint, not per
        // counter insert, which is what makes a write per request affordable.
        let opts = SqliteConnectOptions::from_str(&config.url)?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(config.connect_timeout))
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .disable_statement_logging();
        // Each connection to `sqlite::memory:` is its own database: keep one.
        let in_memory = config.url.contains(":memory:") || config.url.contains("mode=memory");
        let file = opts.clone().get_filename();
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if !in_memory && !dir.is_dir() {
            return Err(StoreError::new(format!(
                "cannot open the SQLite database `{}`: the directory `{}` does not exist",
                file.display(),
                dir.display()
            )));
        }
        let open_error = |e: sqlx::Error| {
            StoreError::new(format!(
                "cannot open the SQLite database `{}` (its directory `{}` must be writable): {e}",
                file.display(),
                dir.display()
            ))
        };
        let max = if in_memory {
            1
        } else {
            config.max_connections as u32
        };
        let pool = sqlx::pool::PoolOptions::new()
            .max_connections(max)
            .min_connections(if in_memory {
                1
            } else {
                config.min_connections.unwrap_or_default()
            })
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .idle_timeout(if in_memory {
                None
            } else {
                config.idle_timeout.map(Duration::from_secs)
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(30 * 60))
            })
            .after_connect(|conn, _| Box::pin(refuse_read_only(conn)))
            .connect_with(opts)
            .await
            .map_err(open_error)?;
        Ok(Pool::Sqlite(pool))
    }

    #[cfg(not(feature = "sqlite"))]
    async fn sqlite(_: &rocket_db_pools::Config) -> Result<Pool, StoreError> {
        Err(StoreError::new("SQLite support needs the `sqlite` feature"))
    }

    #[cfg(feature = "postgres")]
    async fn postgres(figment: &Figment) -> Result<Pool, StoreError> {
        let pool = <sqlx::PgPool as rocket_db_pools::Pool>::init(figment)
            .await
            .map_err(|e| StoreError::new(format!("{e:?}")))?;
        Ok(Pool::Postgres(pool))
    }

    #[cfg(not(feature = "postgres"))]
    async fn postgres(_: &Figment) -> Result<Pool, StoreError> {
        Err(StoreError::new(
            "PostgreSQL support needs the `postgres` feature",
        ))
    }

    #[cfg(feature = "mysql")]
    async fn mysql(config: &rocket_db_pools::Config) -> Result<Pool, StoreError> {
        use sqlx::mysql::MySqlConnectOptions;
        use sqlx::{ConnectOptions, Executor};
        use std::str::FromStr;

        let opts = MySqlConnectOptions::from_str(&config.url)?.disable_statement_logging();
        let pool = sqlx::pool::PoolOptions::new()
            .max_connections(config.max_connections as u32)
            .min_connections(config.min_connections.unwrap_or_default())
            .acquire_timeout(Duration::from_secs(config.connect_timeout))
            .idle_timeout(config.idle_timeout.map(Duration::from_secs))
            .after_connect(|conn: &mut sqlx::MySqlConnection, _| {
                Box::pin(async move {
                    // READ COMMITTED: the group and lease statements read the
                    // tables they insert into; under REPEATABLE READ those reads
                    // take next-key locks, and two instances inserting counts of
                    // one nonce deadlock on each other's gap locks. Strict mode:
                    // a value too long for its column is an error, never cut.
                    conn.execute(
                        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; \
                         SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                    )
                    .await
                    .map(drop)
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Pool::MySql(pool))
    }

    #[cfg(not(feature = "mysql"))]
    async fn mysql(_: &rocket_db_pools::Config) -> Result<Pool, StoreError> {
        Err(StoreError::new(
            "MySQL and MariaDB support needs the `mysql` feature",
        ))
    }

    /// Runs the crate's migrations not yet recorded in
    /// [`MIGRATIONS_TABLE`]. A database migrated when the crate recorded its
    /// migrations in sqlx's `_sqlx_migrations` carries on: those records are
    /// copied over first, and nothing runs twice.
    async fn migrate(&self) -> Result<(), StoreError> {
        // Instances starting together must migrate once: a lock held by the
        // session (PostgreSQL: an advisory lock; MySQL: `GET_LOCK`, as
        // MariaDB has no waiting without a timeout; SQLite: the write lock of
        // one transaction around the run). Migrating runs on a
        // connection of its own, closed when it failed, so that no pooled
        // connection keeps a lock.
        let sql = MigrationSql::of(&self.pool);
        let record = self.pool.dialect().placeholders(
            "INSERT INTO digest_auth_migrations (version, description, checksum) \
             VALUES ($1, $2, $3)",
        );
        with_pool!(&self.pool, p => {
            let migrator = match self.pool {
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(_) => sqlx::migrate!("migrations/sqlite"),
                #[cfg(feature = "postgres")]
                Pool::Postgres(_) => sqlx::migrate!("migrations/postgres"),
                #[cfg(feature = "mysql")]
                Pool::MySql(_) => sqlx::migrate!("migrations/mysql"),
            };
            let mut conn = p.acquire().await?;
            let migrated: Result<(), StoreError> = async {
                match sql.lock {
                    Lock::Waits(lock, _) | Lock::Transaction(lock, _) => {
                        sqlx::query(lock).execute(&mut *conn).await?;
                    }
                    Lock::Answers(lock, _) => {
                        let locked: Option<i64> =
                            sqlx::query_scalar(lock).fetch_one(&mut *conn).await?;
                        if locked != Some(1) {
                            return Err(StoreError::new(
                                "another instance has been migrating this database for a minute",
                            ));
                        }
                    }
                }
                sqlx::query(sql.create_table).execute(&mut *conn).await?;
                let mut applied: Vec<(i64, Vec<u8>)> =
                    sqlx::query_as("SELECT version, checksum FROM digest_auth_migrations")
                        .fetch_all(&mut *conn)
                        .await?;
                let by_sqlx: i64 = sqlx::query_scalar(sql.sqlx_table_exists)
                    .fetch_one(&mut *conn)
                    .await?;
                if applied.is_empty() && by_sqlx > 0 {
                    let sqlx_records: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                        "SELECT version, checksum FROM _sqlx_migrations WHERE success",
                    )
                    .fetch_all(&mut *conn)
                    .await?;
                    for (version, checksum) in sqlx_records {
                        let Some(ours) = migrator.iter().find(|m| m.version == version) else {
                            continue; // the app's own migration
                        };
                        sqlx::query(&record)
                            .bind(version)
                            .bind(&*ours.description)
                            .bind(&checksum)
                            .execute(&mut *conn)
                            .await?;
                        applied.push((version, checksum));
                    }
                }
                for migration in migrator.iter().filter(|m| !m.migration_type.is_down_migration()) {
                    if let Some((_, checksum)) = applied.iter().find(|(v, _)| *v == migration.version) {
                        if checksum[..] != migration.checksum[..] {
                            return Err(StoreError::new(format!(
                                "migration {} ({}) was applied to this database in another \
                                 version; the tables do not match this build of the crate",
                                migration.version, migration.description
                            )));
                        }
                        continue;
                    }
                    // A migration and its record go together: in the run's
                    // transaction (SQLite), or in one of their own.
                    macro_rules! apply {
                        ($on:expr) => {{
                            sqlx::Executor::execute(&mut *$on, &*migration.sql)
                                .await
                                .map_err(|e| {
                                    StoreError::new(format!(
                                        "migration {} ({}) failed: {e}",
                                        migration.version, migration.description
                                    ))
                                })?;
                            sqlx::query(&record)
                                .bind(migration.version)
                                .bind(&*migration.description)
                                .bind(&*migration.checksum)
                                .execute(&mut *$on)
                                .await?;
                        }};
                    }
                    if let Lock::Transaction(..) = sql.lock {
                        apply!(conn);
                    } else {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        apply!(tx);
                        tx.commit().await?;
                    }
                }
                match sql.lock {
                    Lock::Waits(_, unlock) | Lock::Answers(_, unlock) | Lock::Transaction(_, unlock) => {
                        sqlx::query(unlock).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            }
            .await;
            if migrated.is_err() {
                let _ = sqlx::Connection::close(conn.detach()).await;
            }
            migrated
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await)
    }
}

/// The table recording which of the crate's migrations ran, apart from the
/// app's own sqlx migrations (`_sqlx_migrations`) in a shared database.
pub const MIGRATIONS_TABLE: &str = "digest_auth_migrations";

/// How a migration run serializes with other instances'.
enum Lock {
    /// SQLite: the run is one write transaction, begun by taking the write
    /// lock (`BEGIN IMMEDIATE` waits for another writer), so an instance
    /// reads what was recorded only once another's run has committed.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Transaction(&'static str, &'static str),
    /// Taking it waits as long as it takes (PostgreSQL); then releasing it.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Waits(&'static str, &'static str),
    /// Taking it answers 1 once taken (MySQL, within a minute); then releasing it.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    Answers(&'static str, &'static str),
}

/// The statements of a migration run that differ per backend.
struct MigrationSql {
    create_table: &'static str,
    /// Answers a positive count when sqlx's `_sqlx_migrations` exists.
    sqlx_table_exists: &'static str,
    lock: Lock,
}

impl MigrationSql {
    fn of(pool: &Pool) -> MigrationSql {
        match pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => MigrationSql {
                create_table: "CREATE TABLE IF NOT EXISTS digest_auth_migrations (\
                    version BIGINT PRIMARY KEY NOT NULL, description TEXT NOT NULL, \
                    checksum BLOB NOT NULL, \
                    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                sqlx_table_exists: "SELECT COUNT(*) FROM sqlite_master \
                    WHERE type = 'table' AND name = '_sqlx_migrations'",
                lock: Lock::Transaction("BEGIN IMMEDIATE", "COMMIT"),
            },
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => MigrationSql {
                create_table: "CREATE TABLE IF NOT EXISTS digest_auth_migrations (\
                    version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
                    checksum BYTEA NOT NULL, \
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                // On the search path, where sqlx creates it.
                sqlx_table_exists: "SELECT CAST(CASE WHEN to_regclass('_sqlx_migrations') \
                    IS NULL THEN 0 ELSE 1 END AS BIGINT)",
                lock: Lock::Waits(
                    "SELECT pg_advisory_lock(hashtext('digest_auth_migrate_' || current_database()))",
                    "SELECT pg_advisory_unlock(hashtext('digest_auth_migrate_' || current_database()))",
                ),
            },
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => MigrationSql {
                create_table: "CREATE TABLE IF NOT EXISTS digest_auth_migrations (\
                    version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
                    checksum BLOB NOT NULL, \
                    applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                sqlx_table_exists: "SELECT COUNT(*) FROM information_schema.tables \
                    WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
                // Lock names are server-wide and at most 64 characters: the
                // database's name is hashed in.
                lock: Lock::Answers(
                    "SELECT GET_LOCK(CONCAT('digest_auth_migrate_', MD5(DATABASE())), 60)",
                    "DO RELEASE_LOCK(CONCAT('digest_auth_migrate_', MD5(DATABASE())))",
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn mysql_placeholders_are_bound_in_order() {
        let sql = "SELECT a FROM t WHERE b = $1 AND c > $2 LIMIT $3";
        assert_eq!(Dialect::Standard.placeholders(sql), sql);
        assert_eq!(
            Dialect::MySql.placeholders(sql),
            "SELECT a FROM t WHERE b = ? AND c > ? LIMIT ?"
        );
        assert_eq!(Dialect::MySql.placeholders("SELECT 1"), "SELECT 1");
    }

    #[test]
    #[should_panic(expected = "placeholders out of order")]
    fn a_reused_placeholder_cannot_be_translated() {
        Dialect::MySql.placeholders("SELECT $1 WHERE x = $1");
    }
}
