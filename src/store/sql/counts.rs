//! Every nonce-count statement of the database store, side by side: taking a
//! lease, the group statement of the row-per-count mode, the cleanup, and the
//! settings row that keeps every instance of a database to one mode. What
//! the backends spell otherwise ([`Spelling`], and MySQL's variants of the
//! statements it writes differently) is chosen in one place,
//! [`CountSql::of`].
//!
//! Counts are decided one of two ways, per database (`nc_lease`, recorded in
//! `digest_auth_settings`): by leasing blocks of counts and deciding them in
//! memory by the engine ([`LeaseBook`]; SQLite's default), or by one row per
//! accepted count, group-committed ([`Batcher`]; PostgreSQL's default), with
//! a statement that translates the engine's rule
//! ([`NonceCounts::decide`](crate::store::counts::NonceCounts)) to SQL.
//!
//! One clock decides, the database's: every statement that starts keeping a
//! count (a lease take, the group statement) refuses a nonce that has
//! expired by the database's clock or whose `expires_at` lies at or below
//! the watermark `digest_auth_nonce_watermark.deleted_through`, and the
//! cleanup deletes only through the database's clock and raises the
//! watermark over what it deleted, in one transaction (see [`counts`] for
//! the rule). A backend must give [`claimable`] and the cleanup the same
//! meaning: its clock, and a watermark read that a concurrent cleanup cannot
//! slip past (SQLite serialises writers; PostgreSQL and MySQL lock the row).
//!
//! [`counts`]: crate::store::counts

use std::sync::{Arc, OnceLock};

use super::{with_pool, Dialect, Pool, SqlStore};
use crate::protocol::MAX_CLOCK_SKEW_SECS;
use crate::store::counts::batch::{Asked, Batcher};
use crate::store::counts::lease::LeaseBook;
use crate::store::counts::max_entries_per_nonce;
use crate::store::{Claim, ClaimRequest, NonceCountStore, StoreError};

/// The default `nc_lease` on SQLite; PostgreSQL defaults to 0 (no leases).
pub const DEFAULT_SQLITE_NC_LEASE: u32 = 256;

/// The default `nc_lease` on MySQL and MariaDB: leases, as on SQLite (the
/// default for a single instance; several instances behind a balancer that
/// spreads one client's requests set 0, as PostgreSQL's default).
pub const DEFAULT_MYSQL_NC_LEASE: u32 = 256;

/// The `nc_lease` of a store whose configuration does not set one.
pub(super) fn default_nc_lease(pool: &Pool) -> u32 {
    match pool {
        #[cfg(feature = "sqlite")]
        Pool::Sqlite(_) => DEFAULT_SQLITE_NC_LEASE,
        #[cfg(feature = "postgres")]
        Pool::Postgres(_) => 0,
        #[cfg(feature = "mysql")]
        Pool::MySql(_) => DEFAULT_MYSQL_NC_LEASE,
    }
}

const COUNTS_TABLE: &str = "digest_auth_nonce_counts";
const LEASES_TABLE: &str = "digest_auth_nonce_leases";
const WATERMARK_TABLE: &str = "digest_auth_nonce_watermark";

/// The two ways a nonce's counts are kept.
#[derive(Debug, Clone, Copy)]
enum Way {
    /// Blocks of counts leased to one process each.
    Leased,
    /// A row per accepted count.
    Rows,
}

/// How a backend spells what differs in the statements below, besides
/// the placeholders of its [`Dialect`].
struct Spelling {
    dialect: Dialect,
    /// The database's clock in whole unix seconds.
    now: &'static str,
    /// Appended to a read of the watermark row in a statement that inserts:
    /// see [`claimable`].
    share_lock: &'static str,
    /// The greatest and least of several values.
    greatest: &'static str,
    least: &'static str,
}

#[cfg(feature = "sqlite")]
const SQLITE: Spelling = Spelling {
    dialect: Dialect::Standard,
    now: "unixepoch()",
    share_lock: "",
    greatest: "MAX",
    least: "MIN",
};

