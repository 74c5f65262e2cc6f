//! Several instances behind a load balancer: two Rocket servers on two real
//! TCP ports, one database (PostgreSQL, or MySQL/MariaDB), one shared
//! `secret`.
//!
//! A nonce minted by one instance is accepted by the other, each (nonce,
//! cnonce, nc) exactly once across both; instances with different secrets
//! refuse each other's nonces; a restarted instance keeps honouring the
//! nonces and counts in the database; a database outage answers 503 and
//! heals by itself.
//!
//! Every test runs on each database whose feature is on: `postgres` with the
//! database of `DIGEST_AUTH_TEST_POSTGRES_URL` (see
//! `tests/common/postgres.rs`), `mysql` with the server of
//! `DIGEST_AUTH_TEST_MYSQL_URL` (see `tests/common/mysql.rs`), there without
//! leases (`nc_lease = 0`, what a balancer spreading one client's requests
//! needs), and the one that needs no such balancer also with leases, MySQL's
//! default. The requests are plain HTTP/1.1 over `std::net::TcpStream`, the
//! Digest answers come from the crate's own client.
#![cfg(any(feature = "postgres", feature = "mysql"))]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::block_on;
use common::http::{self, Request, Response};
use common::server::Running;
use rocket::serde::json::json;
use rocket::{get, routes, State};
use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
use rocket_digest_auth::store::{generate_token, SqlStore, StoreOptions, TokenAdmin};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

/// One realm for every instance and run in `SCHEMA`: the store keeps
/// userhash values for one realm per database.
const REALM: &str = "multi-instance test";

// ---------------------------------------------------------------- servers

