//! The shared `NonceCountStore` suite on every built-in store (memory,
//! SQLite, PostgreSQL, MySQL/MariaDB), and the database store's token
//! administration: issue, rotate, revoke, userhash lookup and HA1-only
//! storage, on each database.
//!
//! PostgreSQL tests need `--features postgres` and the database of
//! `DIGEST_AUTH_TEST_POSTGRES_URL` (see `tests/common/postgres.rs`); MySQL
//! tests `--features mysql` and the server of `DIGEST_AUTH_TEST_MYSQL_URL`
//! (see `tests/common/mysql.rs`).

mod common;

use std::sync::Arc;

use rocket_digest_auth::store::suite::StoreUnderTest;
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
use rocket_digest_auth::store::StoreOptions;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use rocket_digest_auth::store::{
    Claim, ClaimRequest, CredentialStore, NonceCountStore, SqlStore, StoreError, StoreOptions,
    TokenAdmin, DEFAULT_NC_WINDOW,
};

/// One realm for every store of these tests, also across concurrent runs
/// sharing a PostgreSQL schema (see `tests/common/postgres.rs`).
const REALM: &str = "rocket_digest_auth store tests";

/// A claim under the default window.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn at<'a>(nonce: &'a str, cnonce: &'a str, nc: u32, expires_at: i64) -> ClaimRequest<'a> {
    ClaimRequest::new(nonce, cnonce, nc, expires_at, DEFAULT_NC_WINDOW)
}

/// A SQLite store in a temporary directory that goes with it.
#[cfg(feature = "sqlite")]
struct SqliteInTempDir {
    store: SqlStore,
    url: String,
    _dir: tempfile::TempDir,
}

#[cfg(feature = "sqlite")]
impl SqliteInTempDir {
    async fn new(options: StoreOptions) -> SqliteInTempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = crate::common::sqlite_url(&dir.path().join("digest_auth.db"));
        let store = SqlStore::connect_url(&url, options)
            .await
            .expect("SQLite store in a temporary directory");
        SqliteInTempDir {
            store,
            url,
            _dir: dir,
        }
    }
}

#[cfg(feature = "sqlite")]
#[rocket::async_trait]
impl NonceCountStore for SqliteInTempDir {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.store.claim(request).await
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.store.remove_expired(now).await
    }
}

/// The token administration tests of [`checks`] for one database backend:
/// `$on(options, check)` runs `check(store, options, url)` on a fresh store,
/// `$pool` is an admin's connection pool to read the raw rows with, and
/// `$placeholder` how its SQL spells the first parameter.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
macro_rules! token_admin_tests {
    ($on:ident, $pool:ty, $placeholder:literal) => {
        #[test]
        fn tokens_issue_rotate_revoke() {
            $on(StoreOptions::new(REALM), |store, options, _| async move {
                crate::checks::tokens_issue_rotate_revoke(&store, &options).await
            });
        }

        #[test]
        fn userhash_lookup() {
            $on(StoreOptions::new(REALM), |store, options, _| async move {
                crate::checks::userhash_lookup(&store, &options).await
            });
        }

        #[test]
        fn ha1_only_storage() {
            let options = StoreOptions {
                ha1_only: true,
                ..StoreOptions::new(REALM)
            };
            $on(options, |store, options, url| async move {
                let (user, token) = crate::checks::ha1_only_storage(&store, &options).await;
                // Read the database as an admin would.
                let pool = <$pool>::connect(&url).await.unwrap();
                let row: crate::checks::RawRow = sqlx::query_as(concat!(
                    "SELECT token, ha1_md5, ha1_sha256, ha1_sha512_256 \
                     FROM digest_auth_tokens WHERE username = ",
                    $placeholder
                ))
                .bind(&user)
                .fetch_one(&pool)
                .await
                .unwrap();
                pool.close().await;
                crate::checks::check_raw_ha1_row(row, &user, &token);
                store.revoke_token(&user).await.unwrap();
            });
        }
    };
}

mod memory {
    use super::*;
    use rocket_digest_auth::store::MemoryStore;

    async fn make() -> Option<StoreUnderTest> {
        Some(Arc::new(MemoryStore::new(StoreOptions::new(REALM))))
    }

    rocket_digest_auth::nonce_count_store_suite!(make);