#[cfg(feature = "postgres")]
const POSTGRES: Spelling = Spelling {
    dialect: Dialect::Standard,
    now: "FLOOR(EXTRACT(EPOCH FROM now()))",
    share_lock: " FOR SHARE",
    greatest: "GREATEST",
    least: "LEAST",
};

/// `LOCK IN SHARE MODE`: MySQL 8 also spells it `FOR SHARE`, MariaDB not.
#[cfg(feature = "mysql")]
const MYSQL: Spelling = Spelling {
    dialect: Dialect::MySql,
    now: "UNIX_TIMESTAMP()",
    share_lock: " LOCK IN SHARE MODE",
    greatest: "GREATEST",
    least: "LEAST",
};

/// The condition under which a nonce expiring at `expires_at` (an SQL
/// expression) may still be claimed: not expired by the database's clock
/// (allowing the clock skew the nonces allow, [`MAX_CLOCK_SKEW_SECS`], so an
/// instance a little behind the database keeps its nonces' whole lifetime),
/// and above the watermark. With `locking`, for a statement that inserts: on
/// PostgreSQL and MySQL the watermark row is read with a share lock, so a
/// cleanup raising it waits for the claim to commit (and then deletes its
/// rows too), and a claim arriving during the cleanup waits and reads the
/// raised value; a plain read could see the value from before a cleanup that
/// deleted the very row the claim re-inserts. SQLite runs one writer at a
/// time, which does the same.
fn claimable(sp: &Spelling, expires_at: &str, locking: bool) -> String {
    let lock = if locking { sp.share_lock } else { "" };
    format!(
        "{expires_at} > {} - {MAX_CLOCK_SKEW_SECS} AND {expires_at} > \
         (SELECT deleted_through FROM {WATERMARK_TABLE} WHERE id = 1{lock})",
        sp.now
    )
}

/// A nonce is either leased or counted row by row, never both: otherwise a
/// count could be accepted once under a lease and once more as a row. Every
/// statement that starts keeping a nonce one `way` requires this condition
/// (`nonce` is the SQL expression of the nonce), and
/// [`SqlStore::agree_on_nc_lease`] keeps all instances of one database to one
/// way, so the condition only ever refuses nonces left from before an
/// operator changed `nc_lease`.
fn not_kept_the_other_way(way: Way, nonce: &str) -> String {
    let other = match way {
        Way::Leased => COUNTS_TABLE,
        Way::Rows => LEASES_TABLE,
    };
    format!("NOT EXISTS (SELECT 1 FROM {other} WHERE nonce = {nonce})")
}

/// Takes the lease of counts `[$2, $3]` of nonce `$1` (expiring at `$5`)
/// for owner `$4`. Refused when any lease overlaps it (one made with another
/// `nc_lease`), when the nonce is counted row by row, or when it is no
/// longer [`claimable`].
fn take_lease_statement(sp: &Spelling) -> String {
    format!(
        "INSERT INTO {LEASES_TABLE} (nonce, first_nc, last_nc, owner, expires_at) \
         SELECT $1, $2, $3, $4, $5 \
         WHERE NOT EXISTS (SELECT 1 FROM {LEASES_TABLE} \
             WHERE nonce = $1 AND first_nc <= $3 AND last_nc >= $2) \
         AND {} AND {} \
         ON CONFLICT DO NOTHING",
        not_kept_the_other_way(Way::Leased, "$1"),
        claimable(sp, "$5", true)
    )
}

