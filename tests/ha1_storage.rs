//! `token_storage = "ha1"`: the database keeps HA1 values, never the token.

mod common;

use common::local::{get, issue, session};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::routes;
use rocket_digest_auth::DigestAuth;
use sqlx::Row;

async fn client(db_url: &str, realm: &str, algorithms: &[&str]) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("databases.digest_auth.url", db_url))
        .merge(("digest_auth.realm", realm))
        .merge(("digest_auth.token_storage", "ha1"))
        .merge(("digest_auth.algorithms", algorithms));
    let rocket = rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![common::me]);
    Client::tracked(rocket).await.expect("valid rocket")
}

/// Answers the challenge for `algorithm` and returns the status.
async fn get_me(client: &Client, token: &str, algorithm: &str) -> Status {
    let algorithm = algorithm.parse().expect("an algorithm name");
    let mut session = session(client, "alice", token, algorithm).await;
    let auth = session.authorization("GET", "/me");
    get(client, "/me", Some(&auth)).await.status
}

#[rocket::async_test]
async fn only_ha1_values_are_stored_and_every_algorithm_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::sqlite_url(&dir.path().join("ha1.db"));
    let algorithms = ["SHA-512-256", "SHA-256", "MD5", "MD5-sess"];
    let client = client(&url, "ha1 realm", &algorithms).await;
    let token = issue(&client, "alice").await;

    for algorithm in algorithms {
        assert_eq!(
            get_me(&client, &token, algorithm).await,
            Status::Ok,
            "{algorithm}"
        );
    }
    assert_eq!(
        get_me(&client, "not the token", "SHA-256").await,
        Status::Unauthorized
    );

    // The token itself is nowhere in the database.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let row = sqlx::query("SELECT token, ha1_sha256 FROM digest_auth_tokens WHERE username = $1")
        .bind("alice")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<Option<String>, _>("token"), None);
    assert_eq!(
        row.get::<Option<String>, _>("ha1_sha256").map(|h| h.len()),
        Some(64)
    );
    let dump: Vec<String> = sqlx::query("SELECT * FROM digest_auth_tokens")
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .flat_map(|r| (0..r.len()).filter_map(|i| r.try_get::<String, _>(i).ok()))
        .collect();
    assert!(
        dump.iter().all(|v| !v.contains(&token)),
        "token stored: {dump:?}"
    );
}

#[rocket::async_test]
async fn changing_the_realm_invalidates_stored_ha1_values() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::sqlite_url(&dir.path().join("ha1.db"));
    let token = issue(&client(&url, "old realm", &["SHA-256"]).await, "alice").await;
    let client = client(&url, "new realm", &["SHA-256"]).await;
    assert_eq!(
        get_me(&client, &token, "SHA-256").await,
        Status::Unauthorized
    );
    // Re-issuing the token under the new realm restores access.
    let token = issue(&client, "alice").await;
    assert_eq!(get_me(&client, &token, "SHA-256").await, Status::Ok);
}
