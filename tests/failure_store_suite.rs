//! The shared `FailureStore` suite (`failure_store_suite!`) on every store
//! that shares a failure limit: SQLite, PostgreSQL and MySQL/MariaDB (the
//! database store) and Redis, each on the server the other tests use.

mod common;

use std::sync::Arc;

use rocket_digest_auth::store::failure_suite::FailureStoreUnderTest;
use rocket_digest_auth::store::StoreOptions;

const REALM: &str = "failure store suite";

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use rocket_digest_auth::store::SqlStore;

    /// One database file in cargo's temporary directory for the tests'
    /// target: every check uses pairs of its own.
    async fn make() -> Option<FailureStoreUnderTest> {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("failure_store.db");
        let url = common::sqlite_url(&path);
        let store = SqlStore::connect_url(&url, StoreOptions::new(REALM)).await;
        Some(Arc::new(store.expect("a SQLite store")))
    }

    rocket_digest_auth::failure_store_suite!(make);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use rocket_digest_auth::store::SqlStore;

    async fn make() -> Option<FailureStoreUnderTest> {
        let url = common::postgres::schema_url("digest_auth_test_failure_store").await?;
        let store = SqlStore::connect_url(&url, StoreOptions::new(REALM)).await;
        Some(Arc::new(store.expect("a PostgreSQL store")))
    }

    rocket_digest_auth::failure_store_suite!(make);
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use rocket_digest_auth::store::SqlStore;

    async fn make() -> Option<FailureStoreUnderTest> {
        let url = common::mysql::database_url("failure_store").await?;
        let store = SqlStore::connect_url(&url, StoreOptions::new(REALM)).await;
        Some(Arc::new(store.expect("a MySQL store")))
    }

    rocket_digest_auth::failure_store_suite!(make);
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    async fn make() -> Option<FailureStoreUnderTest> {
        Some(Arc::new(
            common::redis::shared_store("failure_store").await?,
        ))
    }

    rocket_digest_auth::failure_store_suite!(make);
}