/// MySQL's [`take_lease_statement`]: each value bound once, through a derived
/// table, and a duplicate key left as it is.
fn mysql_take_lease_statement(sp: &Spelling) -> String {
    format!(
        "INSERT INTO {LEASES_TABLE} (nonce, first_nc, last_nc, owner, expires_at) \
         SELECT v.v_nonce, v.v_first, v.v_last, v.v_owner, v.v_expires \
         FROM (SELECT {MYSQL_TEXT} AS v_nonce, {MYSQL_INT} AS v_first, {MYSQL_INT} AS v_last, \
             {MYSQL_INT} AS v_owner, {MYSQL_INT} AS v_expires) AS v \
         WHERE NOT EXISTS (SELECT 1 FROM {LEASES_TABLE} AS l \
             WHERE l.nonce = v.v_nonce AND l.first_nc <= v.v_last AND l.last_nc >= v.v_first) \
         AND {} AND {} \
         ON DUPLICATE KEY UPDATE owner = {LEASES_TABLE}.owner",
        not_kept_the_other_way(Way::Leased, "v.v_nonce"),
        claimable(sp, "v.v_expires", true)
    )
}

/// A text parameter in MySQL, in the collation of the tables' text columns
/// (a derived table's column would otherwise carry the connection's, and
/// comparing the two is an error).
const MYSQL_TEXT: &str = "(CONVERT(? USING utf8mb4) COLLATE utf8mb4_bin)";
/// An integer parameter in MySQL.
const MYSQL_INT: &str = "CAST(? AS SIGNED)";

/// The owner of the lease of nonce `$1` starting at count `$2`, if the nonce
/// (expiring at `$3`) is still [`claimable`].
fn lease_holder_statement(sp: &Spelling) -> String {
    format!(
        "SELECT owner FROM {LEASES_TABLE} WHERE nonce = $1 AND first_nc = $2 AND {}",
        claimable(sp, "$3", false)
    )
}

/// MySQL's [`lease_holder_statement`], each value bound once.
fn mysql_lease_holder_statement(sp: &Spelling) -> String {
    format!(
        "SELECT l.owner FROM (SELECT {MYSQL_TEXT} AS v_nonce, {MYSQL_INT} AS v_first, \
             {MYSQL_INT} AS v_expires) AS v \
         JOIN {LEASES_TABLE} AS l ON l.nonce = v.v_nonce AND l.first_nc = v.v_first \
         WHERE {}",
        claimable(sp, "v.v_expires", false)
    )
}

/// Values bound per claim by [`group_statement`].
const GROUP_BINDS: usize = 7;

/// Decides `claims` claims in one statement, the engine's rule in SQL: a row
/// is inserted (and returned) unless its count is below the window of the
/// highest row of its nonce, the nonce already holds the per-nonce bound of
/// rows inside that window (counting the claims on it earlier in the group),
/// the same row exists (`ON CONFLICT`), the nonce is leased, or it is no
/// longer [`claimable`] (`claimable` is that condition on `v.column4`). Per
/// claim it binds nonce, nc, cnonce, expires_at, the window, the earlier
/// claims and the bound.
fn group_statement(claimable: &str, claims: usize) -> String {
    // Explicit types: PostgreSQL would take untyped VALUES parameters as text.
    let mut sql = format!(
        "INSERT INTO {COUNTS_TABLE} (nonce, nc, cnonce, expires_at) \
         SELECT v.column1, v.column2, v.column3, v.column4 FROM (VALUES "
    );
    for k in 0..claims {
        let n = GROUP_BINDS * k;
        sql.push_str(if k == 0 { "" } else { ", " });
        sql.push_str(&format!(
            "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT), \
             CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7
        ));
    }
    // Rows go in key order: two instances whose groups share keys then wait
    // for each other's uncommitted rows in the same order. In arrival order,
    // each could hold a key the other wanted next, and PostgreSQL aborted
    // one of the two groups as a deadlock (every claim in it a 503).
    let highest =
        format!("COALESCE((SELECT MAX(nc) FROM {COUNTS_TABLE} WHERE nonce = v.column1), 0)");
    sql.push_str(&format!(
        ") AS v WHERE v.column2 + v.column5 > {highest} \
         AND (SELECT COUNT(*) FROM {COUNTS_TABLE} WHERE nonce = v.column1 \
             AND nc > {highest} - v.column5) + v.column6 < v.column7 \
         AND {} AND {claimable} \
         ORDER BY v.column1, v.column2, v.column3 \
         ON CONFLICT DO NOTHING RETURNING nonce, nc, cnonce",
        not_kept_the_other_way(Way::Rows, "v.column1"),
    ));
    sql
}

