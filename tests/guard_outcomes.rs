//! What a route sees and a client gets for each way of taking the guard:
//! `Result<DigestAuthenticated<U>, Rejection>` sees every rejection (and
//! answering it matches the plain guard), `Option<..>` turns every one into
//! anonymous, a `DigestUser` refusal answers 403 or 503; and the crate's
//! bodies: JSON when the client prefers it, the app's own with `ErrorBodies`.

mod common;

use rocket::http::{Accept, ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::{get, routes, Request};
use rocket_digest_auth::catcher::{ErrorBodies, UNAUTHORIZED_BODY};
use rocket_digest_auth::protocol::Algorithm;
use rocket_digest_auth::store::{Credential, StoreError};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, DigestUser, Refusal, Rejection};
use serde_json::{json, Value};

use common::app::{memory, signed_get};
use common::local::{get, issue, send, session, with_auth, Reply};

/// Admits everyone but `bob` (403) and `carol` (whose lookup fails: 503).
struct Staff;

impl DigestUser for Staff {
    async fn from_credential(credential: Credential, _: &Request<'_>) -> Result<Self, Refusal> {
        match &*credential.username {
            "bob" => Err(Refusal::Forbidden),
            "carol" => Err(StoreError::new("the staff directory is down").into()),
            _ => Ok(Staff),
        }
    }
}

/// The rejection the route saw, as `status kind`.
#[get("/why")]
fn why(user: Result<DigestAuthenticated<Staff>, Rejection>) -> String {
    match user {
        Ok(_) => "ok".into(),
        Err(rejection) => {
            let kind = format!("{rejection:?}");
            let kind = kind.split(['(', ' ']).next().unwrap_or_default();
            format!("{} {kind}", rejection.status_code())
        }
    }
}

/// Answers the rejection itself.
#[get("/staff")]
fn staff(user: Result<DigestAuthenticated<Staff>, Rejection>) -> Result<&'static str, Rejection> {
    user.map(|_| "staff")
}

async fn client(settings: Value) -> Client {
    let rocket = rocket::custom(memory(settings))
        .attach(DigestAuth::fairing())
        .mount("/", common::app::routes())
        .mount("/", routes![why, staff]);
    Client::tracked(rocket).await.expect("the rocket launches")
}

#[rocket::async_test]
async fn the_result_guard_sees_each_rejection() {
    let client = client(json!({ "max_failures": 3 })).await;
    let alice_token = issue(&client, "alice").await;
    let why = |authorization: Option<String>| {
        let client = &client;
        async move { get(client, "/why", authorization.as_deref()).await.body }
    };
    assert_eq!(why(None).await, "401 Challenge");
    assert_eq!(why(Some("Digest realm".into())).await, "400 Malformed");
    let mut alice = session(&client, "alice", &alice_token, Algorithm::Sha256).await;
    assert_eq!(
        why(Some(alice.authorization("GET", "/me"))).await,
        "400 UriMismatch"
    );
    let header = alice.authorization("GET", "/why");
    let reply = send(
        with_auth(client.get("/why"), Some(&header)).header(Header::new("Authorization", "x")),
    )
    .await;
    assert_eq!(reply.body, "400 DuplicateAuthorizationHeader");
    assert_eq!(why(Some(alice.authorization("GET", "/why"))).await, "ok");

    for user in ["bob", "carol"] {
        let token = issue(&client, user).await;
        let mut session = session(&client, user, &token, Algorithm::Sha256).await;
        let (_, reply) = signed_get(&client, &mut session, "/why").await;
        let expected = if user == "bob" {
            "403 Forbidden"
        } else {
            "503 Unavailable"
        };
        assert_eq!(reply.body, expected);
    }

    let mut guesser = session(&client, "alice", "wrong", Algorithm::Sha256).await;
    let seen: Vec<String> = [0; 4]
        .iter()
        .map(|_| guesser.authorization("GET", "/why"))
        .collect();
    let mut answers = Vec::new();
    for header in seen {
        answers.push(why(Some(header)).await);
    }
    assert_eq!(
        answers,
        [
            "401 Challenge",
            "401 Challenge",
            "401 Challenge",
            "429 TooManyAttempts"
        ]
    );
}

