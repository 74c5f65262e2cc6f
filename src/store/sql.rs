//! The database store: tokens and nonce counts in SQLite (default) or
//! PostgreSQL (feature `postgres`), pooled through rocket_db_pools'
//! configuration and migrated at ignite.
//!
//! Both backends run the same SQL (`$n` placeholders work in both); only the
//! pool type and the expired-row cleanup differ.
//!
//! Nonce counts are decided one of two ways, per database (`nc_lease`,
//! recorded in `digest_auth_settings`): by leasing blocks of counts and
//! deciding them in memory (see `lease.rs`; SQLite's default), or by one
//! row per accepted count (PostgreSQL's default), group-committed: see
//! `group_commit.rs`.

#[cfg(feature = "sqlite")]
use std::time::Duration;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use rocket::figment::Figment;
use sqlx::Row;

use super::group_commit::{GroupCommit, WriterPool};
use super::lease::LeaseBook;
use super::{
    generate_token, Claim, Credential, CredentialStore, HashFunction, NonceCountStore, Secret,
    StoreError, StoreOptions, TokenAdmin,
};

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

/// Tokens and nonce counts in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
    options: StoreOptions,
    counts: Counts,
}

/// How this store decides nonce counts (`nc_lease`).
#[derive(Debug, Clone)]
enum Counts {
    /// `nc_lease` > 0: in memory, under leases of blocks of counts.
    Leased(Arc<LeaseBook>),
    /// `nc_lease = 0`: a row per accepted count, committed in groups by one
    /// writer task.
    Rows(GroupCommit),
}

/// Takes the lease of counts `[$2, $3]` of nonce `$1` for owner `$4`.
/// Refused when any lease overlaps it (one made with
/// another `nc_lease`) or when the nonce has row-by-row claims.
const TAKE_LEASE: &str = "INSERT INTO digest_auth_nonce_leases \
     (nonce, first_nc, last_nc, owner, expires_at) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE NOT EXISTS (SELECT 1 FROM digest_auth_nonce_leases \
         WHERE nonce = $1 AND first_nc <= $3 AND last_nc >= $2) \
     AND NOT EXISTS (SELECT 1 FROM digest_auth_nonce_counts WHERE nonce = $1) \
     ON CONFLICT DO NOTHING";

/// The default `nc_lease` on SQLite; PostgreSQL defaults to 0 (no leases).
pub const DEFAULT_SQLITE_NC_LEASE: u32 = 256;

const SELECT_CREDENTIAL: &str =
    "SELECT username, token, ha1_md5, ha1_sha256, ha1_sha512_256, created_at FROM digest_auth_tokens";

const UPSERT_TOKEN: &str = "INSERT INTO digest_auth_tokens (username, token, ha1_md5, ha1_sha256, \
     ha1_sha512_256, userhash_realm, userhash_md5, userhash_sha256, userhash_sha512_256, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (username) DO UPDATE SET token = excluded.token, ha1_md5 = excluded.ha1_md5, \
     ha1_sha256 = excluded.ha1_sha256, ha1_sha512_256 = excluded.ha1_sha512_256, \
     userhash_realm = excluded.userhash_realm, userhash_md5 = excluded.userhash_md5, \
     userhash_sha256 = excluded.userhash_sha256, userhash_sha512_256 = excluded.userhash_sha512_256, \
     created_at = excluded.created_at";

const SET_USERHASHES: &str =
    "UPDATE digest_auth_tokens SET userhash_realm = $2, userhash_md5 = $3, \
     userhash_sha256 = $4, userhash_sha512_256 = $5 WHERE username = $1";

const DELETE_EXPIRED: [&str; 2] = [
    "DELETE FROM digest_auth_nonce_counts WHERE expires_at <= $1",
    "DELETE FROM digest_auth_nonce_leases WHERE expires_at <= $1",
];

/// Key of the PostgreSQL advisory lock that lets one instance at a time clean up.
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

#[cfg(feature = "postgres")]
const CLEANUP_LOCK: i64 = 0x0d16_e57a_0000_0001;

fn userhash_column(hash: HashFunction) -> &'static str {
    match hash {
        HashFunction::Md5 => "userhash_md5",
        HashFunction::Sha256 => "userhash_sha256",
        HashFunction::Sha512_256 => "userhash_sha512_256",
    }
}