/// MySQL's [`group_statement`] (`claimable` on `v.v_expires`): the same
/// conditions, with a duplicate key left as it is and the group's marker
/// (bound first) in `grp` instead of `RETURNING`; [`MYSQL_GROUP_READ_BACK`]
/// then finds the rows that are the group's own. The reads of the table
/// inserted into see it as before the statement (MySQL materializes them
/// first), as PostgreSQL's do; rows go in key order for the same reason.
fn mysql_group_statement(claimable: &str, claims: usize) -> String {
    let (t, i) = (MYSQL_TEXT, MYSQL_INT);
    let mut sql = format!(
        "INSERT INTO {COUNTS_TABLE} (nonce, nc, cnonce, expires_at, grp) \
         SELECT v.v_nonce, v.v_nc, v.v_cnonce, v.v_expires, m.v_grp \
         FROM (SELECT {i} AS v_grp) AS m, ("
    );
    for k in 0..claims {
        if k == 0 {
            sql.push_str(&format!(
                "SELECT {t} AS v_nonce, {i} AS v_nc, {t} AS v_cnonce, {i} AS v_expires, \
                 {i} AS v_window, {i} AS v_earlier, {i} AS v_bound"
            ));
        } else {
            sql.push_str(&format!(
                " UNION ALL SELECT {t}, {i}, {t}, {i}, {i}, {i}, {i}"
            ));
        }
    }
    let highest = format!(
        "COALESCE((SELECT MAX(c.nc) FROM {COUNTS_TABLE} AS c WHERE c.nonce = v.v_nonce), 0)"
    );
    sql.push_str(&format!(
        ") AS v WHERE v.v_nc + v.v_window > {highest} \
         AND (SELECT COUNT(*) FROM {COUNTS_TABLE} AS c WHERE c.nonce = v.v_nonce \
             AND c.nc > {highest} - v.v_window) + v.v_earlier < v.v_bound \
         AND {} AND {claimable} \
         ORDER BY v.v_nonce, v.v_nc, v.v_cnonce \
         ON DUPLICATE KEY UPDATE grp = {COUNTS_TABLE}.grp",
        not_kept_the_other_way(Way::Rows, "v.v_nonce"),
    ));
    sql
}

/// The rows a MySQL group inserted (those with its marker): its accepted claims.
const MYSQL_GROUP_READ_BACK: &str =
    "SELECT nonce, nc, cnonce FROM digest_auth_nonce_counts WHERE grp = ?";

/// The cleanup's first statement: raises the watermark over the records
/// that expired at or before `$1` and by the database's clock too, with the
/// same allowance as [`claimable`] (an instance whose clock runs ahead cannot
/// delete what the database still calls live).
/// First, so that on SQLite the transaction starts with the write lock.
fn raise_watermark_statement(sp: &Spelling) -> String {
    let Spelling {
        greatest, least, ..
    } = sp;
    // MySQL binds `?` once per appearance: the cutoff comes from a derived
    // table there, bound once as `$1` is elsewhere.
    let (target, cutoff) = match sp.dialect {
        Dialect::Standard => (
            WATERMARK_TABLE.to_owned(),
            format!("{least}($1, {} - {MAX_CLOCK_SKEW_SECS})", sp.now),
        ),
        Dialect::MySql => (
            format!(
                "{WATERMARK_TABLE}, \
                 (SELECT {least}({MYSQL_INT}, {} - {MAX_CLOCK_SKEW_SECS}) AS cutoff) AS c",
                sp.now
            ),
            "c.cutoff".to_owned(),
        ),
    };
    let highest = |table| {
        format!(
            "COALESCE((SELECT MAX(expires_at) FROM {table} WHERE expires_at <= {cutoff}), \
             deleted_through)"
        )
    };
    format!(
        "UPDATE {target} SET deleted_through = \
         {greatest}(deleted_through, {}, {}) WHERE id = 1",
        highest(COUNTS_TABLE),
        highest(LEASES_TABLE)
    )
}

