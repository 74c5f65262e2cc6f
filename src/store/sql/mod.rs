//! The database store: tokens and nonce counts in SQLite (default) or
//! PostgreSQL (feature `postgres`), pooled through rocket_db_pools'
//! configuration and migrated at ignite.
//!
//! Both backends run the same SQL (`$n` placeholders work in both); only the
//! pool type and the expired-row cleanup differ. `tokens.rs` holds the
//! credential queries, `counts.rs` every nonce-count statement.

#[cfg(feature = "sqlite")]
use std::time::Duration;

use rocket::figment::Figment;

use super::StoreError;
use super::StoreOptions;

mod counts;
mod tokens;

pub use counts::DEFAULT_SQLITE_NC_LEASE;

#[derive(Debug, Clone)]
enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$p` bound to whichever pool this is: the SQL is shared,
/// the row and executor types are not.
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite($p) => $body,
            #[cfg(feature = "postgres")]
            Pool::Postgres($p) => $body,
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
    /// The backend follows the URL: `sqlite://...` or `postgres://...`.
    pub async fn connect(figment: &Figment, options: StoreOptions) -> Result<SqlStore, StoreError> {
        let config: rocket_db_pools::Config = figment.extract().map_err(StoreError::new)?;
        let url = config.url.as_str();
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::postgres(figment).await?
        } else if url.starts_with("sqlite:") {
            Self::sqlite(&config).await?
        } else {
            return Err(StoreError::new(format!(
                "unsupported database URL `{url}`: expected sqlite://... or postgres://..."
            )));
        };
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
            .await?;
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

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx's migrator takes an advisory lock on PostgreSQL, so instances
        // starting together migrate once.
        with_pool!(&self.pool, p => {
            let mut migrator = match self.pool {
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(_) => sqlx::migrate!("migrations/sqlite"),
                #[cfg(feature = "postgres")]
                Pool::Postgres(_) => sqlx::migrate!("migrations/postgres"),
            };
            // The app may keep its own sqlx migrations in the same database.
            migrator.set_ignore_missing(true);
            migrator.run(p).await.map_err(StoreError::new)
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await)
    }
}
