//! The rejection as a `Responder`, the catchers the fairing registers (and
//! what `catcher = false` turns off), a second `Authorization` header, and
//! the store closed at shutdown.

mod common;

use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Value};
use rocket::{get, routes, Build, Rocket};
use rocket_digest_auth::catcher::{self, UNAUTHORIZED_BODY};
use rocket_digest_auth::protocol::Algorithm;
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, Rejection, Tokens};

use common::local::{get, issue, send, session, with_auth};

const SECRET: &str = "a responder test secret, at least 32 bytes";

/// A route that answers the rejection itself.
#[get("/why")]
fn why(user: Result<DigestAuthenticated, Rejection>) -> Result<String, Rejection> {
    Ok(user?.username.to_string())
}

fn figment(settings: Value) -> Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge((
            "digest_auth",
            json!({ "store": "memory", "secret": SECRET, "realm": "responder" }),
        ))
        .merge(("digest_auth", settings))
}

fn app(settings: Value) -> Rocket<Build> {
    rocket::custom(figment(settings))
        .attach(DigestAuth::fairing())
        .mount("/", routes![common::me, why])
}

async fn client(rocket: Rocket<Build>) -> Client {
    Client::tracked(rocket).await.expect("the rocket launches")
}

#[rocket::async_test]
async fn a_returned_rejection_answers_with_its_challenge() {
    let client = client(app(json!({}))).await;
    let reply = get(&client, "/why", None).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    let challenges = reply.headers.challenges();
    assert_eq!(challenges.len(), 2, "{reply:?}");
    assert!(challenges.iter().all(|c| !c.stale), "{reply:?}");
    assert_eq!(reply.body, UNAUTHORIZED_BODY);

    // Once through, the route sees the user.
    let token = issue(&client, "alice").await;
    let mut alice = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = alice.authorization("GET", "/why");
    let reply = get(&client, "/why", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.body, "alice");
    assert!(
        reply.headers.one("Authentication-Info").is_some(),
        "{reply:?}"
    );

    // A replayed count: the returned rejection says stale=true.
    let reply = get(&client, "/why", Some(&header)).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    assert!(
        reply.headers.challenges().iter().all(|c| c.stale),
        "{reply:?}"
    );
}

/// Fails `max_failures` times as alice, then returns the next reply.
async fn locked_out(client: &Client) -> common::local::Reply {
    issue(client, "alice").await;
    let mut guesser = session(client, "alice", "a wrong guess", Algorithm::Sha256).await;
    for attempt in 1..=2 {
        let header = guesser.authorization("GET", "/me");
        let reply = get(client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Unauthorized, "attempt {attempt}");
    }
    let header = guesser.authorization("GET", "/me");
    get(client, "/me", Some(&header)).await
}

fn retry_after(reply: &common::local::Reply) -> Option<u64> {
    let value = reply.headers.one("Retry-After")?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After {value:?}")),
    )
}

#[rocket::async_test]
async fn the_429_catcher_sends_retry_after_and_catcher_false_turns_it_off() {
    let limited = json!({ "max_failures": 2, "failure_window": 300 });

    let client = client(app(limited.clone())).await;
    let reply = locked_out(&client).await;
    assert_eq!(reply.status, Status::TooManyRequests, "{reply:?}");
    let seconds = retry_after(&reply).expect("Retry-After from the crate's catcher");
    assert!((1..=300).contains(&seconds), "{seconds}");

    // `catcher = false` turns off both catchers: no challenge, no Retry-After.
    let mut off = limited.clone();
    off["catcher"] = json!(false);
    let client = self::client(app(off.clone())).await;
    assert!(get(&client, "/me", None)
        .await
        .headers
        .challenges()
        .is_empty());
    // With the app's own 401 catcher (here the crate's), a 429 has no Retry-After...
    let rocket = app(off.clone()).register("/", rocket::catchers![catcher::challenge]);
    let client = self::client(rocket).await;
    let reply = locked_out(&client).await;
    assert_eq!(reply.status, Status::TooManyRequests, "{reply:?}");
    assert_eq!(retry_after(&reply), None, "{reply:?}");

    // ...unless the app registers the crate's 429 catcher too.
    let both = rocket::catchers![catcher::challenge, catcher::too_many_attempts];
    let client = self::client(app(off).register("/", both)).await;
    let reply = locked_out(&client).await;
    assert_eq!(reply.status, Status::TooManyRequests, "{reply:?}");
    assert!(retry_after(&reply).is_some(), "{reply:?}");
}

#[rocket::async_test]
async fn a_second_authorization_header_is_refused_with_400() {
    let client = client(app(json!({}))).await;
    let token = issue(&client, "alice").await;
    let mut alice = session(&client, "alice", &token, Algorithm::Sha256).await;
    let good = alice.authorization("GET", "/me");
    // Even two copies of a right answer: never resolved by first-wins.
    let request = with_auth(client.get("/me"), Some(&good))
        .header(Header::new("Authorization", good.clone()));
    let reply = send(request).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    assert!(
        reply.headers.one("Authentication-Info").is_none(),
        "{reply:?}"
    );
}

#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn shutdown_closes_the_database_the_fairing_opened() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let figment = figment(json!({ "store": "database" }))
        .merge(("databases.digest_auth", json!({ "url": url })));
    let client = client(
        rocket::custom(figment)
            .attach(DigestAuth::fairing())
            .mount("/", routes![common::me]),
    )
    .await;
    issue(&client, "alice").await;
    let rocket = client.terminate().await;
    let tokens = rocket.state::<Tokens>().expect("Tokens stay managed");
    assert!(
        tokens.issue("bob").await.is_err(),
        "the store answered after shutdown"
    );
}