/// How many nonces have records in either table at or below the watermark.
const COUNT_EXPIRED_NONCES: &str = "SELECT \
     (SELECT COUNT(DISTINCT nonce) FROM digest_auth_nonce_counts WHERE expires_at <= \
         (SELECT deleted_through FROM digest_auth_nonce_watermark WHERE id = 1)) + \
     (SELECT COUNT(DISTINCT nonce) FROM digest_auth_nonce_leases WHERE expires_at <= \
         (SELECT deleted_through FROM digest_auth_nonce_watermark WHERE id = 1))";

/// Deletes through the watermark just raised, not through the cutoff: on
/// PostgreSQL a claim that committed while the raise waited for it is not
/// in the raise's snapshot, and deleting its row without covering it would
/// let the same count in again.
const DELETE_EXPIRED: [&str; 2] = [
    "DELETE FROM digest_auth_nonce_counts WHERE expires_at <= \
     (SELECT deleted_through FROM digest_auth_nonce_watermark WHERE id = 1)",
    "DELETE FROM digest_auth_nonce_leases WHERE expires_at <= \
     (SELECT deleted_through FROM digest_auth_nonce_watermark WHERE id = 1)",
];

/// Key of the PostgreSQL advisory lock that lets one instance at a time clean up.
#[cfg(feature = "postgres")]
const CLEANUP_LOCK: i64 = 0x0d16_e57a_0000_0001;

/// Name of the MySQL lock that lets one instance at a time clean up. Lock
/// names are server-wide and at most 64 characters: the database's is hashed in.
#[cfg(feature = "mysql")]
const MYSQL_CLEANUP_LOCK: &str = "CONCAT('digest_auth_cleanup_', MD5(DATABASE()))";

/// The nonce-count statements of one backend.
struct CountSql {
    take_lease: String,
    lease_holder: String,
    record_nc_lease: &'static str,
    raise_watermark: String,
    /// The group statement for a number of claims, with [`claimable`] on
    /// its expiry column (`group_claimable`).
    group: fn(&str, usize) -> String,
    group_claimable: String,
    /// Where the group statement cannot return its rows: the statement that
    /// reads back the rows with the group's marker (bound first in `group`).
    group_read_back: Option<&'static str>,
    #[cfg(any(test, feature = "test-util"))]
    nonce_entries: String,
}

impl CountSql {
    /// The statements of `pool`'s backend: the one place where they differ.
    fn of(pool: &Pool) -> &'static CountSql {
        match pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => {
                static SQL: OnceLock<CountSql> = OnceLock::new();
                SQL.get_or_init(|| CountSql::new(&SQLITE))
            }
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => {
                static SQL: OnceLock<CountSql> = OnceLock::new();
                SQL.get_or_init(|| CountSql::new(&POSTGRES))
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => {
                static SQL: OnceLock<CountSql> = OnceLock::new();
                SQL.get_or_init(|| CountSql::new(&MYSQL))
            }
        }
    }

    fn new(sp: &Spelling) -> CountSql {
        let common =
            |(take_lease, lease_holder), record_nc_lease, group, expiry, group_read_back| {
                CountSql {
                    take_lease,
                    lease_holder,
                    record_nc_lease,
                    raise_watermark: raise_watermark_statement(sp),
                    group,
                    group_claimable: claimable(sp, expiry, true),
                    group_read_back,
                    #[cfg(any(test, feature = "test-util"))]
                    nonce_entries: sp.dialect.placeholders(
                        "SELECT COUNT(*) FROM digest_auth_nonce_counts WHERE nonce = $1",
                    ),
                }
            };
        match sp.dialect {
            Dialect::Standard => common(
                (take_lease_statement(sp), lease_holder_statement(sp)),
                "INSERT INTO digest_auth_settings (name, value) VALUES ('nc_lease', $1) \
                 ON CONFLICT (name) DO NOTHING",
                group_statement,
                "v.column4",
                None,
            ),
            Dialect::MySql => common(
                (
                    mysql_take_lease_statement(sp),
                    mysql_lease_holder_statement(sp),
                ),
                "INSERT INTO digest_auth_settings (name, value) VALUES ('nc_lease', ?) \
                 ON DUPLICATE KEY UPDATE name = name",
                mysql_group_statement,
                "v.v_expires",
                Some(MYSQL_GROUP_READ_BACK),
            ),
        }
    }
}

