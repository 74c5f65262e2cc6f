//! The shared `NonceCountStore` suite on PostgreSQL, row by row and
//! leased, two instances on one database, and the database store's token
//! administration (`tests/common/store_checks.rs`).
//!
//! Needs `--features postgres` and the database of
//! `DIGEST_AUTH_TEST_POSTGRES_URL` (see `tests/common/postgres.rs`).
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use common::store_checks::REALM;
use rocket_digest_auth::store::suite::StoreUnderTest;
use rocket_digest_auth::store::{SqlStore, StoreOptions, TokenAdmin};

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

    /// The test database's URL in `SCHEMA`, nothing to keep.
    async fn database() -> Option<(String, ())> {
        Some((crate::common::postgres::schema_url(SCHEMA).await?, ()))
    }

    crate::token_admin_tests!(database(), sqlx::PgPool, "$1");

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
        crate::common::store_checks::two_instances_race(|| connect_in(schema, options.clone()));
    }
}