    /// The cleanup really deletes: an expired nonce's record goes, a live one stays.
    #[test]
    fn expired_records_are_removed() {
        rocket::async_test(async {
            let store = MemoryStore::new(StoreOptions::new(REALM));
            let now = chrono::Utc::now().timestamp();
            for (nonce, expires_at) in [("old", now - 10), ("live", now + 3600)] {
                let request = ClaimRequest::new(nonce, "c", 1, expires_at, DEFAULT_NC_WINDOW);
                assert_eq!(store.claim(request).await.unwrap(), Claim::Accepted);
            }
            assert_eq!(store.remove_expired(now).await.unwrap(), 1);
            assert_eq!(store.nonce_records(), 1);
            assert_eq!(store.nonce_entries("live"), 1);
        })
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use rocket_digest_auth::protocol::HashFunction;
    use rocket_digest_auth::store::counts::max_entries_per_nonce;

    /// The suite without leases (`nc_lease = 0`): a row per claim, committed
    /// in groups.
    mod row_per_claim {
        use super::*;

        async fn make() -> Option<StoreUnderTest> {
            let options = StoreOptions {
                nc_lease: Some(0),
                ..StoreOptions::new(REALM)
            };
            Some(Arc::new(SqliteInTempDir::new(options).await))
        }

        rocket_digest_auth::nonce_count_store_suite!(make);

        /// One count re-used with ever new cnonces leaves at most the
        /// per-nonce bound of rows, as the memory store keeps at most that
        /// many entries.
        #[test]
        fn a_nonce_keeps_at_most_the_bound_of_rows() {
            rocket::async_test(async {
                let options = StoreOptions {
                    nc_lease: Some(0),
                    ..StoreOptions::new(REALM)
                };
                let s = SqliteInTempDir::new(options).await;
                let expires_at = chrono::Utc::now().timestamp() + 3600;
                for i in 0..5_000 {
                    let cnonce = format!("c{i}");
                    s.store
                        .claim(at("n", &cnonce, 1, expires_at))
                        .await
                        .unwrap();
                }
                let bound = max_entries_per_nonce(DEFAULT_NC_WINDOW) as i64;
                let rows = s.store.nonce_entries("n").await.unwrap();
                println!("rows on one nonce after 5000 distinct cnonces: {rows}");
                assert_eq!(rows, bound);
            })
        }
    }

    /// The cleanup really deletes, leased and row by row: an expired nonce's
    /// rows go (judged by the database's clock, here the same as ours), a
    /// live nonce's stay.
    #[test]
    fn expired_records_are_removed() {
        use rocket_digest_auth::protocol::MAX_CLOCK_SKEW_SECS;
        rocket::async_test(async {
            for nc_lease in [0, 16] {
                let options = StoreOptions {
                    nc_lease: Some(nc_lease),
                    ..StoreOptions::new(REALM)
                };
                let s = SqliteInTempDir::new(options).await;
                let now = chrono::Utc::now().timestamp();
                // Claimable now, expired by the database's clock (which
                // allows the nonces' clock skew) within 3 s.
                let soon = now - MAX_CLOCK_SKEW_SECS + 2;
                for (nonce, expires_at) in [("old", soon), ("live", now + 3600)] {
                    let claim = s.store.claim(at(nonce, "c", 1, expires_at)).await.unwrap();
                    assert_eq!(claim, Claim::Accepted);
                }
                let records = || async {
                    let rows = s.store.nonce_records().await.unwrap();
                    rows + s.store.nonce_leases().await.unwrap()
                };
                assert_eq!(records().await, 2);
                // Not yet expired by the database's clock: nothing goes.
                assert_eq!(s.store.remove_expired(now + 100).await.unwrap(), 0);
                while chrono::Utc::now().timestamp() <= soon + MAX_CLOCK_SKEW_SECS {
                    rocket::tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                assert_eq!(s.store.remove_expired(now + 100).await.unwrap(), 1);
                assert_eq!(records().await, 1, "nc_lease {nc_lease}");
            }
        })
    }

    /// A store opened again on the same file (a restart) does not hold the
    /// blocks its predecessor leased: their counts are refused, used or not,
    /// and the next block is leased anew.
    #[test]
    fn a_restarted_store_refuses_the_old_blocks_and_leases_new_ones() {
        rocket::async_test(async {
            let dir = tempfile::tempdir().unwrap();
            let url = crate::common::sqlite_url(&dir.path().join("db"));
            let expires_at = chrono::Utc::now().timestamp() + 3600;
            let before = SqlStore::connect_url(&url, StoreOptions::new(REALM))
                .await
                .unwrap();
            for nc in 1..=3 {
                let claim = before.claim(at("n", "c", nc, expires_at)).await.unwrap();
                assert_eq!(claim, Claim::Accepted);
            }
            assert_eq!(before.nonce_leases().await.unwrap(), 1);
            before.close().await;

            let after = SqlStore::connect_url(&url, StoreOptions::new(REALM))
                .await
                .unwrap();
            for (nc, cnonce) in [(1, "c"), (3, "c"), (4, "c"), (200, "d")] {
                let claim = after.claim(at("n", cnonce, nc, expires_at)).await.unwrap();
                assert_eq!(claim, Claim::Replayed, "nc {nc} of the old lease");
            }
            let next = rocket_digest_auth::store::DEFAULT_SQLITE_NC_LEASE;
            assert_eq!(
                after.claim(at("n", "c", next, expires_at)).await.unwrap(),
                Claim::Accepted
            );
            assert_eq!(
                after.claim(at("n", "c", next, expires_at)).await.unwrap(),
                Claim::Replayed
            );
            assert_eq!(after.nonce_leases().await.unwrap(), 2);
            // Nothing is written per claim.
            assert_eq!(after.nonce_records().await.unwrap(), 0);
        })
    }

    /// A credential cache in one process sees a token issued, rotated or
    /// revoked by another process (here a second store on the same file)
    /// within its recheck interval, through the trigger-bumped version.
    #[test]
    fn a_cache_sees_another_process_change_tokens_within_the_recheck() {
        use rocket_digest_auth::store::{CachedCredentials, Secret};
        use std::time::Duration;
        rocket::async_test(async {
            let dir = tempfile::tempdir().unwrap();
            let url = crate::common::sqlite_url(&dir.path().join("db"));
            let ours = SqlStore::connect_url(&url, StoreOptions::new(REALM))
                .await
                .unwrap();
            let recheck = Duration::from_millis(50);
            let cached = CachedCredentials::new(Arc::new(ours), Duration::from_secs(60))
                .with_recheck(recheck);
            let theirs = SqlStore::connect_url(&url, StoreOptions::new(REALM))
                .await
                .unwrap();
            let secret = |c: Option<rocket_digest_auth::store::Credential>| c.map(|c| c.secret);

            assert_eq!(secret(cached.credential("u").await.unwrap()), None);
            let first = theirs.issue_token("u").await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential("u").await.unwrap());
            assert_eq!(
                found,
                Some(Secret::Token(first)),
                "a new user, within the recheck"
            );
            assert_eq!(cached.cached(), 1);

            let second = theirs.issue_token("u").await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential("u").await.unwrap());
            assert_eq!(
                found,
                Some(Secret::Token(second)),
                "a rotation, within the recheck"
            );

            assert!(theirs.revoke_token("u").await.unwrap());
            rocket::tokio::time::sleep(recheck * 2).await;
            assert_eq!(
                secret(cached.credential("u").await.unwrap()),
                None,
                "a revocation"
            );
        })
    }

