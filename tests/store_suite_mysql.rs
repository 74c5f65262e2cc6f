//! The shared `NonceCountStore` suite on MySQL/MariaDB, leased and row by
//! row, two instances on one database, leases across a restart, the
//! credential cache across processes, and the database store's token
//! administration (`tests/common/store_checks.rs`).
//!
//! Needs `--features mysql` and the server of `DIGEST_AUTH_TEST_MYSQL_URL`
//! (see `tests/common/mysql.rs`).
#![cfg(feature = "mysql")]

mod common;

use std::sync::Arc;

use common::store_checks::{at, REALM};
use rocket_digest_auth::store::suite::StoreUnderTest;
use rocket_digest_auth::store::{
    Claim, CredentialStore, NonceCountStore, SqlStore, StoreOptions, TokenAdmin, DEFAULT_NC_WINDOW,
};

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

    /// The URL of `DATABASE` on the test server, nothing to keep.
    async fn database() -> Option<(String, ())> {
        Some((crate::common::mysql::database_url(DATABASE).await?, ()))
    }

    crate::token_admin_tests!(database(), sqlx::MySqlPool, "?");

    fn two_instances_in(database: &str, options: StoreOptions) {
        crate::common::store_checks::two_instances_race(|| connect_in(database, options.clone()));
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
            assert_eq!(found, Some(Secret::Token(first.into())), "a new user");

            let second = theirs.issue_token(&user).await.unwrap();
            rocket::tokio::time::sleep(recheck * 2).await;
            let found = secret(cached.credential(&user).await.unwrap());
            assert_eq!(found, Some(Secret::Token(second.into())), "a rotation");

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
            assert_eq!(found.secret, Secret::Token(token.into()));
            let found = store.credential(&upper).await.unwrap().expect("issued");
            assert_eq!(found.secret, Secret::Token(other.into()));
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
