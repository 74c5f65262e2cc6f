//! PostgreSQL for tests: connect, or skip with a printed reason, or fail.
//!
//! The database comes from `DIGEST_AUTH_TEST_POSTGRES_URL` (default
//! [`DEFAULT_URL`], what `./scripts/test` sets up). When it cannot be
//! reached, a test fails if `DIGEST_AUTH_REQUIRE_ALL` or
//! `DIGEST_AUTH_REQUIRE_POSTGRES` is set (`./scripts/test` sets them, so a
//! missing database never passes silently), and is skipped otherwise, the
//! binary saying once why ([`super::require::POSTGRES`]).
//!
//! Tests share that database with each other and with concurrent runs, so
//! each test file works in a schema of its own, chosen through the URL
//! (`options[search_path]=<schema>`): the built-in store keeps its userhash
//! columns for one realm per database, and connecting a store with another
//! realm rewrites them, which would disturb a test using another realm.
//!
//! ```ignore
//! mod common;
//!
//! #[test]
//! fn something_on_postgres() {
//!     let Some(url) = common::postgres::schema_url_blocking("my_tests") else {
//!         return; // skipped, reason printed
//!     };
//!     // SqlStore::connect_url(&url, ..), or databases.digest_auth.url = url
//! }
//! ```

use std::fmt::Display;

/// The database CI provides.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The variable naming the test database.
pub const URL_VAR: &str = "DIGEST_AUTH_TEST_POSTGRES_URL";

/// The test database's URL.
pub fn base_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => DEFAULT_URL.to_owned(),
    }
}

/// Whether PostgreSQL tests must run rather than skip.
pub fn required() -> bool {
    super::require::POSTGRES.required()
}

/// The database is not usable: panics when PostgreSQL is required, else
/// skips (see [`super::require`]) and returns `None`.
pub fn unavailable<T>(url: &str, error: impl Display) -> Option<T> {
    super::require::POSTGRES.skip(format!("no usable server at {}: {error}", redact(url)));
    None
}

/// `url` with `schema` first on the search path.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options%5Bsearch_path%5D={schema}")
}

/// `url` without a password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let password = if userinfo.contains(':') { ":***" } else { "" };
            format!(
                "{scheme}://{user}{password}@{host}{}",
                &rest[authority_end..]
            )
        }
        None => url.to_owned(),
    }
}

/// The host and port a `postgres://host:port/...` URL points at.
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None if !host_port.is_empty() => Some((host_port.to_owned(), 5432)),
        None => None,
    }
}

/// `url` with its `host:port` replaced by `new_host_port`.
pub fn replace_host_port(url: &str, new_host_port: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    Some(format!(
        "{scheme}://{}{new_host_port}{}",
        userinfo.unwrap_or_default(),
        &rest[authority_end..]
    ))
}

#[cfg(feature = "postgres")]
mod connect {
    use std::time::Duration;

    use sqlx::{Connection, PgConnection};

    /// Connect-or-skip: the URL of schema `schema` in the test database,
    /// or `None` after printing why PostgreSQL is not usable here. Panics
    /// instead when PostgreSQL is required.
    ///
    /// The first call of a test process drops and recreates the schema, so
    /// a run starts from what this checkout's migrations make, never from
    /// tables another version left behind. Tests of one process share it:
    /// they use usernames and nonces of their own, not row counts.
    pub async fn schema_url(schema: &str) -> Option<String> {
        assert!(
            !schema.is_empty()
                && schema.len() < 64
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !schema.as_bytes()[0].is_ascii_digit(),
            "schema name `{schema}`: use [a-z_][a-z0-9_]*"
        );
        let url = super::base_url();
        let connecting = PgConnection::connect(&url);
        let mut conn = match rocket::tokio::time::timeout(Duration::from_secs(10), connecting).await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return super::unavailable(&url, e),
            Err(_) => return super::unavailable(&url, "no answer within 10 s"),
        };
        let mut fresh = super::super::fresh_this_run().lock().await;
        let first_use = fresh.insert(format!("postgres {schema}"));
        // Concurrent `CREATE SCHEMA IF NOT EXISTS` can still collide on the
        // catalog's unique index: serialize it across test processes.
        let created: Result<(), sqlx::Error> = async {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtext('rocket_digest_auth test schemas'))",
            )
            .execute(&mut *tx)
            .await?;
            if first_use {
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        drop(fresh);
        if let Err(e) = created {
            return super::unavailable(&url, format!("cannot create schema {schema}: {e}"));
        }
        let _ = conn.close().await;
        Some(super::with_search_path(&url, schema))
    }

    /// [`schema_url`] for a test that is not async.
    pub fn schema_url_blocking(schema: &str) -> Option<String> {
        super::super::block_on(schema_url(schema))
    }
}

#[cfg(feature = "postgres")]
#[allow(unused_imports)]
pub use connect::{schema_url, schema_url_blocking};