    /// `nc_lease` is recorded in the database: a store opened with another
    /// value is refused, naming the key. Once an operator deletes the record,
    /// the new value applies, and nonces leased before stay refused row by row.
    #[test]
    fn instances_must_agree_on_nc_lease() {
        rocket::async_test(async {
            let dir = tempfile::tempdir().unwrap();
            let url = crate::common::sqlite_url(&dir.path().join("db"));
            let expires_at = chrono::Utc::now().timestamp() + 3600;
            let leasing = SqlStore::connect_url(&url, StoreOptions::new(REALM))
                .await
                .unwrap();
            let claim = leasing
                .claim(at("leased", "c", 1, expires_at))
                .await
                .unwrap();
            assert_eq!(claim, Claim::Accepted);
            leasing.close().await;

            let row_per_claim = StoreOptions {
                nc_lease: Some(0),
                ..StoreOptions::new(REALM)
            };
            let err = SqlStore::connect_url(&url, row_per_claim.clone())
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("digest_auth.nc_lease") && err.contains("256"),
                "{err}"
            );

            let admin = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query("DELETE FROM digest_auth_settings WHERE name = 'nc_lease'")
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let store = SqlStore::connect_url(&url, row_per_claim).await.unwrap();
            for nc in [2, 300] {
                let claim = store
                    .claim(at("leased", "c", nc, expires_at))
                    .await
                    .unwrap();
                assert_eq!(claim, Claim::Replayed, "nc {nc} of a leased nonce");
            }
            let claim = store.claim(at("fresh", "c", 1, expires_at)).await.unwrap();
            assert_eq!(claim, Claim::Accepted);
            assert_eq!(store.nonce_records().await.unwrap(), 1);
        })
    }

    async fn make() -> Option<StoreUnderTest> {
        Some(Arc::new(
            SqliteInTempDir::new(StoreOptions::new(REALM)).await,
        ))
    }

    rocket_digest_auth::nonce_count_store_suite!(make);

    fn on_sqlite<F, Fut>(options: StoreOptions, check: F)
    where
        F: FnOnce(SqlStore, StoreOptions, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        rocket::async_test(async move {
            let s = SqliteInTempDir::new(options.clone()).await;
            check(s.store.clone(), options, s.url.clone()).await;
        })
    }

    token_admin_tests!(on_sqlite, sqlx::SqlitePool, "$1");

    /// A realm change: a store opened with another realm recomputes the
    /// userhash values of users created under the old one.
    #[test]
    fn userhash_follows_a_realm_change() {
        rocket::async_test(async {
            let dir = tempfile::tempdir().unwrap();
            let url = crate::common::sqlite_url(&dir.path().join("db"));
            let old = StoreOptions::new("old realm");
            let store = SqlStore::connect_url(&url, old.clone()).await.unwrap();
            store.issue_token("carol").await.unwrap();
            store.close().await;

            let new = StoreOptions::new("new realm");
            let store = SqlStore::connect_url(&url, new.clone()).await.unwrap();
            let h = HashFunction::Sha256;
            let found = store
                .credential_by_userhash(h, &new.userhash(h, "carol"))
                .await
                .unwrap();
            assert_eq!(found.map(|c| c.username).as_deref(), Some("carol"));
            let stale = store
                .credential_by_userhash(h, &old.userhash(h, "carol"))
                .await
                .unwrap();
            assert!(stale.is_none(), "the old realm's userhash still resolves");
        })
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    /// The schema these tests use in the test database.
    const SCHEMA: &str = "digest_auth_test_store_suite";

    async fn connect(options: StoreOptions) -> Option<SqlStore> {
        connect_in(SCHEMA, options).await
    }

    async fn connect_in(schema: &str, options: StoreOptions) -> Option<SqlStore> {
        let url = crate::common::postgres::schema_url(schema).await?;
        Some(open(&url, options).await)
    }

    async fn open(url: &str, options: StoreOptions) -> SqlStore {
        SqlStore::connect_url(url, options)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL store in schema {SCHEMA}: {e}"))
    }

    async fn make() -> Option<StoreUnderTest> {
        Some(Arc::new(connect(StoreOptions::new(REALM)).await?))
    }

    rocket_digest_auth::nonce_count_store_suite!(make);

    fn on_postgres<F, Fut>(options: StoreOptions, check: F)
    where
        F: FnOnce(SqlStore, StoreOptions, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        rocket::async_test(async move {
            if let Some(url) = crate::common::postgres::schema_url(SCHEMA).await {
                let store = open(&url, options.clone()).await;
                check(store.clone(), options, url).await;
                store.close().await;
            }
        })
    }

    token_admin_tests!(on_postgres, sqlx::PgPool, "$1");

    /// Two stores on one database, as two instances have: 100 counts on
    /// one nonce, each claimed by both at once, each won exactly once.
    #[test]
    fn two_instances_claim_each_count_once() {
        two_instances_claim_each_count_once_in(SCHEMA, StoreOptions::new(REALM));
    }

    /// The suite with leases (`nc_lease = 256`), in a schema of its own: the
    /// value is recorded per database and every instance must agree on it.
    mod leased {
        use super::*;

        const SCHEMA: &str = "digest_auth_test_store_suite_leased";

        fn options() -> StoreOptions {
            StoreOptions {
                nc_lease: Some(256),
                ..StoreOptions::new(REALM)
            }
        }

        async fn make() -> Option<StoreUnderTest> {
            Some(Arc::new(connect_in(SCHEMA, options()).await?))
        }

        rocket_digest_auth::nonce_count_store_suite!(make);

        #[test]
        fn two_instances_claim_each_count_once() {
            super::two_instances_claim_each_count_once_in(SCHEMA, options());
        }
    }

    fn two_instances_claim_each_count_once_in(schema: &str, options: StoreOptions) {
        crate::common::block_on_multi_thread(4, async {
            let Some(a) = connect_in(schema, options.clone()).await else {
                return;
            };
            let b = connect_in(schema, options).await.expect("reachable");
            crate::two_instances_claim_each_count_once(&a, &b).await;
            a.close().await;
            b.close().await;
        });
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use rocket_digest_auth::store::counts::max_entries_per_nonce;
    use rocket_digest_auth::store::{generate_token, CachedCredentials, Secret};
    use std::time::Duration;

    /// The database these tests use on the test server (leases, the default).
    const DATABASE: &str = "store_suite";

    async fn connect_in(database: &str, options: StoreOptions) -> Option<SqlStore> {
        let url = crate::common::mysql::database_url(database).await?;
        Some(open(&url, options).await)
    }

    async fn open(url: &str, options: StoreOptions) -> SqlStore {
        SqlStore::connect_url(url, options)
            .await
            .unwrap_or_else(|e| panic!("MySQL store at {url}: {e}"))
    }

    async fn make() -> Option<StoreUnderTest> {
        Some(Arc::new(
            connect_in(DATABASE, StoreOptions::new(REALM)).await?,
        ))
    }

    rocket_digest_auth::nonce_count_store_suite!(make);

    fn on_mysql<F, Fut>(options: StoreOptions, check: F)
    where
        F: FnOnce(SqlStore, StoreOptions, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        rocket::async_test(async move {
            if let Some(url) = crate::common::mysql::database_url(DATABASE).await {
                let store = open(&url, options.clone()).await;
                check(store.clone(), options, url).await;
                store.close().await;
            }
        })
    }

    token_admin_tests!(on_mysql, sqlx::MySqlPool, "?");

    fn two_instances_in(database: &str, options: StoreOptions) {
        crate::common::block_on_multi_thread(4, async {
            let Some(a) = connect_in(database, options.clone()).await else {
                return;
            };
            let b = connect_in(database, options).await.expect("reachable");
            crate::two_instances_claim_each_count_once(&a, &b).await;
            a.close().await;
            b.close().await;
        });
    }

    #[test]
    fn two_instances_claim_each_count_once() {
        two_instances_in(DATABASE, StoreOptions::new(REALM));
    }

    /// Without options, a MySQL store leases blocks of counts of the
    /// default size: nothing is written per claim.
    #[test]
    fn leases_by_default() {
        rocket::async_test(async {
            let Some(store) = connect_in(DATABASE, StoreOptions::new(REALM)).await else {
                return;
            };
            let nonce = format!("default-lease-{}", generate_token());
            let expires_at = chrono::Utc::now().timestamp() + 3600;
            let leases = store.nonce_leases().await.unwrap();
            let size = rocket_digest_auth::store::DEFAULT_MYSQL_NC_LEASE;
            for nc in [1, size - 1] {
                let claim = store.claim(at(&nonce, "c", nc, expires_at)).await.unwrap();
                assert_eq!(claim, Claim::Accepted);
            }
            assert_eq!(store.nonce_entries(&nonce).await.unwrap(), 0);
            // Other tests may lease at the same time: at least ours.
            assert!(store.nonce_leases().await.unwrap() > leases);
            store.close().await;
        })
    }

    /// The longest cnonce the parser lets through, in four-byte characters,
    /// fits the key: accepted once, then refused, in both modes.
    #[test]
    fn the_longest_cnonce_fits() {
        rocket::async_test(async {
            let max = rocket_digest_auth::protocol::MAX_CNONCE_LEN;
            let cnonce = "\u{1F600}".repeat(max / 4);
            assert_eq!(cnonce.len(), max);
            for (database, nc_lease) in [(DATABASE, None), (row_per_claim::DATABASE, Some(0))] {
                let options = StoreOptions {
                    nc_lease,
                    ..StoreOptions::new(REALM)
                };
                let Some(store) = connect_in(database, options).await else {
                    return;
                };
                let nonce = format!("long-cnonce-{}", generate_token());
                let expires_at = chrono::Utc::now().timestamp() + 3600;
                for expected in [Claim::Accepted, Claim::Replayed] {
                    let claim = store.claim(at(&nonce, &cnonce, 1, expires_at)).await;
                    assert_eq!(claim.unwrap(), expected, "nc_lease {nc_lease:?}");
                }
                store.close().await;
            }
        })
    }

    /// The suite without leases (`nc_lease = 0`): a row per claim, committed
    /// in groups, in a database of its own (`nc_lease` is recorded per database).
    pub mod row_per_claim {
        use super::*;

        pub const DATABASE: &str = "store_suite_rows";

        fn options() -> StoreOptions {
            StoreOptions {
                nc_lease: Some(0),
                ..StoreOptions::new(REALM)
            }
        }

        async fn make() -> Option<StoreUnderTest> {
            Some(Arc::new(connect_in(DATABASE, options()).await?))
        }

        rocket_digest_auth::nonce_count_store_suite!(make);

        #[test]
        fn two_instances_claim_each_count_once() {
            two_instances_in(DATABASE, options());
        }

        /// One count re-used with ever new cnonces, in parallel (so that
        /// claims meet in groups), leaves exactly the per-nonce bound of rows.
        #[test]
        fn a_nonce_keeps_at_most_the_bound_of_rows() {
            crate::common::block_on_multi_thread(4, async {
                let Some(store) = connect_in(DATABASE, options()).await else {
                    return;
                };
                let nonce = format!("bound-{}", generate_token());
                let expires_at = chrono::Utc::now().timestamp() + 3600;
                let mut accepted = 0;
                for chunk in 0..50 {
                    let tasks: Vec<_> = (0..100)
                        .map(|i| {
                            let (store, nonce) = (store.clone(), nonce.clone());
                            rocket::tokio::spawn(async move {
                                let cnonce = format!("c{chunk}-{i}");
                                store.claim(at(&nonce, &cnonce, 1, expires_at)).await
                            })
                        })
                        .collect();
                    for task in tasks {
                        accepted += u64::from(task.await.unwrap().unwrap() == Claim::Accepted);
                    }
                }
                let bound = max_entries_per_nonce(DEFAULT_NC_WINDOW);
                let rows = store.nonce_entries(&nonce).await.unwrap();
                println!("rows on one nonce after 5000 distinct cnonces: {rows}");
                assert_eq!(accepted, bound);
                assert_eq!(rows as u64, bound);
                store.close().await;
            })
        }
    }

    /// A store opened again on the same database (a restart) does not hold
    /// the blocks its predecessor leased: their counts are refused, used or
    /// not, and the next block is leased anew.
    #[test]
    fn a_restarted_store_refuses_the_old_blocks_and_leases_new_ones() {
        rocket::async_test(async {
            let Some(before) = connect_in(DATABASE, StoreOptions::new(REALM)).await else {
                return;
            };
            let nonce = format!("restart-{}", generate_token());
            let expires_at = chrono::Utc::now().timestamp() + 3600;
            for nc in 1..=3 {
                let claim = before.claim(at(&nonce, "c", nc, expires_at)).await.unwrap();
                assert_eq!(claim, Claim::Accepted);
            }
            before.close().await;

            let after = connect_in(DATABASE, StoreOptions::new(REALM))
                .await
                .unwrap();
            for (nc, cnonce) in [(1, "c"), (3, "c"), (4, "c"), (200, "d")] {
                let claim = after
                    .claim(at(&nonce, cnonce, nc, expires_at))
                    .await
                    .unwrap();
                assert_eq!(claim, Claim::Replayed, "nc {nc} of the old lease");
            }
            let next = rocket_digest_auth::store::DEFAULT_MYSQL_NC_LEASE;
            for expected in [Claim::Accepted, Claim::Replayed] {
                let claim = after.claim(at(&nonce, "c", next, expires_at)).await;
                assert_eq!(claim.unwrap(), expected);
            }
            after.close().await;
        })
    }

    /// A credential cache in one process sees a token issued, rotated or
    /// revoked by another process within its recheck interval, through the
    /// version the triggers bump.
    #[test]
    fn a_cache_sees_another_process_change_tokens_within_the_recheck() {
        rocket::async_test(async {
            let Some(ours) = connect_in(DATABASE, StoreOptions::new(REALM)).await else {
                return;
            };
            let recheck = Duration::from_millis(50);
            let cached = CachedCredentials::new(Arc::new(ours), Duration::from_secs(60))
                .with_recheck(recheck);
            let theirs = connect_in(DATABASE, StoreOptions::new(REALM))
                .await
                .unwrap();
            let user = format!("cached-{}", &generate_token()[..12]);
            let secret = |c: Option<rocket_digest_auth::store::Credential>| c.map(|c| c.secret);

            assert_eq!(secret(cached.credential(&user).await.unwrap()), None);
            let first = theirs.issue_token(&user).await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential(&user).await.unwrap());
            assert_eq!(found, Some(Secret::Token(first)), "a new user");

            let second = theirs.issue_token(&user).await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential(&user).await.unwrap());
            assert_eq!(found, Some(Secret::Token(second)), "a rotation");

            assert!(theirs.revoke_token(&user).await.unwrap());
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential(&user).await.unwrap());
            assert_eq!(found, None, "a revocation");
            theirs.close().await;
        })
    }

    /// Usernames are compared byte for byte, as on SQLite and PostgreSQL:
    /// another case is another user.
    #[test]
    fn usernames_are_case_sensitive() {
        rocket::async_test(async {
            let Some(store) = connect_in(DATABASE, StoreOptions::new(REALM)).await else {
                return;
            };
            let user = format!("case-{}", &generate_token()[..12]);
            let token = store.issue_token(&user).await.unwrap();
            let upper = user.to_uppercase();
            assert_eq!(store.credential(&upper).await.unwrap(), None);
            let other = store.issue_token(&upper).await.unwrap();
            let found = store.credential(&user).await.unwrap().expect("still there");
            assert_eq!(found.secret, Secret::Token(token));
            let found = store.credential(&upper).await.unwrap().expect("issued");
            assert_eq!(found.secret, Secret::Token(other));
            for u in [&user, &upper] {
                assert!(store.revoke_token(u).await.unwrap());
            }
            store.close().await;
        })
    }

    /// The cleanup really deletes, leased and row by row: an expired nonce's
    /// rows go (judged by the database's clock, here the same as ours), a
    /// live nonce's stay. In a database of this run, so that the counts are
    /// of these nonces only.
    #[test]
    fn expired_records_are_removed() {
        use rocket_digest_auth::protocol::MAX_CLOCK_SKEW_SECS;
        rocket::async_test(async {
            for nc_lease in [0, 16] {
                let name = format!("cleanup_{}", &generate_token()[..8]);
                let Some(url) = crate::common::mysql::database_url(&name).await else {
                    return;
                };
                let options = StoreOptions {
                    nc_lease: Some(nc_lease),
                    ..StoreOptions::new(REALM)
                };
                let store = open(&url, options).await;
                let now = chrono::Utc::now().timestamp();
                // Claimable now, expired by the database's clock (which
                // allows the nonces' clock skew) within 3 s.
                let soon = now - MAX_CLOCK_SKEW_SECS + 2;
                for (nonce, expires_at) in [("old", soon), ("live", now + 3600)] {
                    let claim = store.claim(at(nonce, "c", 1, expires_at)).await.unwrap();
                    assert_eq!(claim, Claim::Accepted);
                }
                let records = || async {
                    let rows = store.nonce_records().await.unwrap();
                    rows + store.nonce_leases().await.unwrap()
                };
                assert_eq!(records().await, 2);
                // Not yet expired by the database's clock: nothing goes.
                assert_eq!(store.remove_expired(now + 100).await.unwrap(), 0);
                while chrono::Utc::now().timestamp() <= soon + MAX_CLOCK_SKEW_SECS {
                    rocket::tokio::time::sleep(Duration::from_millis(100)).await;
                }
                assert_eq!(store.remove_expired(now + 100).await.unwrap(), 1);
                let left = records().await;
                store.close().await;
                crate::common::mysql::drop_database(&name).await;
                assert_eq!(left, 1, "nc_lease {nc_lease}");
            }
        })
    }

    /// `nc_lease` is recorded in the database: a store opened with another
    /// value is refused, naming the key.
    #[test]
    fn instances_must_agree_on_nc_lease() {
        rocket::async_test(async {
            let name = format!("nc_lease_{}", &generate_token()[..8]);
            let Some(url) = crate::common::mysql::database_url(&name).await else {
                return;
            };
            let leasing = open(&url, StoreOptions::new(REALM)).await;
            leasing.close().await;
            let row_per_claim = StoreOptions {
                nc_lease: Some(0),
                ..StoreOptions::new(REALM)
            };
            let refused = SqlStore::connect_url(&url, row_per_claim).await;
            crate::common::mysql::drop_database(&name).await;
            let err = refused.unwrap_err().to_string();
            assert!(
                err.contains("digest_auth.nc_lease") && err.contains("256"),
                "{err}"
            );
        })
    }
}