/// How this store decides nonce counts (`nc_lease`).
#[derive(Debug, Clone)]
pub(super) enum Counts {
    /// `nc_lease` > 0: in memory, under leases of blocks of counts.
    Leased(Arc<LeaseBook>),
    /// `nc_lease = 0`: a row per accepted count, committed in groups by one
    /// writer task.
    Rows(Batcher),
}

impl Counts {
    /// The counts of a store on `pool` (the row writer starts on the current
    /// runtime).
    pub(super) fn new(pool: &Pool, nc_lease: u32) -> Counts {
        if nc_lease > 0 {
            return Counts::Leased(Arc::new(LeaseBook::new(nc_lease)));
        }
        let pool = pool.clone();
        Counts::Rows(Batcher::start(move |claims| {
            insert_group(pool.clone(), claims)
        }))
    }
}

/// Binds the values of `claims` to `query` in the order of the group statement.
macro_rules! bind_claims {
    ($query:expr, $claims:expr) => {{
        let mut query = $query;
        for c in $claims {
            query = query
                .bind(c.nonce.as_str())
                .bind(i64::from(c.nc))
                .bind(c.cnonce.as_str())
                .bind(c.expires_at)
                .bind(i64::from(c.window))
                .bind(i64::from(c.earlier))
                .bind(max_entries_per_nonce(c.window) as i64);
        }
        query
    }};
}

/// Decides one group of row-per-count claims: whether each was accepted.
async fn insert_group(pool: Pool, claims: Vec<Asked>) -> Result<Vec<bool>, StoreError> {
    let sql = CountSql::of(&pool);
    let statement = (sql.group)(&sql.group_claimable, claims.len());
    let rows: Vec<(String, i64, String)> = with_pool!(&pool, p => match sql.group_read_back {
        None => bind_claims!(sqlx::query_as(&statement), &claims).fetch_all(p).await?,
        Some(read_back) => {
            // Random per group: another group's rows never carry it.
            let marker: i64 = rand::random();
            bind_claims!(sqlx::query(&statement).bind(marker), &claims)
                .execute(p)
                .await?;
            sqlx::query_as(read_back).bind(marker).fetch_all(p).await?
        }
    });
    let inserted: std::collections::HashSet<(String, i64, String)> = rows.into_iter().collect();
    Ok(claims
        .into_iter()
        .map(|c| inserted.contains(&(c.nonce, i64::from(c.nc), c.cnonce)))
        .collect())
}

