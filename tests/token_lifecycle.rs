//! `Tokens` as an app uses it: issue, set (import), exists, info, list and
//! revoke on every built-in store (memory, SQLite, PostgreSQL, MySQL), with
//! typed errors (invalid input, unknown user, store unavailable) and their
//! responders (400, 404, 503, in JSON when the client prefers it).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rocket::http::{Accept, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, post, routes, State};
use rocket_digest_auth::store::{CredentialStore, MemoryStore, Secret, StoreError, StoreOptions};
use rocket_digest_auth::{DigestAuth, TokenError, Tokens};
use serde_json::json;

use common::local::send;

const REALM: &str = "token lifecycle tests";

/// Usernames no earlier or concurrent run used (the PostgreSQL schema and
/// MySQL database are kept between runs).
fn run_prefix() -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("lc{}x{nanos}_", std::process::id())
}

/// The whole lifecycle through `tokens`, checked also through `lookup`, the
/// store's credential lookups.
async fn lifecycle(tokens: &Tokens, lookup: &dyn CredentialStore) {
    let prefix = run_prefix();
    let (alice, bob) = (format!("{prefix}alice"), format!("{prefix}bob"));

    assert!(!tokens.exists(&alice).await.unwrap());
    assert!(matches!(
        tokens.info(&alice).await,
        Err(TokenError::UnknownUser(name)) if name == alice
    ));

    let before = Utc::now().timestamp();
    let token = tokens.issue(&alice).await.unwrap();
    assert_eq!(token.len(), 40, "{token}");
    assert!(tokens.exists(&alice).await.unwrap());
    let first = tokens.info(&alice).await.unwrap();
    assert_eq!(&*first.username, alice);
    assert_eq!(first.created_at, first.updated_at);
    let created = first.created_at.timestamp();
    assert!(
        (before..=Utc::now().timestamp()).contains(&created),
        "{first:?}"
    );

    // The store keeps seconds: a later second shows a change.
    rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
    tokens.set(&alice, "an imported token").await.unwrap();
    let credential = lookup.credential(&alice).await.unwrap().expect("alice");
    assert_eq!(credential.secret, Secret::Token("an imported token".into()));
    let changed = tokens.info(&alice).await.unwrap();
    assert_eq!(changed.created_at, first.created_at, "creation is kept");
    assert!(changed.updated_at > first.updated_at, "{changed:?}");
    assert_eq!(credential.created_at, Some(changed.updated_at));

    tokens.set(&bob, "bob's token").await.unwrap();
    let listed: Vec<_> = tokens.list().await.unwrap();
    let ours: Vec<_> = listed
        .iter()
        .filter(|info| info.username.starts_with(&prefix))
        .cloned()
        .collect();
    assert_eq!(ours, [changed, tokens.info(&bob).await.unwrap()]);
    let shown = format!("{listed:?}");
    assert!(!shown.contains("an imported token") && !shown.contains(&token));

    assert!(tokens.revoke(&alice).await.unwrap());
    assert!(
        !tokens.revoke(&alice).await.unwrap(),
        "nothing left to revoke"
    );
    assert!(!tokens.exists(&alice).await.unwrap());
    assert_eq!(lookup.credential(&alice).await.unwrap(), None);
    assert!(tokens.revoke(&bob).await.unwrap());
}

/// Input no store may keep: refused before the store is asked.
async fn invalid_input(tokens: &Tokens) {
    let long = "x".repeat(257);
    for refused in [
        tokens.issue("a\nb").await.err(),
        tokens.issue("").await.err(),
        tokens.issue(&long).await.err(),
        tokens.set("carol", "").await.err(),
        tokens.set("carol", "a\rb").await.err(),
        tokens.set("", "token").await.err(),
        tokens.exists("a\0b").await.err(),
    ] {
        assert!(
            matches!(refused, Some(TokenError::InvalidInput(_))),
            "{refused:?}"
        );
    }
    assert!(!tokens.exists("carol").await.unwrap(), "nothing was stored");
}

#[rocket::async_test]
async fn memory_store() {
    let store = Arc::new(MemoryStore::new(StoreOptions::new(REALM)));
    let tokens = Tokens::new(store.clone());
    lifecycle(&tokens, &*store).await;
    invalid_input(&tokens).await;
}

#[cfg(feature = "sqlite")]
mod database {
    use super::*;
    use rocket_digest_auth::store::SqlStore;