/// Two stores on one database, as two instances have: 100 counts on one
/// nonce, each claimed by both at once, each won exactly once.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn two_instances_claim_each_count_once(a: &SqlStore, b: &SqlStore) {
    let nonce = format!(
        "two-instances-{}",
        rocket_digest_auth::store::generate_token()
    );
    let expires_at = chrono::Utc::now().timestamp() + 3600;
    let mut tasks = Vec::new();
    for nc in 1..=100u32 {
        for (i, store) in [a, b].into_iter().enumerate() {
            let (store, nonce) = (store.clone(), nonce.clone());
            tasks.push(rocket::tokio::spawn(async move {
                let claim = store.claim(at(&nonce, "c", nc, expires_at)).await;
                (nc, i, claim.expect("claim"))
            }));
        }
    }
    let mut winners = vec![Vec::new(); 101];
    for task in tasks {
        let (nc, i, claim) = task.await.unwrap();
        if claim == Claim::Accepted {
            winners[nc as usize].push(i);
        }
    }
    for (nc, w) in winners.iter().enumerate().skip(1) {
        assert_eq!(w.len(), 1, "nc {nc} was accepted by instances {w:?}");
    }
    // And afterwards, each count is refused by both.
    for nc in [1, 50, 100] {
        for store in [a, b] {
            let claim = store.claim(at(&nonce, "c", nc, expires_at)).await.unwrap();
            assert_eq!(claim, Claim::Replayed, "nc {nc}");
        }
    }
}

