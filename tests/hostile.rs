//! A hand-written corpus of hostile requests against a running server, over
//! raw TCP.
//!
//! The server is a real Rocket launched inside the test on a free port of
//! 127.0.0.1, with the memory store, a configured `secret` and `opaque`, and
//! `qop = ["auth", "auth-int"]`. Requests are written as raw bytes, so NUL,
//! control and non-UTF-8 bytes and oversized headers really reach it (or
//! hyper, in front of Rocket). Every corpus entry has its expected status in
//! the table in [`corpus()`]; none may be a 5xx or a connection closed without
//! a status. A correct request must succeed after every entry, and a
//! background client keeps making correct requests during the whole corpus.

mod common;
#[path = "hostile/corpus.rs"]
mod corpus;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::http::{self, Request, Response};
use common::server::Running;
use corpus::{corpus, Ctx};
use rocket::serde::json::{json, Value};
use rocket::{post, routes};
use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

const REALM: &str = "hostile realm";
const SECRET: &str = "hostile-test secret, at least thirty-two bytes";
const OPAQUE: &str = "opaque-7f3a";
const USER: &str = "alice";

/// A request-guard route that takes a body it never reads: `auth-int` cannot
/// be checked here.
#[post("/submit")]
fn submit(user: DigestAuthenticated<User>) -> String {
    user.username.to_string()
}

fn digest_config() -> Value {
    json!({
        "realm": REALM,
        "store": "memory",
        "secret": SECRET,
        "opaque": OPAQUE,
        "qop": ["auth", "auth-int"],
        // The corpus sends many wrong answers for alice from 127.0.0.1; the
        // brute-force limiter is tested in tests/brute_force.rs and would
        // turn some of the documented 401s here into 429s.
        "max_failures": 100_000,
    })
}

/// Launches the server on a free port, with a token for `USER`.
fn start_server() -> (Running, String) {
    let figment = common::server::figment().merge(("digest_auth", digest_config()));
    let rocket = rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![common::me, submit]);
    let server = Running::start(rocket).expect("the server starts");
    let token = common::block_on(server.issue(USER));
    (server, token)
}

/// Sends `request` on a new connection and reads until the server closes
/// it. A write error (the server may stop reading an oversized request) is
/// tolerated as long as a status comes back; a connection closed without a
/// status is an error.
fn send_raw(port: u16, request: &[u8]) -> Result<Response, String> {
    http::send(port, request, Duration::from_secs(30))
}

fn request(method: &str, path: &str, authorization: Option<&[u8]>, body: &[u8]) -> Vec<u8> {
    let request = Request::new(method, path);
    match authorization {
        Some(auth) => request.header("Authorization", auth),
        None => request,
    }
    .body(body)
}

/// A full correct exchange: challenge, then an answer that must get 200.
fn correct_request(port: u16, token: &str) -> Result<(), String> {
    let reply = send_raw(port, &request("GET", "/me", None, b""))?;
    if reply.status != 401 {
        return Err(format!("challenge request got {}", reply.status));
    }
    let challenge = reply
        .headers
        .first("WWW-Authenticate")
        .and_then(|v| ClientChallenge::parse(v).ok().flatten())
        .ok_or("no Digest challenge")?;
    let mut client = DigestClient::new(USER, token, challenge);
    let header = client.authorization("GET", "/me");
    let reply = send_raw(port, &request("GET", "/me", Some(header.as_bytes()), b""))?;
    if reply.status != 200 || reply.body != USER.as_bytes() {
        return Err(format!(
            "correct request got {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    Ok(())
}

#[test]
fn hostile_corpus_gets_documented_statuses_and_the_server_keeps_serving() {
    let (server, token) = start_server();
    let ctx = Ctx {
        port: server.port,
        token,
    };
    correct_request(ctx.port, &ctx.token).expect("a correct request before the corpus");

    // A well-behaved client keeps authenticating while the corpus runs.
    let stop = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicUsize::new(0));
    let background = {
        let (stop, successes) = (stop.clone(), successes.clone());
        let (port, token) = (ctx.port, ctx.token.clone());
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                correct_request(port, &token)?;
                successes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };

    let mut failures = Vec::new();
    let corpus = corpus();
    for case in &corpus {
        let raw = (case.build)(&ctx);
        match send_raw(ctx.port, &raw) {
            Err(e) => failures.push(format!("{}: {e}", case.name)),
            Ok(reply) => {
                if reply.status != case.status {
                    failures.push(format!(
                        "{}: expected {}, got {} ({:?})",
                        case.name,
                        case.status,
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    ));
                } else if reply.status == 401 {
                    // Every 401 is a usable challenge: one per algorithm.
                    let challenges = reply.headers.all("WWW-Authenticate");
                    if challenges.len() != 2 || !challenges[0].contains("algorithm=SHA-256") {
                        failures.push(format!("{}: challenges {challenges:?}", case.name));
                    }
                    if reply.headers.stale() != Some(case.stale) {
                        failures.push(format!(
                            "{}: expected stale={}, got {challenges:?}",
                            case.name, case.stale
                        ));
                    }
                }
            }
        }
        if let Err(e) = correct_request(ctx.port, &ctx.token) {
            failures.push(format!("correct request after {}: {e}", case.name));
        }
    }

    stop.store(true, Ordering::Relaxed);
    let background = background.join().expect("the background client");
    assert!(
        failures.is_empty(),
        "{} of {} entries failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    background.expect("correct requests during the corpus");
    assert!(successes.load(Ordering::Relaxed) > 0);
    correct_request(ctx.port, &ctx.token).expect("a correct request after the corpus");

    server.stop().expect("the server stops cleanly");
}
