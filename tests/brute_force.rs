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

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
use rocket::tokio::net::TcpSocket;
use rocket::tokio::time::{sleep, timeout};
use rocket::{get, routes, Shutdown};
use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, FailureLimiter, Tokens, User};
use serde_json::{json, Value};

const SECRET: &str = "brute force test secret 0123456789abcdef0123456789";

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REAL_USER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

#[get("/me")]
fn me(user: DigestAuthenticated<User>) -> String {
    user.username.clone()
}

/// The app on a real socket; shut down on drop.
struct Server {
    addr: SocketAddr,
    tokens: Tokens,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

impl Server {
    async fn start(digest_auth: Value) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = json!({ "secret": SECRET });
        config
            .as_object_mut()
            .unwrap()
            .extend(digest_auth.as_object().unwrap().clone());
        let figment = Figment::from(rocket::Config::default())
            .merge(("address", "127.0.0.1"))
            .merge(("port", port))
            .merge(("log_level", "off"))
            .merge(("shutdown.ctrlc", false))
            .merge(("databases.digest_auth.url", url))
            .merge(("digest_auth", config));
        let rocket = rocket::custom(figment)
            .attach(DigestAuth::fairing())
            .mount("/", routes![me])
            .ignite()
            .await
            .expect("the rocket ignites");
        let tokens = rocket.state::<Tokens>().expect("Tokens").clone();
        let shutdown = rocket.shutdown();
        rocket::tokio::spawn(rocket.launch());
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while rocket::tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(Instant::now() < deadline, "the server did not come up");
            sleep(Duration::from_millis(20)).await;
        }
        Server {
            addr,
            tokens,
            shutdown,
            _dir: dir,
        }
    }

    async fn issue(&self, username: &str) -> String {
        self.tokens.issue(username).await.expect("issue a token")
    }

    /// `GET /me` from `from`, with an optional Authorization header and extra
    /// header lines.
    async fn get(&self, from: IpAddr, authorization: Option<&str>, extra: &str) -> Reply {
        let request = format!(
            "GET /me HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}{}\r\n",
            self.addr,
            authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n")),
            extra
        );
        let exchange = async {
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(from, 0))?;
            let mut stream = socket.connect(self.addr).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            std::io::Result::Ok(raw)
        };
        let raw = timeout(Duration::from_secs(20), exchange)
            .await
            .expect("the server answers within 20 s")
            .expect("an HTTP exchange");
        Reply::parse(&raw)
    }

    /// A challenge, as any client gets it first.
    async fn challenge(&self, from: IpAddr) -> ClientChallenge {
        let reply = self.get(from, None, "").await;
        assert_eq!(reply.status, 401, "{reply:?}");
        reply.challenges()[0].clone()
    }

    /// One attempt by `username` with `secret` from `from` on `challenge`.
    async fn attempt(
        &self,
        from: IpAddr,
        challenge: &ClientChallenge,
        username: &str,
        secret: &str,
    ) -> Reply {
        let header =
            DigestClient::new(username, secret, challenge.clone()).authorization("GET", "/me");
        self.get(from, Some(&header), "").await
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete response head");
        let head = std::str::from_utf8(&raw[..end]).expect("an ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (name, value) = l.split_once(':').expect("a header line");
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let mut body = raw[end + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn challenges(&self) -> Vec<ClientChallenge> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "www-authenticate")
            .map(|(_, v)| ClientChallenge::parse(v).unwrap().unwrap())
            .collect()
    }

    /// `Retry-After` as the integer seconds it must be.
    fn retry_after(&self) -> u64 {
        let value = self.header("retry-after").expect("Retry-After on a 429");
        value
            .parse()
            .unwrap_or_else(|_| panic!("Retry-After {value:?} is not an integer"))
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&body[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Asserts a 429 whose Retry-After is a positive integer within the window;
/// returns it.
fn assert_locked(reply: &Reply, window: u64) -> u64 {
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry_after = reply.retry_after();
    assert!(
        (1..=window).contains(&retry_after),
        "Retry-After {retry_after} not in 1..={window}"
    );
    retry_after
}

#[rocket::async_test]
async fn lockout_is_per_user_and_address_and_spares_the_real_user() {
    let server = Server::start(json!({ "max_failures": 3, "failure_window": 60 })).await;
    let alice = server.issue("alice").await;
    let bob = server.issue("bob").await;
    let c = server.challenge(ATTACKER).await;

    for i in 1..=3 {
        let reply = server.attempt(ATTACKER, &c, "alice", "guess").await;
        assert_eq!(reply.status, 401, "failure {i}: {reply:?}");
        assert!(reply.header("retry-after").is_none());
    }
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
    let server = Server::start(json!({ "max_failures": 2, "failure_window": WINDOW })).await;
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    for _ in 0..2 {
        assert_eq!(
            server.attempt(ATTACKER, &c, "alice", "guess").await.status,
            401
        );
    }
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
    let server = Server::start(json!({ "max_failures": 3, "failure_window": 60 })).await;
    let alice = server.issue("alice").await;
    let c = server.challenge(REAL_USER).await;
    for _ in 0..2 {
        assert_eq!(
            server.attempt(REAL_USER, &c, "alice", "typo").await.status,
            401
        );
    }
    assert_eq!(
        server.attempt(REAL_USER, &c, "alice", &alice).await.status,
        200
    );
    // Without the reset, the second failure below would be the fourth in the
    // window and the attempt after it refused.
    for i in 1..=3 {
        let reply = server.attempt(REAL_USER, &c, "alice", "typo").await;
        assert_eq!(
            reply.status, 401,
            "failure {i} after the success: {reply:?}"
        );
    }
    // The count does run: three new failures lock.
    assert_locked(&server.attempt(REAL_USER, &c, "alice", &alice).await, 60);
}

#[rocket::async_test]
async fn a_forged_x_real_ip_header_does_not_reset_the_count() {
    let server = Server::start(json!({ "max_failures": 2, "failure_window": 60 })).await;
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    for _ in 0..2 {
        assert_eq!(
            server.attempt(ATTACKER, &c, "alice", "guess").await.status,
            401
        );
    }
    for forged in ["10.9.8.7", "127.0.0.3", "::1"] {
        let header = DigestClient::new("alice", &alice, c.clone()).authorization("GET", "/me");
        let extra = format!("X-Real-IP: {forged}\r\nX-Forwarded-For: {forged}\r\n");
        let reply = server.get(ATTACKER, Some(&header), &extra).await;
        assert_locked(&reply, 60);
    }
}

/// Status, header names in order, and header values with the parts that must
/// differ per response (the nonce, the date) blanked out.
fn shape(reply: &Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = reply
        .headers
        .iter()
        .map(|(name, value)| {
            let value = match name.as_str() {
                "date" => "<date>".to_owned(),
                "www-authenticate" => {
                    let c = ClientChallenge::parse(value).unwrap().unwrap();
                    value.replace(&c.nonce, "<nonce>")
                }
                _ => value.clone(),
            };
            (name.clone(), value)
        })
        .collect();
    (reply.status, headers, reply.body.clone())
}

#[rocket::async_test]
async fn unknown_user_and_wrong_secret_are_indistinguishable() {
    let server = Server::start(json!({ "max_failures": 2, "failure_window": 60 })).await;
    server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;

    let wrong_secret = server.attempt(ATTACKER, &c, "alice", "guess").await;
    let unknown_user = server.attempt(ATTACKER, &c, "mallory", "guess").await;
    assert_eq!(wrong_secret.status, 401, "{wrong_secret:?}");
    assert_eq!(shape(&wrong_secret), shape(&unknown_user));
    // Two challenges (SHA-256, MD5), the same as for no credentials at all.
    let anonymous = server.get(ATTACKER, None, "").await;
    assert_eq!(shape(&wrong_secret), shape(&anonymous));
    assert_eq!(wrong_secret.challenges().len(), 2);

    // The lockout does not tell them apart either.
    server.attempt(ATTACKER, &c, "alice", "guess").await;
    server.attempt(ATTACKER, &c, "mallory", "guess").await;
    let mut locked_known = server.attempt(ATTACKER, &c, "alice", "guess").await;
    let mut locked_unknown = server.attempt(ATTACKER, &c, "mallory", "guess").await;
    assert_locked(&locked_known, 60);
    assert_locked(&locked_unknown, 60);
    // Retry-After counts down by whole seconds: the two may be a second apart.
    for reply in [&mut locked_known, &mut locked_unknown] {
        for (name, value) in &mut reply.headers {
            if name == "retry-after" {
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
        limiter.fail(&format!("user{i}"), attacker, i / 1_000);
        most = most.max(limiter.tracked());
    }
    println!(
        "100000 distinct usernames: at most {most} tracked (capacity {CAPACITY}) in {:?}",
        started.elapsed()
    );
    assert!(most <= CAPACITY, "{most} > {CAPACITY}");
    limiter.fail("user99999", attacker, 100);
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
    }))
    .await;
    let alice = server.issue("alice").await;
    let c = server.challenge(ATTACKER).await;
    for i in 0..200 {
        let reply = server
            .attempt(ATTACKER, &c, &format!("user{i}"), "guess")
            .await;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    for _ in 0..2 {
        assert_eq!(
            server.attempt(ATTACKER, &c, "alice", "guess").await.status,
            401
        );
    }
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
