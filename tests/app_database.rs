//! The crate's tables in the app's own rocket_db_pools database
//! (`with_database::<Db>()`): a token issued through `Tokens` is a row the
//! app reads through its own pool, the app's own sqlx migrations run on the
//! same database before or after the crate's, `DigestAuth::pool` hands out
//! the pool in use, and a database migrated when the crate recorded its
//! migrations in `_sqlx_migrations` carries on without re-running any.

mod common;

use std::path::Path;

use common::app::{base_figment, routes, signed_get};
use common::logs::ignite_errors;
use common::{local, logs};
use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_db_pools::{sqlx, Database};
use rocket_digest_auth::protocol::Algorithm;
use rocket_digest_auth::store::{SqlStore, StoreOptions};
use rocket_digest_auth::DigestAuth;
use serde_json::json;

/// The app's own sqlx migration, in `dir`: a users table of its own.
fn app_migrations(dir: &Path) -> std::path::PathBuf {
    let migrations = dir.join("app_migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        migrations.join("20250101000000_app_users.sql"),
        "CREATE TABLE IF NOT EXISTS app_users (name TEXT PRIMARY KEY NOT NULL)",
    )
    .unwrap();
    migrations
}

/// `[digest_auth]` for these tests, with the app's database `app` at `url`.
fn figment(url: &str) -> Figment {
    base_figment()
        .merge(("digest_auth", json!({ "secret": common::app::SECRET })))
        .merge(("databases.app.url", url))
}

/// A test of the app `$db` (a rocket_db_pools database named `app`) at
/// `$url`, its own migrations run `$when` ("before" or "after" the crate's):
/// alice's token issued through `Tokens` is one row read through the app's
/// pool and `DigestAuth::pool`, she logs in, and the app's table is there.
macro_rules! app_database_round_trip {
    ($db:ty, $pool:ty, $url:expr, $dir:expr, $when:literal) => {{
        let migrator = std::sync::Arc::new(
            sqlx::migrate::Migrator::new(app_migrations($dir.path()))
                .await
                .expect("the app's migrations"),
        );
        let app_migrate = AdHoc::try_on_ignite("app migrations", move |rocket| async move {
            let db = <$db>::fetch(&rocket).expect("the app's database");
            match migrator.run(&**db).await {
                Ok(()) => Ok(rocket),
                Err(e) => panic!("the app's own migrations failed: {e}"),
            }
        });
        let rocket = logs::rocket(figment(&$url)).attach(<$db>::init());
        let rocket = match $when {
            "before" => rocket
                .attach(app_migrate)
                .attach(DigestAuth::fairing().with_database::<$db>()),
            _ => rocket
                .attach(DigestAuth::fairing().with_database::<$db>())
                .attach(app_migrate),
        };
        let client = Client::tracked(rocket.mount("/", routes()))
            .await
            .expect("the rocket launched");
        let username = format!("alice_{}", $when);
        let token = local::issue(&client, &username).await;
        let app_pool: &$pool = &**<$db>::fetch(client.rocket()).unwrap();
        let count = "SELECT COUNT(*) FROM digest_auth_tokens WHERE username = $1";
        let rows: i64 = sqlx::query_scalar(count)
            .bind(&username)
            .fetch_one(app_pool)
            .await
            .unwrap();
        assert_eq!(rows, 1, "alice's token row, read through the app's pool");
        let crate_pool: &$pool = DigestAuth::pool(client.rocket()).expect("the pool in use");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_users")
            .fetch_one(crate_pool)
            .await
            .expect("the app's table, through DigestAuth::pool");
        assert!(rows >= 0);
        let mut session = local::session(&client, &username, &token, Algorithm::Sha256).await;
        let (_, reply) = signed_get(&client, &mut session, "/me").await;
        assert_eq!(reply.status, Status::Ok, "{reply:?}");
        assert_eq!(reply.json()["username"], username.as_str());
    }};
}

