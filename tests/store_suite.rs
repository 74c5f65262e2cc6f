//! The shared `NonceCountStore` suite on the in-process stores (memory and
//! SQLite), and the database store's token administration on SQLite: issue,
//! rotate, revoke, userhash lookup and HA1-only storage. PostgreSQL and
//! MySQL/MariaDB have `tests/store_suite_postgres.rs` and
//! `tests/store_suite_mysql.rs`; what all three share is in
//! `tests/common/store_checks.rs`.

mod common;

use std::sync::Arc;

use common::store_checks::{at, REALM};
use rocket_digest_auth::store::suite::StoreUnderTest;
use rocket_digest_auth::store::{
    Claim, ClaimRequest, CredentialStore, NonceCountStore, SqlStore, StoreError, StoreOptions,
    TokenAdmin, DEFAULT_NC_WINDOW,
};

/// A SQLite store in a temporary directory that goes with it.
#[cfg(feature = "sqlite")]
struct SqliteInTempDir {
    store: SqlStore,
    _dir: tempfile::TempDir,
}

/// A database file in a temporary directory that goes with it.
#[cfg(feature = "sqlite")]
async fn temp_database() -> Option<(String, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = crate::common::sqlite_url(&dir.path().join("digest_auth.db"));
    Some((url, dir))
}

#[cfg(feature = "sqlite")]
impl SqliteInTempDir {
    async fn new(options: StoreOptions) -> SqliteInTempDir {
        let (url, dir) = temp_database().await.expect("a temporary database");
        let store = SqlStore::connect_url(&url, options)
            .await
            .expect("SQLite store in a temporary directory");
        SqliteInTempDir { store, _dir: dir }
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
                Some(Secret::Token(first.into())),
                "a new user, within the recheck"
            );
            assert_eq!(cached.cached(), 1);

            let second = theirs.issue_token("u").await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential("u").await.unwrap());
            assert_eq!(
                found,
                Some(Secret::Token(second.into())),
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

    crate::token_admin_tests!(super::temp_database(), sqlx::SqlitePool, "$1");

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