struct InstanceName(&'static str);

#[get("/me")]
fn me(user: DigestAuthenticated<User>, name: &State<InstanceName>) -> String {
    format!("{} {}", name.0, user.username)
}

/// The database the instances of a test share.
#[derive(Clone)]
struct Db {
    url: String,
    /// `nc_lease` of every instance and of the admin's store (`None`: the
    /// backend's default); recorded per database.
    nc_lease: Option<u32>,
}

impl Db {
    /// This database with the same `nc_lease`, at `url` (a proxy to it, an
    /// empty one).
    fn at(&self, url: &str) -> Db {
        Db {
            url: url.to_owned(),
            nc_lease: self.nc_lease,
        }
    }
}

/// What an instance is started with.
#[derive(Clone)]
struct Setup {
    database_url: String,
    nc_lease: Option<u32>,
    secret: String,
    /// Seconds to wait for a database connection (rocket_db_pools'
    /// `connect_timeout`, also the pool's acquire timeout).
    connect_timeout: u64,
}

impl Setup {
    fn new(db: &Db, secret: &str) -> Setup {
        Setup {
            database_url: db.url.clone(),
            nc_lease: db.nc_lease,
            secret: secret.to_owned(),
            connect_timeout: 5,
        }
    }
}

/// Rocket's log level for the instances: `ROCKET_LOG_LEVEL`, else quiet.
fn log_level() -> String {
    std::env::var("ROCKET_LOG_LEVEL").unwrap_or_else(|_| "off".into())
}

/// A Rocket server on its own runtime and thread, on a port of its own.
struct Instance {
    name: &'static str,
    server: Running,
}

impl Instance {
    fn launch(name: &'static str, setup: &Setup) -> Instance {
        Instance::try_launch(name, setup).unwrap_or_else(|e| {
            panic!("instance {name} did not start: {e} (ROCKET_LOG_LEVEL=normal shows why)")
        })
    }

    /// Starts an instance as the fairing and a real listener would run it,
    /// configured the way Rocket.toml / `ROCKET_*` variables would.
    fn try_launch(name: &'static str, setup: &Setup) -> Result<Instance, String> {
        let figment = common::server::figment()
            .merge(("workers", 2))
            .merge(("log_level", log_level()))
            .merge((
                "digest_auth",
                json!({ "realm": REALM, "secret": setup.secret }),
            ))
            .merge((
                "digest_auth.nc_lease",
                setup.nc_lease.map_or(json!(null), |n| json!(n)),
            ))
            .merge(("databases.digest_auth.url", &setup.database_url))
            .merge(("databases.digest_auth.max_connections", 4))
            .merge((
                "databases.digest_auth.connect_timeout",
                setup.connect_timeout,
            ));
        let rocket = rocket::custom(figment)
            .attach(DigestAuth::fairing())
            .manage(InstanceName(name))
            .mount("/", routes![me]);
        Ok(Instance {
            name,
            server: Running::start(rocket)?,
        })
    }

    /// One `GET /me` on a fresh connection.
    fn get(&self, authorization: Option<&str>) -> Response {
        let request = Request::get("/me").authorization(authorization).end();
        http::send(self.server.port, &request, Duration::from_secs(60)).expect("an HTTP exchange")
    }

    /// A fresh challenge (the first `WWW-Authenticate`, SHA-256).
    fn challenge(&self) -> ClientChallenge {
        let reply = self.get(None);
        assert_eq!(reply.status, 401, "{}: {reply:?}", self.name);
        reply.headers.challenge()
    }
}

// ------------------------------------------------------------------ setup

/// A user of this run with a fresh token, created the way an admin would
/// (`server create-token`): through the database, not through an instance.
fn create_user(db: &Db, tag: &str) -> (String, String) {
    let user = format!("{tag}-{}", &generate_token()[..12]);
    let options = StoreOptions {
        nc_lease: db.nc_lease,
        ..StoreOptions::new(REALM)
    };
    let token = block_on(async {
        let store = SqlStore::connect_url(&db.url, options)
            .await
            .expect("admin connection");
        let token = store.issue_token(&user).await.expect("issue a token");
        store.close().await;
        token
    });
    (user, token)
}

fn secret() -> String {
    format!("shared-secret-{}", generate_token())
}

fn assert_ok(reply: &Response, instance: &Instance, user: &str) {
    assert_eq!(reply.status, 200, "{}: {reply:?}", instance.name);
    assert_eq!(reply.text(), format!("{} {user}", instance.name));
    assert_eq!(reply.headers.all("authentication-info").len(), 1);
}

fn assert_replay_refused(reply: &Response, instance: &Instance) {
    assert_eq!(reply.status, 401, "{}: {reply:?}", instance.name);
    // The digest was right, only the count was used: stale=true.
    assert!(reply.headers.is_stale(), "{}: {reply:?}", instance.name);
}

// ------------------------------------------------------------------ tests

fn a_nonce_from_one_instance_works_once_on_either(db: &Db) {
    let setup = Setup::new(db, &secret());
    let a = Instance::launch("A", &setup);
    let b = Instance::launch("B", &setup);
    assert_ne!(a.server.port, b.server.port);
    let (user, token) = create_user(db, "alice");

    // A challenge from A, answered to B: accepted.
    let mut client = DigestClient::new(&user, &token, a.challenge());
    let first = client.authorization("GET", "/me");
    assert_ok(&b.get(Some(&first)), &b, &user);
    // The same header replayed to A, or to B again: refused.
    assert_replay_refused(&a.get(Some(&first)), &a);
    assert_replay_refused(&b.get(Some(&first)), &b);

    // Counts interleaved across A and B on that one nonce: each works once,
    // and is refused afterwards by both.
    let headers: Vec<String> = (0..8).map(|_| client.authorization("GET", "/me")).collect();
    for (i, header) in headers.iter().enumerate() {
        let (to, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_ok(&to.get(Some(header)), to, &user);
        assert_replay_refused(&other.get(Some(header)), other);
    }
    for header in &headers {
        assert_replay_refused(&a.get(Some(header)), &a);
        assert_replay_refused(&b.get(Some(header)), &b);
    }

    // Counts arriving out of order (requests overtaking each other behind
    // the load balancer) are each accepted once.
    let late: Vec<String> = (0..3).map(|_| client.authorization("GET", "/me")).collect();
    assert_ok(&a.get(Some(&late[2])), &a, &user);
    assert_ok(&b.get(Some(&late[0])), &b, &user);
    assert_ok(&a.get(Some(&late[1])), &a, &user);
    assert_replay_refused(&b.get(Some(&late[1])), &b);

    // A nonce minted by B works on A the same way.
    let mut client = DigestClient::new(&user, &token, b.challenge());
    let header = client.authorization("GET", "/me");
    assert_ok(&a.get(Some(&header)), &a, &user);
    assert_replay_refused(&b.get(Some(&header)), &b);
}

fn the_same_request_sent_to_both_at_once_wins_once(db: &Db) {
    let setup = Setup::new(db, &secret());
    let a = Instance::launch("A", &setup);
    let b = Instance::launch("B", &setup);
    let (user, token) = create_user(db, "bob");

    let mut client = DigestClient::new(&user, &token, a.challenge());
    let headers: Vec<String> = (0..24)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    // Every header goes to A and to B at the same moment, all headers in
    // flight together: 48 requests on one nonce.
    let statuses: Vec<(u16, u16)> = thread::scope(|s| {
        let pending: Vec<_> = headers
            .iter()
            .map(|h| {
                let (to_a, to_b) = (s.spawn(|| a.get(Some(h))), s.spawn(|| b.get(Some(h))));
                (to_a, to_b)
            })
            .collect();
        pending
            .into_iter()
            .map(|(x, y)| (x.join().unwrap().status, y.join().unwrap().status))
            .collect()
    });
    for (i, pair) in statuses.iter().enumerate() {
        assert!(
            *pair == (200, 401) || *pair == (401, 200),
            "header {i}: A answered {}, B answered {}",
            pair.0,
            pair.1
        );
    }
}

fn instances_with_different_secrets_refuse_each_others_nonces(db: &Db) {
    let a = Instance::launch("A", &Setup::new(db, &secret()));
    let c = Instance::launch("C", &Setup::new(db, &secret()));
    let (user, token) = create_user(db, "carol");

    for (minter, other) in [(&a, &c), (&c, &a)] {
        let mut client = DigestClient::new(&user, &token, minter.challenge());
        let header = client.authorization("GET", "/me");
        let refused = other.get(Some(&header));
        assert_eq!(refused.status, 401, "{}: {refused:?}", other.name);
        // Not stale: the nonce is not one of this instance's, so the client
        // must not retry silently with it.
        assert!(!refused.headers.is_stale(), "{}: {refused:?}", other.name);
        // The header itself was right, and the refusal did not use it up.
        assert_ok(&minter.get(Some(&header)), minter, &user);
    }
}

fn a_restarted_instance_keeps_nonces_and_counts(db: &Db) {
    let setup = Setup::new(db, &secret());
    let (user, token) = create_user(db, "dave");

    let a = Instance::launch("A", &setup);
    let mut client = DigestClient::new(&user, &token, a.challenge());
    let used = client.authorization("GET", "/me");
    assert_ok(&a.get(Some(&used)), &a, &user);
    drop(a);

    // The same configuration started again (on another port here): the
    // client's nonce still works, and what was used stays used.
    let a = Instance::launch("A", &setup);
    assert_replay_refused(&a.get(Some(&used)), &a);
    let next = client.authorization("GET", "/me");
    assert_ok(&a.get(Some(&next)), &a, &user);
}

/// Sends `header` until the answer is not 503 (at most 20 s); returns it
/// and how long that took.
fn until_not_503(instance: &Instance, header: &str) -> (Response, Duration) {
    let started = Instant::now();
    loop {
        let reply = instance.get(Some(header));
        if reply.status != 503 || started.elapsed() > Duration::from_secs(20) {
            return (reply, started.elapsed());
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn a_database_outage_answers_503_and_heals_by_itself(db: &Db) {
    let (host, port) = common::postgres::host_port(&db.url).expect("a host:port URL");
    let proxy = Proxy::start(&host, port);
    let via_proxy =
        common::postgres::replace_host_port(&db.url, &format!("127.0.0.1:{}", proxy.port))
            .expect("a host:port URL");
    let mut setup = Setup::new(&db.at(&via_proxy), &secret());
    setup.connect_timeout = 2;
    let a = Instance::launch("A", &setup);
    let (user, token) = create_user(db, "erin");
    let mut client = DigestClient::new(&user, &token, a.challenge());
    assert_ok(&a.get(Some(&client.authorization("GET", "/me"))), &a, &user);

    for outage in [Link::Stalled, Link::Refused] {
        proxy.set(outage);
        // Fails closed, in bounded time: a right answer is not let
        // through, nor is a wrong one.
        let during = client.authorization("GET", "/me");
        let started = Instant::now();
        let reply = a.get(Some(&during));
        let waited = started.elapsed();
        assert_eq!(reply.status, 503, "{outage:?}: {reply:?}");
        assert!(waited < Duration::from_secs(15), "{outage:?}: {waited:?}");
        // A wrong one: 503, or 401 when the credential cache still holds
        // the user (its version read within the last 2 x credential_recheck_ms).
        let mut wrong = DigestClient::new(&user, &generate_token(), client.challenge().clone());
        let reply = a.get(Some(&wrong.authorization("GET", "/me")));
        assert!([401, 503].contains(&reply.status), "{outage:?}: {reply:?}");
        // A client without credentials still gets its challenge.
        assert_eq!(a.get(None).status, 401);

        proxy.set(Link::Up);
        // No restart: the next requests find the database again, and the
        // answer refused during the outage was not used up.
        let (reply, took) = until_not_503(&a, &during);
        assert_ok(&reply, &a, &user);
        eprintln!("{outage:?}: 503 after {waited:?} (connect_timeout 2 s); 200 again {took:?} after the link came back");
        assert_ok(&a.get(Some(&client.authorization("GET", "/me"))), &a, &user);
    }
}

/// Both instances migrate the empty database `db` at once, then serve.
fn instances_starting_together_on_an_empty_database(db: &Db) -> Result<(), String> {
    let setup = Setup::new(db, &secret());
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| Instance::try_launch("A", &setup));
        let b = s.spawn(|| Instance::try_launch("B", &setup));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (a, b) = (a?, b?);
    let (user, token) = create_user(db, "fresh");
    let mut client = DigestClient::new(&user, &token, a.challenge());
    let header = client.authorization("GET", "/me");
    assert_ok(&b.get(Some(&header)), &b, &user);
    assert_replay_refused(&a.get(Some(&header)), &a);
    Ok(())
}

/// Each test of this file, on one backend's `$db()` (`Option<Db>`, `None`
/// when skipped).
macro_rules! instance_tests {
    ($db:expr) => {
        #[test]
        fn a_nonce_from_one_instance_works_once_on_either() {
            let Some(db) = $db else { return };
            super::a_nonce_from_one_instance_works_once_on_either(&db);
        }

        #[test]
        fn the_same_request_sent_to_both_at_once_wins_once() {
            let Some(db) = $db else { return };
            super::the_same_request_sent_to_both_at_once_wins_once(&db);
        }

        #[test]
        fn instances_with_different_secrets_refuse_each_others_nonces() {
            let Some(db) = $db else { return };
            super::instances_with_different_secrets_refuse_each_others_nonces(&db);
        }

        #[test]
        fn a_restarted_instance_keeps_nonces_and_counts() {
            let Some(db) = $db else { return };
            super::a_restarted_instance_keeps_nonces_and_counts(&db);
        }

        #[test]
        fn a_database_outage_answers_503_and_heals_by_itself() {
            let Some(db) = $db else { return };
            super::a_database_outage_answers_503_and_heals_by_itself(&db);
        }
    };
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    /// The schema of the test database these tests share (per-run users and
    /// secrets keep concurrent runs apart).
    const SCHEMA: &str = "digest_auth_test_multi_instance";

    /// Connect-or-skip.
    fn database() -> Option<Db> {
        let url = common::postgres::schema_url_blocking(SCHEMA)?;
        Some(Db {
            url,
            nc_lease: None,
        })
    }

    instance_tests!(database());

    #[test]
    fn instances_starting_together_on_an_empty_database() {
        // A schema of this run only, empty: both instances migrate it at once.
        let unique = format!(
            "digest_auth_test_fresh_{}_{}",
            chrono::Utc::now().timestamp(),
            &generate_token()[..8]
        );
        let Some(url) = common::postgres::schema_url_blocking(&unique) else {
            return;
        };
        drop_stale_fresh_schemas();
        let db = Db {
            url,
            nc_lease: None,
        };
        let outcome = super::instances_starting_together_on_an_empty_database(&db);
        drop_schema(&unique);
        outcome.expect("both instances start on an empty database");
    }

    fn drop_schema(schema: &str) {
        block_on(async {
            let pool = sqlx::PgPool::connect(&common::postgres::base_url())
                .await
                .expect("connect");
            sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .execute(&pool)
                .await
                .expect("drop schema");
            pool.close().await;
        })
    }

    /// Schemas of `instances_starting_together_on_an_empty_database` runs that
    /// died before dropping theirs, over an hour ago.
    fn drop_stale_fresh_schemas() {
        let stale: Vec<String> = block_on(async {
            let pool = sqlx::PgPool::connect(&common::postgres::base_url())
                .await
                .expect("connect");
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'digest\\_auth\\_test\\_fresh\\_%'",
            )
            .fetch_all(&pool)
            .await
            .expect("list schemas");
            pool.close().await;
            names
        });
        let hour_ago = chrono::Utc::now().timestamp() - 3600;
        for name in stale {
            let created = name
                .strip_prefix("digest_auth_test_fresh_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|t| t.parse::<i64>().ok());
            if created.is_some_and(|t| t < hour_ago) {
                drop_schema(&name);
            }
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    /// Without leases (`nc_lease = 0`, recorded in the database), so that
    /// one client's counts may alternate between the instances.
    fn database() -> Option<Db> {
        let url = common::mysql::database_url_blocking("multi_instance_rows")?;
        Some(Db {
            url,
            nc_lease: Some(0),
        })
    }

    instance_tests!(database());

    /// With leases, MySQL's default: the same header to both instances at
    /// once still wins once (the instance without the lease refuses it).
    mod leased {
        use super::*;

        #[test]
        fn the_same_request_sent_to_both_at_once_wins_once() {
            let Some(url) = common::mysql::database_url_blocking("multi_instance") else {
                return;
            };
            let db = Db {
                url,
                nc_lease: None,
            };
            super::super::the_same_request_sent_to_both_at_once_wins_once(&db);
        }
    }

    /// A database of this run only, empty: both instances migrate it at
    /// once, under the store's own lock (sqlx's is a no-op on MariaDB).
    #[test]
    fn instances_starting_together_on_an_empty_database() {
        for round in 0..3 {
            let name = format!("fresh_{}", &generate_token()[..8]);
            let Some(url) = common::mysql::database_url_blocking(&name) else {
                return;
            };
            let db = Db {
                url,
                nc_lease: None,
            };
            let outcome = super::instances_starting_together_on_an_empty_database(&db);
            block_on(common::mysql::drop_database(&name));
            outcome.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

// ------------------------------------------------------------------ proxy

/// What the [`Proxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Link {
    /// Forwards both ways.
    Up,
    /// The database stopped: open connections are cut, new ones refused.
    Refused,
    /// A network partition: connections stay open, nothing gets through
    /// until the link is up again (then everything held is delivered).
    Stalled,
}

/// A TCP forwarder to the database whose link can be cut or stalled: an
/// outage without stopping a PostgreSQL server other tests use.
struct Proxy {
    port: u16,
    link: Arc<AtomicU8>,
    closing: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(host: &str, port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            link: Arc::new(AtomicU8::new(Link::Up as u8)),
            closing: Arc::new(AtomicBool::new(false)),
            live: Arc::default(),
        };
        let (link, closing, live) = (
            proxy.link.clone(),
            proxy.closing.clone(),
            proxy.live.clone(),
        );
        let upstream = format!("{host}:{port}");
        thread::spawn(move || {
            for client in listener.incoming() {
                if closing.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if link.load(Ordering::SeqCst) == Link::Refused as u8 {
                    let _ = client.shutdown(NetShutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let link = link.clone();
                    thread::spawn(move || relay(from, to, &link));
                }
                live.lock().unwrap().extend([client, server]);
            }
        });
        proxy
    }

    fn set(&self, link: Link) {
        self.link.store(link as u8, Ordering::SeqCst);
        if link == Link::Refused {
            for stream in self.live.lock().unwrap().drain(..) {
                let _ = stream.shutdown(NetShutdown::Both);
            }
        }
    }
}

/// Copies `from` to `to`, holding data back while the link is stalled.
fn relay(mut from: TcpStream, mut to: TcpStream, link: &AtomicU8) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while link.load(Ordering::SeqCst) == Link::Stalled as u8 {
            thread::sleep(Duration::from_millis(10));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(NetShutdown::Both);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Link::Refused);
        self.closing.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
