//! Brute-force limiting, over a real TCP server: the app is launched on a
//! free port of 127.0.0.1 and the requests come from different loopback
//! source addresses (127.0.0.2 for the attacker, 127.0.0.3 for the real
//! user...), so the client address the limiter sees is the socket's peer
//! address, as in production.
//!
//! The server runs with Rocket's defaults, including `ip_header = "X-Real-IP"`:
//! the limiter keys on the connection's peer address unless
//! `digest_auth.trust_ip_header` is set, so a client cannot pick its own
//! address with that header (see
//! `a_forged_x_real_ip_header_does_not_reset_the_count`).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::http::{self, Request, Response};
use common::server::Running;
use rocket::routes;
use rocket::tokio::time::sleep;
use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
use rocket_digest_auth::verifier::FailureLimiter;
use rocket_digest_auth::DigestAuth;
use serde_json::{json, Value};

const SECRET: &str = "brute force test secret 0123456789abcdef0123456789";

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REAL_USER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// The app on a real socket with a SQLite database; shut down on drop.
struct Server {
    running: Running,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(digest_auth: Value) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = json!({ "secret": SECRET });
        config
            .as_object_mut()
            .unwrap()
            .extend(digest_auth.as_object().unwrap().clone());
        let figment = common::server::figment()
            .merge((
                "databases.digest_auth.url",
                common::sqlite_url(&dir.path().join("auth.db")),
            ))
            .merge(("digest_auth", config));
        let rocket = rocket::custom(figment)
            .attach(DigestAuth::fairing())
            .mount("/", routes![common::me]);
        Server {
            running: Running::start(rocket).expect("the server starts"),
            _dir: dir,
        }
    }

    async fn issue(&self, username: &str) -> String {
        self.running.issue(username).await
    }

    /// `GET /me` from `from`, with an optional Authorization header and extra
    /// headers.
    async fn get(
        &self,
        from: IpAddr,
        authorization: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut request = Request::get("/me").authorization(authorization);
        for (name, value) in extra {
            request = request.header(name, value);
        }
        http::send_from(
            from,
            self.running.addr(),
            &request.end(),
            Duration::from_secs(20),
        )
        .await
        .expect("an HTTP exchange within 20 s")
    }

    /// A challenge, as any client gets it first.
    async fn challenge(&self, from: IpAddr) -> ClientChallenge {
        let reply = self.get(from, None, &[]).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        reply.headers.challenges()[0].clone()
    }

    /// One attempt by `username` with `secret` from `from` on `challenge`.
    async fn attempt(
        &self,
        from: IpAddr,
        challenge: &ClientChallenge,
        username: &str,
        secret: &str,
    ) -> Response {
        let header =
            DigestClient::new(username, secret, challenge.clone()).authorization("GET", "/me");
        self.get(from, Some(&header), &[]).await
    }

    /// `times` wrong attempts, each refused with a plain 401 (no lockout).
    async fn fail(
        &self,
        from: IpAddr,
        challenge: &ClientChallenge,
        username: &str,
        secret: &str,
        times: usize,
    ) {
        for i in 1..=times {
            let reply = self.attempt(from, challenge, username, secret).await;
            assert_eq!(reply.status, 401, "failure {i}: {reply:?}");
            assert!(reply.headers.first("retry-after").is_none(), "{reply:?}");
        }
    }
}

/// `Retry-After` as the integer seconds it must be.
fn retry_after(reply: &Response) -> u64 {
    let value = reply
        .headers
        .first("retry-after")
        .expect("Retry-After on a 429");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not an integer"))
}

/// Asserts a 429 whose Retry-After is a positive integer within the window;
/// returns it.
fn assert_locked(reply: &Response, window: u64) -> u64 {
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry_after = retry_after(reply);
    assert!(
        (1..=window).contains(&retry_after),
        "Retry-After {retry_after} not in 1..={window}"
    );
    retry_after
}

#[rocket::async_test]
async fn lockout_is_per_user_and_address_and_spares_the_real_user() {
    let server = Server::start(json!({ "max_failures": 3, "failure_window": 60 }));
    let alice = server.issue("alice").await;
    let bob = server.issue("bob").await;
    let c = server.challenge(ATTACKER).await;

    server.fail(ATTACKER, &c, "alice", "guess", 3).await;
    // The fourth attempt is refused before the secret is looked at: a wrong
    // guess and the right token alike (the lockout is no oracle).
    assert_locked(&server.attempt(ATTACKER, &c, "alice", "guess").await, 60);
    assert_locked(&server.attempt(ATTACKER, &c, "alice", &alice).await, 60);

    // The same user from another address: unaffected, in both directions.
    let c_real = server.challenge(REAL_USER).await;
    let reply = server.attempt(REAL_USER, &c_real, "alice", "typo").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let reply = server.attempt(REAL_USER, &c_real, "alice", &alice).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, b"alice");

    // Another user from the attacker's address: unaffected.
    let reply = server.attempt(ATTACKER, &c, "bob", "guess").await;
    assert_eq!(reply.status, 401, "{reply:?}");
    let reply = server.attempt(ATTACKER, &c, "bob", &bob).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // The attacker stays locked out of alice.
    assert_locked(&server.attempt(ATTACKER, &c, "alice", &alice).await, 60);
}

