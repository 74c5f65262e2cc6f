//! MySQL or MariaDB for tests: connect, or skip with a printed reason, or fail.
//!
//! The server comes from `DIGEST_AUTH_TEST_MYSQL_URL` (default
//! [`DEFAULT_URL`], what `./scripts/test` sets up). When it cannot be
//! reached, a test fails if `DIGEST_AUTH_REQUIRE_ALL` is set and is skipped
//! otherwise ([`super::require::MYSQL`]).
//!
//! Each test file works in a database of its own on that server
//! (`digest_auth_test_<name>`, dropped and recreated by the first use in a
//! test process), as the PostgreSQL tests do in schemas: the store keeps
//! userhash values for one realm and `nc_lease` per database.

/// The server CI provides.
pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The variable naming the test server.
pub const URL_VAR: &str = "DIGEST_AUTH_TEST_MYSQL_URL";

/// The test server's URL.
pub fn base_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => DEFAULT_URL.to_owned(),
    }
}

/// `url` with its database (the path) replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("mysql", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[authority_end..]
        .find('?')
        .map(|q| &rest[authority_end + q..])
        .unwrap_or("");
    format!("{scheme}://{}/{database}{query}", &rest[..authority_end])
}

#[cfg(feature = "mysql")]
mod connect {
    use std::time::Duration;

    use sqlx::{Connection, MySqlConnection};

    /// Connect-or-skip: the URL of database `digest_auth_test_<name>` on the
    /// test server (created if missing), or `None` after printing why the
    /// server is not usable here. Panics instead when MySQL is required.
    pub async fn database_url(name: &str) -> Option<String> {
        assert!(
            !name.is_empty()
                && name.len() < 40
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name `{name}`: use [a-z0-9_]+"
        );
        let url = super::base_url();
        let unusable = |e: String| {
            super::super::require::MYSQL.skip(format!("no usable server at {url}: {e}"));
            None
        };
        let connecting = MySqlConnection::connect(&url);
        let mut conn = match rocket::tokio::time::timeout(Duration::from_secs(10), connecting).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return unusable(e.to_string()),
            Err(_) => return unusable("no answer within 10 s".into()),
        };
        let database = format!("digest_auth_test_{name}");
        // A run starts from what this checkout's migrations make, never from
        // tables another version left behind.
        let mut fresh = super::super::fresh_this_run().lock().await;
        let created = async {
            if fresh.insert(format!("mysql {database}")) {
                sqlx::query(&format!("DROP DATABASE IF EXISTS `{database}`"))
                    .execute(&mut conn)
                    .await?;
            }
            sqlx::query(&format!("CREATE DATABASE IF NOT EXISTS `{database}`"))
                .execute(&mut conn)
                .await
        }
        .await;
        drop(fresh);
        let _ = conn.close().await;
        if let Err(e) = created {
            return unusable(format!("cannot create database {database}: {e}"));
        }
        Some(super::with_database(&url, &database))
    }

    /// [`database_url`] for a test that is not async.
    pub fn database_url_blocking(name: &str) -> Option<String> {
        super::super::block_on(database_url(name))
    }

    /// Drops database `digest_auth_test_<name>`.
    pub async fn drop_database(name: &str) {
        let mut conn = MySqlConnection::connect(&super::base_url())
            .await
            .expect("connect to the MySQL test server");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS `digest_auth_test_{name}`"
        ))
        .execute(&mut conn)
        .await
        .expect("drop the test database");
        let _ = conn.close().await;
    }
}

#[cfg(feature = "mysql")]
#[allow(unused_imports)]
pub use connect::{database_url, database_url_blocking, drop_database};
