//! The database store's [`FailureStore`]: one row per (user, client address)
//! pair in `digest_auth_failures`, judged by the database's clock.
//!
//! A failure is one upsert that starts a new window when the row's has
//! ended, or adds one, and returns the count: PostgreSQL and SQLite with
//! `RETURNING`; MySQL, which has none, in a transaction whose read-back sees
//! the row the upsert still holds locked. `locked_at` is set when the count
//! reaches `max_failures`, so that instances can poll for new locks through
//! an index. Rows go when their windows end (the poll deletes them now and
//! then).

use std::sync::OnceLock;

use super::{with_pool, Pool, SqlStore};
use crate::store::failures::{FailureCount, FailureKey, FailureStore, Locks};
use crate::store::StoreError;

const TABLE: &str = "digest_auth_failures";

/// The failure statements of one backend.
struct FailureSql {
    /// Binds the pair, the window and `max_failures`; returns the count and
    /// the seconds left (Standard). MySQL binds the pair, the window, then
    /// `max_failures` three times, then the window.
    record: String,
    /// MySQL: the count and seconds left of the pair just recorded.
    read_back: Option<String>,
    failures: String,
    reset: String,
    locked_since: String,
    remove_expired: String,
}

/// The database's clock in whole unix seconds, as a signed integer.
fn clock(pool: &Pool) -> &'static str {
    match pool {
        #[cfg(feature = "sqlite")]
        Pool::Sqlite(_) => "unixepoch()",
        #[cfg(feature = "postgres")]
        Pool::Postgres(_) => "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)",
        // UNIX_TIMESTAMP() is unsigned: a difference below zero would be an error.
        #[cfg(feature = "mysql")]
        Pool::MySql(_) => "CAST(UNIX_TIMESTAMP() AS SIGNED)",
    }
}

impl FailureSql {
    /// The statements of `pool`'s backend: the one place where they differ.
    fn of(pool: &Pool) -> &'static FailureSql {
        #[cfg(feature = "sqlite")]
        static SQLITE: OnceLock<FailureSql> = OnceLock::new();
        #[cfg(feature = "postgres")]
        static POSTGRES: OnceLock<FailureSql> = OnceLock::new();
        #[cfg(feature = "mysql")]
        static MYSQL: OnceLock<FailureSql> = OnceLock::new();
        let (cell, mysql) = match pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => (&SQLITE, false),
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => (&POSTGRES, false),
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => (&MYSQL, true),
        };
        let now = clock(pool);
        cell.get_or_init(|| {
            let left = format!("window_end - {now}");
            let (record, read_back, param) = if mysql {
                // Assignments run left to right, each seeing the ones before:
                // `failures` is the new count from the second on, and 1 only
                // when the window started afresh.
                let record = format!(
                    "INSERT INTO {TABLE} (pair, failures, window_end, locked_at) \
                     VALUES (?, 1, {now} + ?, IF(? <= 1, {now}, NULL)) \
                     ON DUPLICATE KEY UPDATE \
                     failures = IF(window_end <= {now}, 1, failures + 1), \
                     locked_at = IF(failures = ?, {now}, IF(failures < ?, NULL, locked_at)), \
                     window_end = IF(failures = 1, {now} + ?, window_end)"
                );
                let read_back = format!("SELECT failures, {left} FROM {TABLE} WHERE pair = ?");
                (record, Some(read_back), "?")
            } else {
                let old = |column: &str| format!("{TABLE}.{column}");
                let expired = format!("{} <= {now}", old("window_end"));
                let count = format!(
                    "(CASE WHEN {expired} THEN 1 ELSE {} + 1 END)",
                    old("failures")
                );
                let record = format!(
                    "INSERT INTO {TABLE} (pair, failures, window_end, locked_at) \
                     VALUES ($1, 1, {now} + CAST($2 AS BIGINT), \
                         CASE WHEN CAST($3 AS BIGINT) <= 1 THEN {now} END) \
                     ON CONFLICT (pair) DO UPDATE SET \
                     failures = {count}, \
                     window_end = CASE WHEN {expired} THEN {now} + CAST($2 AS BIGINT) \
                         ELSE {window_end} END, \
                     locked_at = CASE WHEN {count} = CAST($3 AS BIGINT) THEN {now} \
                         WHEN {count} < CAST($3 AS BIGINT) THEN NULL ELSE {locked_at} END \
                     RETURNING failures, {left}",
                    window_end = old("window_end"),
                    locked_at = old("locked_at"),
                );
                (record, None, "$1")
            };
            FailureSql {
                record,
                read_back,
                failures: format!(
                    "SELECT failures, {left} FROM {TABLE} WHERE pair = {param} \
                     AND window_end > {now}"
                ),
                reset: format!(
                    "DELETE FROM {TABLE} WHERE pair = {param} \
                     AND (failures < {} OR window_end <= {now})",
                    if mysql { "?" } else { "CAST($2 AS BIGINT)" }
                ),
                // One row always, for the clock; a pair per lock when any.
                locked_since: format!(
                    "SELECT {now}, f.pair, f.window_end - {now} \
                     FROM (SELECT 1 AS one) AS d LEFT JOIN {TABLE} AS f \
                     ON f.locked_at >= {param} AND f.window_end > {now}"
                ),
                remove_expired: format!("DELETE FROM {TABLE} WHERE window_end <= {now}"),
            }
        })
    }
}