impl SqlStore {
    /// Records `nc_lease` in the database, or checks it against the value
    /// recorded there: instances that leased blocks and instances that claim
    /// row by row must never decide the same nonce side by side.
    pub(super) async fn agree_on_nc_lease(&self, nc_lease: u32) -> Result<(), StoreError> {
        let record = CountSql::of(&self.pool).record_nc_lease;
        let recorded: i64 = with_pool!(&self.pool, p => {
            sqlx::query(record)
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
        let sql = CountSql::of(&self.pool);
        with_pool!(&self.pool, p => {
            sqlx::query(&sql.take_lease)
                .bind(nonce)
                .bind(i64::from(first))
                .bind(i64::from(last))
                .bind(owner)
                .bind(expires_at)
                .execute(p)
                .await?;
            let holder: Option<i64> = sqlx::query_scalar(&sql.lease_holder)
                .bind(nonce)
                .bind(i64::from(first))
                .bind(expires_at)
                .fetch_optional(p)
            .await?;
            Ok(holder == Some(owner))
        })
    }

    /// How many nonces have row-by-row records (leased nonces have none:
    /// see [`nonce_leases`](Self::nonce_leases)).
    #[cfg(any(test, feature = "test-util"))]
    pub async fn nonce_records(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(DISTINCT nonce) FROM digest_auth_nonce_counts";
        with_pool!(&self.pool, p => Ok(sqlx::query_scalar(sql).fetch_one(p).await?))
    }

    /// How many (cnonce, nc) rows one nonce holds.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn nonce_entries(&self, nonce: &str) -> Result<i64, StoreError> {
        let sql = &CountSql::of(&self.pool).nonce_entries;
        with_pool!(&self.pool, p => Ok(sqlx::query_scalar(sql).bind(nonce).fetch_one(p).await?))
    }

    /// How many leases of blocks of counts the store holds.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn nonce_leases(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM digest_auth_nonce_leases";
        with_pool!(&self.pool, p => Ok(sqlx::query_scalar(sql).fetch_one(p).await?))
    }
}

/// In transaction `$tx`: raises the watermark over the records expired at
/// `$now` (`$raise`: [`raise_watermark_statement`]), counts the nonces at or
/// below it, then deletes their records.
macro_rules! delete_expired {
    ($tx:expr, $raise:expr, $now:expr) => {{
        let raised = sqlx::query($raise).bind($now).execute(&mut *$tx).await?;
        if raised.rows_affected() != 1 {
            return Err(StoreError::new(format!(
                "the row of {WATERMARK_TABLE} is missing: nothing is deleted without it \
                 (the migrations insert it)"
            )));
        }
        let nonces: i64 = sqlx::query_scalar(COUNT_EXPIRED_NONCES)
            .fetch_one(&mut *$tx)
            .await?;
        for sql in DELETE_EXPIRED {
            sqlx::query(sql).execute(&mut *$tx).await?;
        }
        nonces as u64
    }};
}

#[rocket::async_trait]
impl NonceCountStore for SqlStore {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        match &self.counts {
            Counts::Leased(leases) => {
                let owner = leases.owner();
                let take = |first, last| {
                    self.take_lease(owner, request.nonce, first, last, request.expires_at)
                };
                leases.claim(request, take).await
            }
            Counts::Rows(batcher) => batcher.claim(request).await,
        }
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        // The database first: a lease forgotten here while its row remains
        // can only be refused, never taken twice.
        let raise = &CountSql::of(&self.pool).raise_watermark;
        let removed = match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => {
                // The first statement writes, so the transaction takes the
                // write lock before it reads (a read upgraded to a write
                // would fail at once when another connection wrote meanwhile).
                let mut tx = p.begin().await?;
                let n = delete_expired!(tx, raise, now);
                tx.commit().await?;
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
                    n = delete_expired!(tx, raise, now);
                    tx.commit().await?;
                }
                n
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => {
                // As on PostgreSQL, one instance at a time; a MySQL lock belongs
                // to the session, so it is taken and released on one connection.
                let mut conn = p.acquire().await?;
                let locked: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT GET_LOCK({MYSQL_CLEANUP_LOCK}, 0)"))
                        .fetch_one(&mut *conn)
                        .await?;
                if locked != Some(1) {
                    0
                } else {
                    let deleted: Result<u64, StoreError> = async {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        let n = delete_expired!(tx, raise, now);
                        tx.commit().await?;
                        Ok(n)
                    }
                    .await;
                    let released = sqlx::query(&format!("DO RELEASE_LOCK({MYSQL_CLEANUP_LOCK})"))
                        .execute(&mut *conn)
                        .await;
                    if released.is_err() {
                        // Closing the session releases its locks.
                        let _ = sqlx::Connection::close(conn.detach()).await;
                    }
                    deleted?
                }
            }
        };
        if let Counts::Leased(leases) = &self.counts {
            leases.remove_expired(now);
        }
        Ok(removed)
    }
}