/// A database at `$url` the crate migrated through sqlx's own bookkeeping
/// (`_sqlx_migrations`): the store opens it, the records move to
/// `digest_auth_migrations`, and nothing runs again (a table dropped after
/// the migrations stays dropped).
macro_rules! carries_on_from_sqlx_migrations {
    ($pool:ty, $migrations:literal, $url:expr) => {{
        let url = $url;
        let pool = <$pool>::connect(&url).await.unwrap();
        sqlx::migrate!($migrations).run(&pool).await.unwrap();
        sqlx::query("DROP TABLE digest_auth_nonce_watermark")
            .execute(&pool)
            .await
            .unwrap();
        let store = SqlStore::connect_url(&url, StoreOptions::new("carry on"))
            .await
            .expect("the store opens the database as it is");
        let watermark = sqlx::query("SELECT 1 FROM digest_auth_nonce_watermark")
            .fetch_all(&pool)
            .await;
        assert!(watermark.is_err(), "a migration ran again");
        let recorded: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM digest_auth_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        let shipped: Vec<i64> = sqlx::migrate!($migrations)
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(recorded, shipped);
        store.close().await;
        pool.close().await;
    }};
}

#[cfg(feature = "sqlite")]
mod on_sqlite {
    use super::*;

    #[derive(Database)]
    #[database("app")]
    struct Db(sqlx::SqlitePool);

    fn url(dir: &tempfile::TempDir) -> String {
        common::sqlite_url(&dir.path().join("app.db"))
    }

    #[rocket::async_test]
    async fn tokens_live_in_the_app_database_beside_its_own_migrations_run_after() {
        let dir = tempfile::tempdir().unwrap();
        app_database_round_trip!(Db, sqlx::SqlitePool, url(&dir), dir, "after");
    }

    #[rocket::async_test]
    async fn tokens_live_in_the_app_database_beside_its_own_migrations_run_before() {
        let dir = tempfile::tempdir().unwrap();
        app_database_round_trip!(Db, sqlx::SqlitePool, url(&dir), dir, "before");
    }

    #[test]
    fn the_app_database_must_be_attached_first() {
        let dir = tempfile::tempdir().unwrap();
        let rocket = logs::rocket(figment(&url(&dir)))
            .attach(DigestAuth::fairing().with_database::<Db>())
            .attach(Db::init());
        let lines = ignite_errors(rocket);
        assert!(
            lines.iter().any(|l| l
                == "Digest authentication failed to start: the database `app` given to \
                    `with_database::<Db>()` is not attached: attach `Db::init()` before \
                    `DigestAuth::fairing()`"),
            "{lines:?}"
        );
    }

    #[test]
    fn the_memory_store_and_the_app_database_contradict() {
        let dir = tempfile::tempdir().unwrap();
        let rocket = logs::rocket(figment(&url(&dir)).merge(("digest_auth.store", "memory")))
            .attach(Db::init())
            .attach(DigestAuth::fairing().with_database::<Db>());
        let lines = ignite_errors(rocket);
        assert!(
            lines.iter().any(|l| l.starts_with(
                "Digest authentication failed to start: invalid `digest_auth.store`: is \"memory\""
            )),
            "{lines:?}"
        );
    }

    #[rocket::async_test]
    async fn a_database_migrated_through_sqlx_migrations_carries_on() {
        let dir = tempfile::tempdir().unwrap();
        carries_on_from_sqlx_migrations!(sqlx::SqlitePool, "migrations/sqlite", url(&dir));
    }
}

#[cfg(feature = "postgres")]
mod on_postgres {
    use super::*;

    #[derive(Database)]
    #[database("app")]
    struct Db(sqlx::PgPool);

    #[rocket::async_test]
    async fn tokens_live_in_the_app_database_beside_its_own_migrations() {
        let Some(url) = common::postgres::schema_url("digest_auth_app_database").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        app_database_round_trip!(Db, sqlx::PgPool, url, dir, "after");
    }

    #[rocket::async_test]
    async fn a_database_migrated_through_sqlx_migrations_carries_on() {
        let schema = "digest_auth_carry_on";
        // Emptied first: the test starts from sqlx's bookkeeping alone.
        if let Ok(admin) = sqlx::PgPool::connect(&common::postgres::base_url()).await {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
        let Some(url) = common::postgres::schema_url(schema).await else {
            return;
        };
        carries_on_from_sqlx_migrations!(sqlx::PgPool, "migrations/postgres", url);
    }
}

#[cfg(feature = "mysql")]
mod on_mysql {
    use super::*;

    #[rocket::async_test]
    async fn a_database_migrated_through_sqlx_migrations_carries_on() {
        let name = "carry_on";
        // Emptied first: the test starts from sqlx's bookkeeping alone.
        if common::mysql::database_url(name).await.is_none() {
            return;
        }
        common::mysql::drop_database(name).await;
        let Some(url) = common::mysql::database_url(name).await else {
            return;
        };
        carries_on_from_sqlx_migrations!(sqlx::MySqlPool, "migrations/mysql", url);
    }
}
