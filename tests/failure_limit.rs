//! The failure limit under attack, over real TCP: a parallel burst of wrong
//! guesses, aliases of one user, a flood of junk usernames against a locked
//! pair (bursts spread over several instances: `shared_limit.rs`).
//!
//! Every test counts what an attacker counts: how many guesses were judged
//! (a 401 says "wrong"), against how many were refused unjudged (429).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::guesses::{burst, challenges, get, Tally};
use common::server::Running;
use rocket::figment::Figment;
use rocket::routes;
use rocket_digest_auth::protocol::{Algorithm, Answer, ClientChallenge, DigestClient, Qop};
use rocket_digest_auth::DigestAuth;
use serde_json::{json, Value};

const SECRET: &str = "failure limit test secret 0123456789abcdef0123456789";
const REALM: &str = "failure limit test";

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REAL_USER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A server on a real port, its database (if a SQLite file) removed on drop.
struct Server {
    running: Running,
    dir: Option<tempfile::TempDir>,
}

/// Where the store lives.
enum Backend {
    Memory,
    Sqlite,
    /// A PostgreSQL URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Server {
    fn start(backend: &Backend, digest_auth: Value) -> Server {
        let mut config = json!({ "secret": SECRET, "realm": REALM });
        config
            .as_object_mut()
            .unwrap()
            .extend(digest_auth.as_object().unwrap().clone());
        let mut dir = None;
        let figment: Figment = common::server::figment().merge(("workers", 4));
        let figment = match backend {
            Backend::Memory => {
                config["store"] = json!("memory");
                figment
            }
            Backend::Sqlite => {
                let d = tempfile::tempdir().unwrap();
                let url = common::sqlite_url(&d.path().join("auth.db"));
                dir = Some(d);
                figment.merge(("databases.digest_auth.url", url))
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(url) => figment
                .merge(("databases.digest_auth.url", url))
                .merge(("databases.digest_auth.max_connections", 8)),
        };
        let rocket = rocket::custom(figment.merge(("digest_auth", config)))
            .attach(DigestAuth::fairing())
            .mount("/", routes![common::me]);
        Server {
            running: Running::start(rocket).expect("the server starts"),
            dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.addr()
    }
}

/// 200 wrong guesses at once against `backend`: at most `max_failures`
/// are judged, and then the right token is refused too.
fn parallel_burst_is_judged_at_most_max_failures_times(backend: Backend, settings: Value) {
    const MAX_FAILURES: usize = 10;
    let mut settings = settings;
    settings["max_failures"] = json!(MAX_FAILURES);
    settings["failure_window"] = json!(300);
    let server = Server::start(&backend, settings);
    common::block_on_multi_thread(4, async {
        // A fresh user per run: the PostgreSQL schema outlives the test.
        let username = format!("alice-{}", rand::random::<u32>());
        let token = server.running.issue(&username).await;
        let challenge = challenges(ATTACKER, server.addr()).await.remove(0);
        let tally = burst(ATTACKER, &[server.addr()], &challenge, &username, 200).await;
        println!("200 wrong guesses at once: {tally:?}");
        tally.assert_judged_at_most(MAX_FAILURES);
        let right = DigestClient::new(&username, &token, challenge).authorization("GET", "/me");
        let reply = get(ATTACKER, server.addr(), Some(&right)).await;
        assert_eq!(
            reply.status, 429,
            "the right token after the burst: {reply:?}"
        );
    });
}

#[test]
fn a_parallel_burst_on_the_memory_store_is_judged_at_most_max_failures_times() {
    parallel_burst_is_judged_at_most_max_failures_times(Backend::Memory, json!({}));
}

#[test]
fn a_parallel_burst_on_sqlite_without_cache_is_judged_at_most_max_failures_times() {
    parallel_burst_is_judged_at_most_max_failures_times(
        Backend::Sqlite,
        json!({ "credential_cache_ttl": 0 }),
    );
}

#[cfg(feature = "postgres")]
const PG_SCHEMA: &str = "digest_auth_test_failure_limit";

#[cfg(feature = "postgres")]
#[test]
fn a_parallel_burst_on_postgres_is_judged_at_most_max_failures_times() {
    let Some(url) = common::postgres::schema_url_blocking(PG_SCHEMA) else {
        return;
    };
    parallel_burst_is_judged_at_most_max_failures_times(Backend::Postgres(url), json!({}));
}

/// The `Authorization` header of `username` (sent as its userhash when
/// `userhash`) with `password` on `challenge`.
fn answer(challenge: &ClientChallenge, username: &str, password: &str, userhash: bool) -> String {
    let cnonce = format!("{:08x}", rand::random::<u32>());
    Answer {
        username,
        password,
        challenge,
        method: "GET",
        uri: "/me",
        qop: Some(Qop::Auth),
        nc: 1,
        cnonce: &cnonce,
        body: b"",
        userhash,
    }
    .header()
}

#[rocket::async_test]
async fn a_name_and_its_userhashes_share_one_count() {
    const MAX_FAILURES: usize = 10;
    let server = Server::start(
        &Backend::Sqlite,
        json!({ "max_failures": MAX_FAILURES, "userhash": true }),
    );
    let token = server.running.issue("alice").await;
    let offered = challenges(ATTACKER, server.addr()).await;
    let sha256 = offered.iter().find(|c| c.algorithm == Algorithm::Sha256);
    let md5 = offered.iter().find(|c| c.algorithm == Algorithm::Md5);
    let (sha256, md5) = (sha256.unwrap(), md5.unwrap());
    // The plain name, the SHA-256 userhash, the MD5 userhash: one user.
    let ways = [(sha256, false), (sha256, true), (md5, true)];
    let mut tally = Tally::default();
    for (challenge, userhash) in ways {
        for _ in 0..MAX_FAILURES {
            let header = answer(challenge, "alice", "a wrong guess", userhash);
            tally.add(&get(ATTACKER, server.addr(), Some(&header)).await);
        }
    }
    println!("10 guesses each as alice and her two userhashes: {tally:?}");
    assert_eq!(tally.judged, MAX_FAILURES, "{tally:?}");
    // Locked whichever way she is named, the right token included.
    for (challenge, userhash) in ways {
        let header = answer(challenge, "alice", &token, userhash);
        let reply = get(ATTACKER, server.addr(), Some(&header)).await;
        assert_eq!(reply.status, 429, "userhash {userhash}: {reply:?}");
    }
    // From her own address she is not locked, by any name.
    for (challenge, userhash) in ways {
        let header = answer(challenge, "alice", &token, userhash);
        let reply = get(REAL_USER, server.addr(), Some(&header)).await;
        assert_eq!(reply.status, 200, "userhash {userhash}: {reply:?}");
    }
}

/// A memory-store server with `max_failures` and `max_tracked_clients`,
/// alice's token, and the attacker's guess as a username with a password on
/// one challenge.
async fn attacked_server(
    max_failures: usize,
    tracked: usize,
) -> (Server, String, impl Fn(&str, &str) -> String) {
    let server = Server::start(
        &Backend::Memory,
        json!({ "max_failures": max_failures, "max_tracked_clients": tracked }),
    );
    let token = server.running.issue("alice").await;
    let challenge = challenges(ATTACKER, server.addr()).await.remove(0);
    let guess = move |username: &str, password: &str| {
        DigestClient::new(username, password, challenge.clone()).authorization("GET", "/me")
    };
    (server, token, guess)
}

#[rocket::async_test]
async fn a_flood_of_usernames_does_not_unlock_a_locked_pair() {
    const MAX_FAILURES: usize = 3;
    const TRACKED: usize = 50;
    let (server, token, guess) = attacked_server(MAX_FAILURES, TRACKED).await;
    for _ in 0..MAX_FAILURES {
        let reply = get(ATTACKER, server.addr(), Some(&guess("alice", "wrong"))).await;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    // The lock is then the oldest entry, the first an oldest-first eviction drops.
    rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
    // Four times the table's size in junk names, one failure each.
    let mut flood = Tally::default();
    for i in 0..4 * TRACKED {
        let junk = format!("junk{i}");
        flood.add(&get(ATTACKER, server.addr(), Some(&guess(&junk, "wrong"))).await);
    }
    println!("{} junk usernames: {flood:?}", 4 * TRACKED);
    let reply = get(ATTACKER, server.addr(), Some(&guess("alice", &token))).await;
    assert_eq!(
        reply.status, 429,
        "alice's token after the flood: {reply:?}"
    );
    let reply = get(ATTACKER, server.addr(), Some(&guess("alice", "wrong"))).await;
    assert_eq!(reply.status, 429, "a guess after the flood: {reply:?}");
}

#[rocket::async_test]
async fn a_table_full_of_locks_refuses_new_failures_and_lets_right_tokens_in() {
    const MAX_FAILURES: usize = 2;
    const TRACKED: usize = 20;
    let (server, token, guess) = attacked_server(MAX_FAILURES, TRACKED).await;
    // Fill the table with locked pairs.
    for i in 0..TRACKED {
        for _ in 0..MAX_FAILURES {
            let reply = get(
                ATTACKER,
                server.addr(),
                Some(&guess(&format!("junk{i}"), "x")),
            )
            .await;
            assert_eq!(reply.status, 401, "junk{i}: {reply:?}");
        }
    }
    // A new pair's failure has no room: refused, every lock kept.
    let reply = get(ATTACKER, server.addr(), Some(&guess("another", "x"))).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let reply = get(ATTACKER, server.addr(), Some(&guess("junk0", "x"))).await;
    assert_eq!(reply.status, 429, "{reply:?}");
    // A right token needs no room.
    let right = DigestClient::new(
        "alice",
        &token,
        challenges(REAL_USER, server.addr()).await.remove(0),
    )
    .authorization("GET", "/me");
    let reply = get(REAL_USER, server.addr(), Some(&right)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// A failure store that cannot record a wrong guess fails it closed: 503,
/// never a 401 that was not counted.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn a_wrong_guess_the_store_cannot_count_is_refused_with_503() {
    use sqlx::Connection;

    let server = Server::start(&Backend::Sqlite, json!({ "max_failures": 3 }));
    server.running.issue("alice").await;
    let challenge = challenges(ATTACKER, server.addr()).await.remove(0);
    let file = server.dir.as_ref().unwrap().path().join("auth.db");
    let mut admin = sqlx::SqliteConnection::connect(&common::sqlite_url(&file))
        .await
        .unwrap();
    sqlx::query("DROP TABLE digest_auth_failures")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut client = DigestClient::new("alice", "a wrong guess", challenge);
    for _ in 0..3 {
        let header = client.authorization("GET", "/me");
        let reply = get(ATTACKER, server.addr(), Some(&header)).await;
        assert_eq!(reply.status, 503, "{reply:?}");
    }
    // This process counted them all the same: its own limit still holds.
    let header = client.authorization("GET", "/me");
    let reply = get(ATTACKER, server.addr(), Some(&header)).await;
    assert_eq!(reply.status, 429, "{reply:?}");
}