    async fn check(url: &str) {
        let store = Arc::new(
            SqlStore::connect_url(url, StoreOptions::new(REALM))
                .await
                .unwrap_or_else(|e| panic!("store at {url}: {e}")),
        );
        let tokens = Tokens::new(store.clone());
        lifecycle(&tokens, &*store).await;
        invalid_input(&tokens).await;

        // A store that cannot answer: Unavailable, never another kind.
        store.close().await;
        for failed in [
            tokens.issue("dave").await.err(),
            tokens.set("dave", "token").await.err(),
            tokens.exists("dave").await.err(),
            tokens.list().await.err(),
            tokens.revoke("dave").await.err(),
        ] {
            assert!(
                matches!(failed, Some(TokenError::Unavailable(_))),
                "{failed:?}"
            );
        }
    }

    #[rocket::async_test]
    async fn sqlite() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        check(&common::sqlite_url(&dir.path().join("tokens.db"))).await;
    }

    #[cfg(feature = "postgres")]
    #[rocket::async_test]
    async fn postgres() {
        let Some(url) = common::postgres::schema_url("digest_auth_test_token_lifecycle").await
        else {
            return;
        };
        check(&url).await;
    }

    #[cfg(feature = "mysql")]
    #[rocket::async_test]
    async fn mysql() {
        let Some(url) = common::mysql::database_url("token_lifecycle").await else {
            return;
        };
        check(&url).await;
    }
}

#[post("/tokens/<username>")]
async fn issue(tokens: &State<Tokens>, username: &str) -> Result<String, TokenError> {
    tokens.issue(username).await
}

#[get("/tokens/<username>")]
async fn created(tokens: &State<Tokens>, username: &str) -> Result<String, TokenError> {
    Ok(tokens.info(username).await?.created_at.to_rfc3339())
}

#[get("/down")]
fn down() -> Result<String, TokenError> {
    Err(StoreError::new("the database is down").into())
}

async fn admin_client() -> Client {
    let figment = common::app::memory(json!({}));
    let rocket = rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![issue, created, down]);
    Client::tracked(rocket).await.expect("the rocket launches")
}

#[rocket::async_test]
async fn token_errors_answer_400_404_and_503() {
    let client = admin_client().await;
    let reply = send(client.post("/tokens/alice")).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.body.len(), 40);
    let reply = send(client.get("/tokens/alice")).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");

    // A tab is a control character: invalid input, with the rule broken.
    let reply = send(client.post("/tokens/a%09b")).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    assert_eq!(
        reply.body,
        "400 Bad Request: a username must be 1 to 256 bytes without control characters\n"
    );

    let reply = send(client.get("/tokens/nobody")).await;
    assert_eq!(reply.status, Status::NotFound, "{reply:?}");
    assert_eq!(reply.body, "404 Not Found: The user has no token.\n");

    let reply = send(client.get("/down")).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    assert!(
        !reply.body.contains("down"),
        "the cause is not sent: {reply:?}"
    );

    // In JSON when the client prefers it, like Rocket's default catcher.
    let reply = send(client.get("/tokens/nobody").header(Accept::JSON)).await;
    assert_eq!(reply.status, Status::NotFound, "{reply:?}");
    assert_eq!(reply.headers.one("Content-Type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({ "error": { "code": 404, "reason": "Not Found",
                            "description": "The user has no token." } })
    );
    let reply = send(client.get("/down").header(Accept::JSON)).await;
    assert_eq!(reply.json()["error"]["code"], 503, "{reply:?}");
}

/// Through the fairing's `Tokens` (the database store behind its credential
/// cache): an imported token signs in at once, a revoked one stops at once.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn an_imported_token_works_at_once_and_a_revoked_one_stops() {
    use common::app::{signed_get, Store};
    use rocket_digest_auth::protocol::Algorithm;

    let app = Store::Sqlite
        .launch(test_name!(), json!({}))
        .await
        .expect("SQLite is always there");
    let tokens = app.rocket().state::<Tokens>().expect("managed Tokens");
    let mut alice = common::local::session(&app, "alice", "imported", Algorithm::Sha256).await;
    let (_, reply) = signed_get(&app, &mut alice, "/me").await;
    assert_eq!(
        reply.status,
        Status::Unauthorized,
        "no alice yet: {reply:?}"
    );

    tokens.set("alice", "imported").await.unwrap();
    let (_, reply) = signed_get(&app, &mut alice, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(tokens.list().await.unwrap().len(), 1);

    assert!(tokens.revoke("alice").await.unwrap());
    let (_, reply) = signed_get(&app, &mut alice, "/me").await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
}