fn count_of((failures, left): (i64, i64)) -> FailureCount {
    FailureCount::from_signed(failures, left)
}

fn as_i64(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[rocket::async_trait]
impl FailureStore for SqlStore {
    async fn record_failure(
        &self,
        key: FailureKey,
        window: u64,
        max_failures: u32,
    ) -> Result<FailureCount, StoreError> {
        let sql = FailureSql::of(&self.pool);
        let pair: &[u8] = key.as_bytes();
        let (window, max) = (as_i64(window), i64::from(max_failures));
        let row: (i64, i64) = match &sql.read_back {
            // Every row fetched: SQLite commits a statement with RETURNING
            // only once it has run to its end, not when its first row is read.
            None => with_pool!(&self.pool, p => {
                let rows: Vec<(i64, i64)> = sqlx::query_as(&sql.record)
                    .bind(pair)
                    .bind(window)
                    .bind(max)
                    .fetch_all(p)
                    .await?;
                rows.into_iter()
                    .next()
                    .ok_or_else(|| StoreError::new("a failure upsert returned no row"))?
            }),
            Some(read_back) => with_pool!(&self.pool, p => {
                let mut tx = p.begin().await?;
                sqlx::query(&sql.record)
                    .bind(pair)
                    .bind(window)
                    .bind(max)
                    .bind(max)
                    .bind(max)
                    .bind(window)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query_as(read_back).bind(pair).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                row
            }),
        };
        Ok(count_of(row))
    }

    async fn failures(&self, key: FailureKey) -> Result<FailureCount, StoreError> {
        let sql = FailureSql::of(&self.pool);
        let row: Option<(i64, i64)> = with_pool!(&self.pool, p => {
            sqlx::query_as(&sql.failures)
                .bind(&key.as_bytes()[..])
                .fetch_optional(p)
                .await?
        });
        Ok(row.map_or(FailureCount::NONE, count_of))
    }

    async fn reset(&self, key: FailureKey, max_failures: u32) -> Result<(), StoreError> {
        let sql = FailureSql::of(&self.pool);
        with_pool!(&self.pool, p => {
            sqlx::query(&sql.reset)
                .bind(&key.as_bytes()[..])
                .bind(i64::from(max_failures))
                .execute(p)
                .await
                .map(drop)?
        });
        Ok(())
    }

    async fn locked_since(&self, since: i64) -> Result<Locks, StoreError> {
        let sql = FailureSql::of(&self.pool);
        let rows: Vec<(i64, Option<Vec<u8>>, Option<i64>)> = with_pool!(&self.pool, p => {
            sqlx::query_as(&sql.locked_since).bind(since).fetch_all(p).await?
        });
        let now = rows.first().map_or(since, |row| row.0);
        let locked = rows
            .into_iter()
            .filter_map(|(_, pair, left)| {
                let key = FailureKey::from_bytes(&pair?)?;
                Some((key, u64::try_from(left?).unwrap_or(0)))
            })
            .collect();
        Ok(Locks { locked, now })
    }

    async fn remove_expired(&self) -> Result<u64, StoreError> {
        let sql = FailureSql::of(&self.pool);
        let done = with_pool!(&self.pool, p => {
            sqlx::query(&sql.remove_expired).execute(p).await?.rows_affected()
        });
        Ok(done)
    }
}