#[rocket::async_test]
async fn a_refused_user_gets_403_or_503_without_challenge_or_authentication_info() {
    let client = client(json!({})).await;
    for (user, status) in [
        ("bob", Status::Forbidden),
        ("carol", Status::ServiceUnavailable),
    ] {
        let token = issue(&client, user).await;
        let mut s = session(&client, user, &token, Algorithm::Sha256).await;
        for uri in ["/staff", "/why"] {
            let (_, reply) = signed_get(&client, &mut s, uri).await;
            assert!(reply.headers.challenges().is_empty(), "{reply:?}");
            assert_eq!(reply.headers.one("Authentication-Info"), None, "{reply:?}");
            if uri == "/staff" {
                assert_eq!(reply.status, status, "{reply:?}");
            }
        }
        // The digest was right: the same user passes where it may.
        let (_, reply) = signed_get(&client, &mut s, "/me").await;
        assert_eq!(reply.status, Status::Ok, "{reply:?}");
        assert!(reply.headers.one("Authentication-Info").is_some());
    }
}

#[rocket::async_test]
async fn the_option_guard_never_challenges_and_treats_failures_as_anonymous() {
    let client = client(json!({ "max_failures": 3 })).await;
    let token = issue(&client, "alice").await;
    let anonymous = json!({ "username": null });

    let reply = get(&client, "/maybe", None).await;
    assert_eq!(reply.status, Status::Ok, "a fresh client is not challenged");
    assert!(reply.headers.challenges().is_empty(), "{reply:?}");
    assert_eq!(reply.json(), anonymous);

    let mut alice = session(&client, "alice", &token, Algorithm::Sha256).await;
    let (_, reply) = signed_get(&client, &mut alice, "/maybe").await;
    assert_eq!(reply.json(), json!({ "username": "alice" }));

    // Wrong credentials: anonymous, no challenge, yet counted as failures.
    let mut guesser = session(&client, "alice", "wrong", Algorithm::Sha256).await;
    for _ in 0..3 {
        let (_, reply) = signed_get(&client, &mut guesser, "/maybe").await;
        assert_eq!(
            (reply.status, reply.json()),
            (Status::Ok, anonymous.clone())
        );
        assert!(reply.headers.challenges().is_empty(), "{reply:?}");
    }
    let (_, reply) = signed_get(&client, &mut alice, "/me").await;
    assert_eq!(reply.status, Status::TooManyRequests, "{reply:?}");
}

fn assert_json_error(reply: &Reply, code: u16, reason: &str) {
    assert_eq!(reply.status.code, code, "{reply:?}");
    assert_eq!(reply.headers.one("Content-Type"), Some("application/json"));
    assert_eq!(reply.json()["error"]["code"], code, "{reply:?}");
    assert_eq!(reply.json()["error"]["reason"], reason, "{reply:?}");
}

#[rocket::async_test]
async fn bodies_are_json_when_the_client_prefers_it() {
    let client = client(json!({ "max_failures": 1 })).await;
    let reply = send(client.get("/me").header(Accept::JSON)).await;
    assert_json_error(&reply, 401, "Unauthorized");
    assert_eq!(reply.headers.challenges().len(), 2, "{reply:?}");
    // From a route's returned rejection too.
    let reply = send(client.get("/staff").header(Accept::JSON)).await;
    assert_json_error(&reply, 401, "Unauthorized");
    // Text otherwise.
    let reply = send(client.get("/me").header(Accept::HTML)).await;
    assert_eq!(reply.body, UNAUTHORIZED_BODY);

    let token = issue(&client, "bob").await;
    let mut bob = session(&client, "bob", &token, Algorithm::Sha256).await;
    let header = bob.authorization("GET", "/staff");
    let reply = send(with_auth(client.get("/staff"), Some(&header)).header(Accept::JSON)).await;
    assert_json_error(&reply, 403, "Forbidden");

    let mut guesser = session(&client, "bob", "wrong", Algorithm::Sha256).await;
    get(&client, "/me", Some(&guesser.authorization("GET", "/me"))).await;
    let header = guesser.authorization("GET", "/me");
    let reply = send(with_auth(client.get("/me"), Some(&header)).header(Accept::JSON)).await;
    assert_json_error(&reply, 429, "Too Many Requests");
    assert!(reply.headers.one("Retry-After").is_some(), "{reply:?}");
}

fn teapot_body(status: Status, description: &str, _: &Request<'_>) -> (ContentType, String) {
    (
        ContentType::HTML,
        format!("<p>{}: {description}</p>", status.code),
    )
}

#[rocket::async_test]
async fn an_app_writes_its_own_bodies() {
    let rocket = rocket::custom(memory(json!({})))
        .attach(DigestAuth::fairing())
        .manage(ErrorBodies::new(teapot_body))
        .mount("/", common::app::routes())
        .mount("/", routes![staff]);
    let client = Client::tracked(rocket).await.expect("the rocket launches");
    for uri in ["/me", "/staff"] {
        let reply = get(&client, uri, None).await;
        assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
        assert_eq!(reply.body, "<p>401: Digest authentication required.</p>");
        assert_eq!(
            reply.headers.one("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(reply.headers.challenges().len(), 2, "{reply:?}");
    }
}