macro_rules! credential_from_row {
    ($row:expr) => {{
        let row = $row;
        let username: String = row.try_get("username")?;
        let token: Option<String> = row.try_get("token")?;
        let secret = match token {
            Some(token) => Secret::Token(token),
            None => Secret::Ha1 {
                md5: row.try_get("ha1_md5")?,
                sha256: row.try_get("ha1_sha256")?,
                sha512_256: row.try_get("ha1_sha512_256")?,
            },
        };
        let created_at: i64 = row.try_get("created_at")?;
        Credential {
            username,
            secret,
            created_at: Utc.timestamp_opt(created_at, 0).single(),
        }
    }};
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
        let nc_lease = options.nc_lease.unwrap_or(match &pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => DEFAULT_SQLITE_NC_LEASE,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => 0,
        });
        let counts = if nc_lease > 0 {
            Counts::Leased(Arc::new(LeaseBook::new(nc_lease, options.nc_window)))
        } else {
            let writer = match &pool {
                #[cfg(feature = "sqlite")]
                Pool::Sqlite(p) => WriterPool::Sqlite(p.clone()),
                #[cfg(feature = "postgres")]
                Pool::Postgres(p) => WriterPool::Postgres(p.clone()),
            };
            Counts::Rows(GroupCommit::start(writer, options.nc_window))
        };
        let store = SqlStore {
            pool,
            options,
            counts,
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

    /// Records `nc_lease` in the database, or checks it against the value
    /// recorded there: instances that leased blocks and instances that claim
    /// row by row must never decide the same nonce side by side.
    async fn agree_on_nc_lease(&self, nc_lease: u32) -> Result<(), StoreError> {
        let recorded: i64 = with_pool!(&self.pool, p => {
            sqlx::query(
                "INSERT INTO digest_auth_settings (name, value) VALUES ('nc_lease', $1) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(i64::from(nc_lease))
            .execute(p)
            .await?;
            sqlx::query_scalar("SELECT value FROM digest_auth_settings WHERE name = 'nc_lease'")
                .fetch_one(p)
                .await?
        });
        if recorded == i64::from(nc_lease) {
            return Ok(());
        }
        Err(StoreError::new(format!(
            "`digest_auth.nc_lease` is {nc_lease} here, but this database is used with \
             nc_lease = {recorded} (recorded by the first instance that opened it): every \
             instance sharing a database must use the same value. To change it, stop every \
             instance, run `DELETE FROM digest_auth_settings WHERE name = 'nc_lease'` and \
             start them with the new value"
        )))
    }

    /// Recomputes the userhash columns of rows made for another realm.
    async fn refresh_userhashes(&self) -> Result<(), StoreError> {
        let realm = self.options.realm.as_str();
        with_pool!(&self.pool, p => {
            // HA1-only rows were made for their realm and cannot be moved to
            // another: they keep it as evidence and are reported.
            let stale = sqlx::query(
                "SELECT COUNT(*) AS n FROM digest_auth_tokens \
                 WHERE token IS NULL AND userhash_realm <> $1",
            )
            .bind(realm)
            .fetch_one(p)
            .await?
            .try_get::<i64, _>("n")?;
            if stale > 0 {
                rocket::warn!(
                    "digest_auth: {stale} user(s) have HA1-only secrets made for another realm \
                     than `{realm}`; they cannot sign in until their tokens are issued again"
                );
            }
            let rows = sqlx::query(
                "SELECT username FROM digest_auth_tokens \
                 WHERE token IS NOT NULL AND (userhash_realm IS NULL OR userhash_realm <> $1)",
            )
            .bind(realm)
            .fetch_all(p)
            .await?;
            for row in rows {
                let username: String = row.try_get("username")?;
                let [md5, sha256, sha512] =
                    HashFunction::ALL.map(|h| self.options.userhash(h, &username));
                sqlx::query(SET_USERHASHES)
                    .bind(&username)
                    .bind(realm)
                    .bind(md5)
                    .bind(sha256)
                    .bind(sha512)
                    .execute(p)
                    .await?;
            }
            Ok(())
        })
    }

    /// How many (nonce, cnonce, nc) records the store holds.
    pub async fn nonce_records(&self) -> Result<i64, StoreError> {
        self.count_rows("SELECT COUNT(*) FROM digest_auth_nonce_counts")
            .await
    }

    /// How many leases of blocks of counts the store holds.
    pub async fn nonce_leases(&self) -> Result<i64, StoreError> {
        self.count_rows("SELECT COUNT(*) FROM digest_auth_nonce_leases")
            .await
    }

    async fn count_rows(&self, sql: &'static str) -> Result<i64, StoreError> {
        with_pool!(&self.pool, p => Ok(sqlx::query_scalar(sql).fetch_one(p).await?))
    }

    /// Takes the block `[first, last]` of `nonce` for `owner` if nobody
    /// has it; whether it is `owner`'s afterwards. Decided by reading the row
    /// back rather than by the insert's row count, so a take that committed
    /// although its caller saw an error (a busy database, a timeout) is
    /// recognised as ours by the retry.
    async fn take_lease(
        &self,
        owner: i64,
        nonce: &str,
        first: u32,
        last: u32,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        with_pool!(&self.pool, p => {
            sqlx::query(TAKE_LEASE)
                .bind(nonce)
                .bind(i64::from(first))
                .bind(i64::from(last))
                .bind(owner)
                .bind(expires_at)
                .execute(p)
                .await?;
            let holder: Option<i64> = sqlx::query_scalar(
                "SELECT owner FROM digest_auth_nonce_leases WHERE nonce = $1 AND first_nc = $2",
            )
            .bind(nonce)
            .bind(i64::from(first))
            .fetch_optional(p)
            .await?;
            Ok(holder == Some(owner))
        })
    }

    /// Closes the pool.
    pub async fn close(&self) {
        with_pool!(&self.pool, p => p.close().await)
    }
}

#[rocket::async_trait]
impl CredentialStore for SqlStore {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        with_pool!(&self.pool, p => {
            let sql = format!("{SELECT_CREDENTIAL} WHERE username = $1");
            match sqlx::query(&sql).bind(username).fetch_optional(p).await? {
                Some(row) => Ok(Some(credential_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    async fn credentials_version(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(&self.pool, p => {
            let version: i64 = sqlx::query_scalar(
                "SELECT version FROM digest_auth_tokens_version WHERE id = 1",
            )
            .fetch_one(p)
            .await?;
            Ok(Some(version))
        })
    }

    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let sql = format!(
            "{SELECT_CREDENTIAL} WHERE {} = $1 AND userhash_realm = $2",
            userhash_column(hash)
        );
        with_pool!(&self.pool, p => {
            let row = sqlx::query(&sql)
                .bind(userhash)
                .bind(&self.options.realm)
                .fetch_optional(p)
                .await?;
            match row {
                Some(row) => Ok(Some(credential_from_row!(row))),
                None => Ok(None),
            }
        })
    }
}

#[rocket::async_trait]
impl NonceCountStore for SqlStore {
    async fn claim(
        &self,
        nonce: &str,
        cnonce: &str,
        nc: u32,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        match &self.counts {
            Counts::Leased(leases) => {
                let owner = leases.owner();
                let take = |first, last| self.take_lease(owner, nonce, first, last, expires_at);
                leases.claim(nonce, cnonce, nc, expires_at, take).await
            }
            Counts::Rows(group_commit) => group_commit.claim(nonce, cnonce, nc, expires_at).await,
        }
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        // The database first: a lease forgotten here while its row remains
        // can only be refused, never taken twice.
        let removed = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                let mut n = 0;
                for sql in DELETE_EXPIRED {
                    n += sqlx::query(sql).bind(now).execute(p).await?.rows_affected();
                }
                n
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                // One instance cleans at a time; the others skip this round
                // instead of deleting the same rows and waiting on each other.
                let mut tx = p.begin().await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                    .bind(CLEANUP_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut n = 0;
                if locked {
                    for sql in DELETE_EXPIRED {
                        n += sqlx::query(sql)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    tx.commit().await?;
                }
                n
            }
        };
        if let Counts::Leased(leases) = &self.counts {
            leases.remove_expired(now);
        }
        Ok(removed)
    }
}

#[rocket::async_trait]
impl TokenAdmin for SqlStore {
    async fn issue_token(&self, username: &str) -> Result<String, StoreError> {
        let token = generate_token();
        let o = &self.options;
        // In HA1-only mode the token is returned once and never stored.
        let (stored, [ha1_md5, ha1_sha256, ha1_sha512]) = if o.ha1_only {
            (
                None,
                Secret::ha1_values(username, &o.realm, &token).map(Some),
            )
        } else {
            (Some(token.clone()), [None, None, None])
        };
        let [uh_md5, uh_sha256, uh_sha512] = HashFunction::ALL.map(|h| o.userhash(h, username));
        with_pool!(&self.pool, p => {
            sqlx::query(UPSERT_TOKEN)
                .bind(username)
                .bind(&stored)
                .bind(&ha1_md5)
                .bind(&ha1_sha256)
                .bind(&ha1_sha512)
                .bind(&o.realm)
                .bind(&uh_md5)
                .bind(&uh_sha256)
                .bind(&uh_sha512)
                .bind(Utc::now().timestamp())
                .execute(p)
                .await?;
        });
        Ok(token)
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        with_pool!(&self.pool, p => {
            let done = sqlx::query("DELETE FROM digest_auth_tokens WHERE username = $1")
                .bind(username)
                .execute(p)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