#[rocket::async_test]
async fn attempts_are_accepted_again_after_retry_after_seconds() {
    const WINDOW: u64 = 2;
    let server = Server::start(json!({ "max_failures": 2, "failure_window": WINDOW }));
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    server.fail(ATTACKER, &c, "alice", "guess", 2).await;
    let retry_after = assert_locked(&server.attempt(ATTACKER, &c, "alice", &alice).await, WINDOW);
    // Waiting exactly what Retry-After says is enough.
    sleep(Duration::from_secs(retry_after)).await;
    let reply = server.attempt(ATTACKER, &c, "alice", "guess").await;
    assert_eq!(
        reply.status, 401,
        "a wrong guess is judged again: {reply:?}"
    );
    let reply = server.attempt(ATTACKER, &c, "alice", &alice).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[rocket::async_test]
async fn a_success_resets_the_failure_count() {
    let server = Server::start(json!({ "max_failures": 3, "failure_window": 60 }));
    let alice = server.issue("alice").await;
    let c = server.challenge(REAL_USER).await;
    server.fail(REAL_USER, &c, "alice", "typo", 2).await;
    assert_eq!(
        server.attempt(REAL_USER, &c, "alice", &alice).await.status,
        200
    );
    // Without the reset, the second failure below would be the fourth in the
    // window and the attempt after it refused.
    server.fail(REAL_USER, &c, "alice", "typo", 3).await;
    // The count does run: three new failures lock.
    assert_locked(&server.attempt(REAL_USER, &c, "alice", &alice).await, 60);
}

#[rocket::async_test]
async fn a_forged_x_real_ip_header_does_not_reset_the_count() {
    let server = Server::start(json!({ "max_failures": 2, "failure_window": 60 }));
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    server.fail(ATTACKER, &c, "alice", "guess", 2).await;
    for forged in ["10.9.8.7", "127.0.0.3", "::1"] {
        let header = DigestClient::new("alice", &alice, c.clone()).authorization("GET", "/me");
        let extra = [("X-Real-IP", forged), ("X-Forwarded-For", forged)];
        let reply = server.get(ATTACKER, Some(&header), &extra).await;
        assert_locked(&reply, 60);
    }
}

/// Status, header names in order, and header values with the parts that must
/// differ per response (the nonce, the date) blanked out.
fn shape(reply: &Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = reply
        .headers
        .0
        .iter()
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let value = match name.as_str() {
                "date" => "<date>".to_owned(),
                "www-authenticate" => {
                    let c = ClientChallenge::parse(value).unwrap().unwrap();
                    value.replace(&c.nonce, "<nonce>")
                }
                _ => value.clone(),
            };
            (name, value)
        })
        .collect();
    (reply.status, headers, reply.body.clone())
}

#[rocket::async_test]
async fn unknown_user_and_wrong_secret_are_indistinguishable() {
    let server = Server::start(json!({ "max_failures": 2, "failure_window": 60 }));
    server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;

    let wrong_secret = server.attempt(ATTACKER, &c, "alice", "guess").await;
    let unknown_user = server.attempt(ATTACKER, &c, "mallory", "guess").await;
    assert_eq!(wrong_secret.status, 401, "{wrong_secret:?}");
    assert_eq!(shape(&wrong_secret), shape(&unknown_user));
    // Two challenges (SHA-256, MD5), the same as for no credentials at all.
    let anonymous = server.get(ATTACKER, None, &[]).await;
    assert_eq!(shape(&wrong_secret), shape(&anonymous));
    assert_eq!(wrong_secret.headers.challenges().len(), 2);

    // The lockout does not tell them apart either.
    server.attempt(ATTACKER, &c, "alice", "guess").await;
    server.attempt(ATTACKER, &c, "mallory", "guess").await;
    let mut locked_known = server.attempt(ATTACKER, &c, "alice", "guess").await;
    let mut locked_unknown = server.attempt(ATTACKER, &c, "mallory", "guess").await;
    assert_locked(&locked_known, 60);
    assert_locked(&locked_unknown, 60);
    // Retry-After counts down by whole seconds: the two may be a second apart.
    for reply in [&mut locked_known, &mut locked_unknown] {
        for (name, value) in &mut reply.headers.0 {
            if name.eq_ignore_ascii_case("retry-after") {
                *value = "<seconds>".into();
            }
        }
    }
    assert_eq!(shape(&locked_known), shape(&locked_unknown));
}

#[test]
fn the_failure_bookkeeping_is_bounded() {
    // Many distinct usernames from one address, one failure each: what an
    // attacker would send to grow the table. It never holds more than its
    // capacity, and the newest attacker is still tracked and locked.
    const CAPACITY: usize = 1_000;
    let limiter = FailureLimiter::new(2, 60, CAPACITY);
    let attacker = Some(ATTACKER);
    let started = Instant::now();
    let mut most = 0;
    for i in 0..100_000i64 {
        limiter
            .fail(&format!("user{i}"), attacker, i / 1_000)
            .expect("room for an unlocked pair");
        most = most.max(limiter.tracked());
    }
    println!(
        "100000 distinct usernames: at most {most} tracked (capacity {CAPACITY}) in {:?}",
        started.elapsed()
    );
    assert!(most <= CAPACITY, "{most} > {CAPACITY}");
    limiter.fail("user99999", attacker, 100).unwrap();
    assert!(limiter.check("user99999", attacker, 100).is_err());
}

#[rocket::async_test]
async fn the_limit_still_holds_after_a_flood_of_usernames() {
    // Through the server with a small table: a flood of usernames past the
    // bound does not break the limiter, and a lockout begun after it holds.
    let server = Server::start(json!({
        "max_failures": 2,
        "failure_window": 60,
        "max_tracked_clients": 50,
    }));
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    for i in 0..200 {
        let reply = server
            .attempt(ATTACKER, &c, &format!("user{i}"), "guess")
            .await;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    server.fail(ATTACKER, &c, "alice", "guess", 2).await;
    assert_locked(&server.attempt(ATTACKER, &c, "alice", &alice).await, 60);
    let c_real = server.challenge(REAL_USER).await;
    assert_eq!(
        server
            .attempt(REAL_USER, &c_real, "alice", &alice)
            .await
            .status,
        200
    );
}