/// The database store's token administration, run on SQLite and PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod checks {
    use std::sync::Arc;

    use rocket_digest_auth::config::TokenStorage;
    use rocket_digest_auth::protocol::{
        digest, Algorithm, ClientChallenge, DigestClient, HashFunction,
    };
    use rocket_digest_auth::store::{
        generate_token, Credential, CredentialStore, Secret, SqlStore, StoreOptions, TokenAdmin,
    };
    use rocket_digest_auth::verifier::{RequestParts, Verifier};
    use rocket_digest_auth::Config;

    use super::REALM;

    /// The raw columns of a user's row: token, then the three HA1 values.
    pub type RawRow = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn unique_user(tag: &str) -> String {
        format!("{tag}-{}", &generate_token()[..12])
    }

    /// A verifier over `store`, as the fairing would build it.
    fn verifier(store: &SqlStore, options: &StoreOptions) -> Verifier {
        let config = Config::default()
            .with_realm(options.realm.clone())
            .with_secret(generate_token())
            .with_token_storage(if options.ha1_only {
                TokenStorage::Ha1
            } else {
                TokenStorage::Token
            })
            .with_algorithms([Algorithm::Sha256, Algorithm::Md5, Algorithm::Sha512_256Sess]);
        let store = Arc::new(store.clone());
        Verifier::new(config, store.clone(), store).expect("a valid configuration")
    }

    /// Signs in as `user` with `token` for each offered algorithm; returns the
    /// status codes (200 for success).
    async fn sign_in(verifier: &Verifier, user: &str, token: &str) -> Vec<u16> {
        let mut codes = Vec::new();
        for header in verifier.challenges(false) {
            let challenge = ClientChallenge::parse(&header).unwrap().unwrap();
            let mut client = DigestClient::new(user, token, challenge);
            let authorization = client.authorization("GET", "/me");
            let parts = RequestParts::new("GET", "/me", Some(&authorization));
            codes.push(match verifier.verify(&parts).await {
                Ok(verified) => {
                    assert_eq!(verified.credential.username, user);
                    200
                }
                Err(rejection) => rejection.status_code(),
            });
        }
        codes
    }

    pub async fn tokens_issue_rotate_revoke(store: &SqlStore, options: &StoreOptions) {
        let verifier = verifier(store, options);
        let user = unique_user("rotate");
        assert_eq!(store.credential(&user).await.unwrap(), None);

        let first = store.issue_token(&user).await.unwrap();
        assert_eq!(first.len(), 40);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        let credential = store.credential(&user).await.unwrap().expect("issued");
        assert_eq!(credential.username, user);
        assert_eq!(credential.secret, Secret::Token(first.clone()));
        let created = credential.created_at.expect("created_at recorded");
        assert!((chrono::Utc::now() - created).num_seconds().abs() < 60);
        assert_eq!(sign_in(&verifier, &user, &first).await, [200, 200, 200]);

        // Rotation: a new token; the old one stops working at once.
        let second = store.issue_token(&user).await.unwrap();
        assert_ne!(second, first);
        let credential = store.credential(&user).await.unwrap().expect("rotated");
        assert_eq!(credential.secret, Secret::Token(second.clone()));
        assert_eq!(sign_in(&verifier, &user, &first).await, [401, 401, 401]);
        assert_eq!(sign_in(&verifier, &user, &second).await, [200, 200, 200]);

        // Revocation: gone, and only once.
        assert!(store.revoke_token(&user).await.unwrap());
        assert_eq!(store.credential(&user).await.unwrap(), None);
        assert!(!store.revoke_token(&user).await.unwrap());
        assert_eq!(sign_in(&verifier, &user, &second).await, [401, 401, 401]);
    }

    pub async fn userhash_lookup(store: &SqlStore, options: &StoreOptions) {
        let user = unique_user("hashed");
        let token = store.issue_token(&user).await.unwrap();
        // The userhash a client computes (RFC 7616 3.4.4) finds the user under
        // each hash function; the one of another hash function does not.
        for (alg, hash) in [
            (Algorithm::Md5, HashFunction::Md5),
            (Algorithm::Sha256, HashFunction::Sha256),
            (Algorithm::Sha512_256, HashFunction::Sha512_256),
        ] {
            let userhash = digest::userhash(alg, &user, &options.realm);
            assert_eq!(userhash, options.userhash(hash, &user));
            let found: Option<Credential> =
                store.credential_by_userhash(hash, &userhash).await.unwrap();
            let found = found.unwrap_or_else(|| panic!("{user} not found by its {alg} userhash"));
            assert_eq!(found.username, user);
            assert_eq!(found.secret, Secret::Token(token.clone()));
            let other = if hash == HashFunction::Md5 {
                HashFunction::Sha256
            } else {
                HashFunction::Md5
            };
            assert_eq!(
                store
                    .credential_by_userhash(other, &userhash)
                    .await
                    .unwrap(),
                None
            );
        }
        let h = HashFunction::Sha256;
        // The userhash is of this realm only.
        let elsewhere = digest::userhash(Algorithm::Sha256, &user, "another realm");
        assert_eq!(
            store.credential_by_userhash(h, &elsewhere).await.unwrap(),
            None
        );
        // A rotated token is found under the same userhash; a revoked user is not.
        let rotated = store.issue_token(&user).await.unwrap();
        let found = store
            .credential_by_userhash(h, &options.userhash(h, &user))
            .await
            .unwrap()
            .expect("still found after rotation");
        assert_eq!(found.secret, Secret::Token(rotated));
        assert!(store.revoke_token(&user).await.unwrap());
        assert_eq!(
            store
                .credential_by_userhash(h, &options.userhash(h, &user))
                .await
                .unwrap(),
            None
        );
    }

    /// Issues a token in HA1-only mode and checks what the store returns;
    /// returns (user, token) for a look at the raw row.
    pub async fn ha1_only_storage(store: &SqlStore, options: &StoreOptions) -> (String, String) {
        assert!(options.ha1_only);
        let user = unique_user("ha1");
        let token = store.issue_token(&user).await.unwrap();
        let credential = store.credential(&user).await.unwrap().expect("issued");
        assert!(
            matches!(credential.secret, Secret::Ha1 { .. }),
            "the token is stored: {:?}",
            credential.secret
        );
        for alg in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ] {
            assert_eq!(
                credential.ha1(alg, &options.realm),
                Some(digest::ha1(alg, &user, &options.realm, &token)),
                "{alg}"
            );
        }
        // The user signs in with the token the store no longer has.
        let verifier = verifier(store, options);
        assert_eq!(sign_in(&verifier, &user, &token).await, [200, 200, 200]);
        assert_eq!(
            sign_in(&verifier, &user, &generate_token()).await,
            [401, 401, 401]
        );
        (user, token)
    }

    pub fn check_raw_ha1_row(row: RawRow, user: &str, token: &str) {
        let (stored_token, md5, sha256, sha512_256) = row;
        assert_eq!(stored_token, None, "the token column must be NULL");
        let expected = Secret::ha1_values(user, REALM, token);
        assert_eq!(md5.as_deref(), Some(expected[0].as_str()));
        assert_eq!(sha256.as_deref(), Some(expected[1].as_str()));
        assert_eq!(sha512_256.as_deref(), Some(expected[2].as_str()));
        assert_eq!(
            expected[1],
            digest::ha1(Algorithm::Sha256, user, REALM, token)
        );
    }
}
