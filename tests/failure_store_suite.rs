//! The shared `FailureStore` suite (`failure_store_suite!`) on every store
//! that shares a failure limit: SQLite, PostgreSQL and MySQL/MariaDB (the
//! database store) and Redis, each on the server the other tests use.

mod common;

use std::sync::Arc;

use rocket_digest_auth::store::failure_suite::FailureStoreUnderTest;
use rocket_digest_auth::store::StoreOptions;

const REALM: &str = "failure store suite";

/// The database store at `url`.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
async fn database(url: &str) -> Option<FailureStoreUnderTest> {
    let store = rocket_digest_auth::store::SqlStore::connect_url(url, StoreOptions::new(REALM));
    Some(Arc::new(
        store
            .await
            .unwrap_or_else(|e| panic!("a store at {url}: {e}")),
    ))
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    /// One database file in cargo's temporary directory for the tests'
    /// target: every check uses pairs of its own.
    async fn make() -> Option<FailureStoreUnderTest> {
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("failure_store.db");
        database(&common::sqlite_url(&path)).await
    }

    rocket_digest_auth::failure_store_suite!(make);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    async fn make() -> Option<FailureStoreUnderTest> {
        database(&common::postgres::schema_url("digest_auth_test_failure_store").await?).await
    }

    rocket_digest_auth::failure_store_suite!(make);
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    async fn make() -> Option<FailureStoreUnderTest> {
        database(&common::mysql::database_url("failure_store").await?).await
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
