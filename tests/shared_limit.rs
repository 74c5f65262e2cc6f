//! One failure limit for a whole fleet: three instances on real TCP ports
//! sharing one store (PostgreSQL, MySQL/MariaDB, or Redis for the counts),
//! guessed at from one client address.
//!
//! A parallel burst of wrong guesses spread round-robin over the instances
//! is answered 401 at most `max_failures` times in all; then the right token
//! from that address is refused (429) at every instance, also at one that
//! never saw a wrong guess (after it heard of the lock: the wait is bounded
//! and printed); from another address it is accepted. A failure store that
//! cannot answer a wrong guess fails it closed (503).
#![cfg(any(feature = "postgres", feature = "mysql", feature = "redis"))]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::guesses::{burst, challenges, get};
use common::server::Running;
use rocket::routes;
use rocket_digest_auth::protocol::DigestClient;
use rocket_digest_auth::DigestAuth;
use serde_json::{json, Value};

const SECRET: &str = "shared limit test secret 0123456789abcdef0123456789";
const REALM: &str = "shared limit test";
const MAX_FAILURES: usize = 10;
/// Longest wait for an instance to hear of a lock another instance saw.
const HEARING_LIMIT: Duration = Duration::from_secs(10);

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const REAL_USER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// Three instances sharing one store, and what they share it through.
struct Fleet {
    instances: Vec<Running>,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// Three instances with `databases` (merged over a SQLite file of the
    /// fleet's own) and `digest_auth` settings.
    fn start(databases: Value, digest_auth: Value) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let mut config = json!({
            "secret": SECRET,
            "realm": REALM,
            "max_failures": MAX_FAILURES,
            "failure_window": 300,
        });
        config
            .as_object_mut()
            .unwrap()
            .extend(digest_auth.as_object().unwrap().clone());
        let sqlite = common::sqlite_url(&dir.path().join("auth.db"));
        let instances = (0..3)
            .map(|_| {
                let figment = common::server::figment()
                    .merge(("workers", 2))
                    .merge(("databases.digest_auth.url", &sqlite))
                    .merge(("databases.digest_auth.max_connections", 4))
                    .merge(("databases", databases.clone()))
                    .merge(("digest_auth", config.clone()));
                let rocket = rocket::custom(figment)
                    .attach(DigestAuth::fairing())
                    .mount("/", routes![common::me]);
                Running::start(rocket).expect("an instance starts")
            })
            .collect();
        Fleet {
            instances,
            _dir: dir,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.instances.iter().map(Running::addr).collect()
    }

    /// A user of this run (the schema or database outlives it) and its token.
    async fn user(&self, name: &str) -> (String, String) {
        let username = format!("{name}-{}", rand::random::<u32>());
        let token = self.instances[0].issue(&username).await;
        (username, token)
    }
}

/// The right token of `username` from `from` at `to`, on a fresh challenge.
async fn right_guess(from: IpAddr, to: SocketAddr, username: &str, token: &str) -> u16 {
    let challenge = challenges(from, to).await.remove(0);
    let header = DigestClient::new(username, token, challenge).authorization("GET", "/me");
    get(from, to, Some(&header)).await.status
}

/// Right guesses from `from` at `to` until one is refused (429); how long
/// that took. Fails the test after [`HEARING_LIMIT`].
async fn until_refused(from: IpAddr, to: SocketAddr, username: &str, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        let status = right_guess(from, to, username, token).await;
        if status == 429 {
            return start.elapsed();
        }
        assert_eq!(status, 200, "the right token at {to}");
        assert!(
            start.elapsed() < HEARING_LIMIT,
            "{to} still accepts the right token of a locked pair after {HEARING_LIMIT:?}"
        );
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The burst, then the right token at every instance: the whole check.
fn fleet_shares_one_limit(databases: Value, digest_auth: Value) {
    let fleet = Fleet::start(databases, digest_auth);
    let addrs = fleet.addrs();
    common::block_on_multi_thread(4, async {
        let (username, token) = fleet.user("alice").await;
        let challenge = challenges(ATTACKER, addrs[0]).await.remove(0);
        let tally = burst(ATTACKER, &addrs, &challenge, &username, 200).await;
        println!("200 wrong guesses over 3 instances: {tally:?}");
        tally.assert_judged_at_most(MAX_FAILURES);
        for &to in &addrs {
            let waited = until_refused(ATTACKER, to, &username, &token).await;
            println!("{to} refused the right token after {waited:?}");
        }
        for &to in &addrs {
            let status = right_guess(REAL_USER, to, &username, &token).await;
            assert_eq!(status, 200, "the right token from another address at {to}");
        }
    });
}

/// Wrong guesses at one instance only; the others hear of the lock.
fn a_lock_reaches_instances_that_saw_no_failure(databases: Value, digest_auth: Value) {
    let fleet = Fleet::start(databases, digest_auth);
    let addrs = fleet.addrs();
    common::block_on_multi_thread(4, async {
        let (username, token) = fleet.user("bob").await;
        // Every instance has served a right guess, and so polled the store,
        // before the lock: they hear of it by a later poll.
        for &to in &addrs {
            assert_eq!(right_guess(REAL_USER, to, &username, &token).await, 200);
        }
        let challenge = challenges(ATTACKER, addrs[0]).await.remove(0);
        let tally = burst(
            ATTACKER,
            &addrs[..1],
            &challenge,
            &username,
            MAX_FAILURES + 1,
        )
        .await;
        assert_eq!(tally.judged, MAX_FAILURES, "{tally:?}");
        for &to in &addrs[1..] {
            let waited = until_refused(ATTACKER, to, &username, &token).await;
            println!("{to}, which saw no failure, refused the right token after {waited:?}");
        }
    });
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    const SCHEMA: &str = "digest_auth_test_shared_limit";

    fn databases() -> Option<Value> {
        let url = common::postgres::schema_url_blocking(SCHEMA)?;
        Some(json!({ "digest_auth": { "url": url } }))
    }

    #[test]
    fn a_burst_over_three_instances_is_judged_at_most_max_failures_times() {
        if let Some(databases) = databases() {
            fleet_shares_one_limit(databases, json!({}));
        }
    }

    #[test]
    fn a_lock_reaches_every_instance() {
        if let Some(databases) = databases() {
            a_lock_reaches_instances_that_saw_no_failure(databases, json!({}));
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;

    fn databases() -> Option<Value> {
        let url = common::mysql::database_url_blocking("shared_limit")?;
        Some(json!({ "digest_auth": { "url": url } }))
    }

    #[test]
    fn a_burst_over_three_instances_is_judged_at_most_max_failures_times() {
        if let Some(databases) = databases() {
            fleet_shares_one_limit(databases, json!({ "nc_lease": 0 }));
        }
    }

    #[test]
    fn a_lock_reaches_every_instance() {
        if let Some(databases) = databases() {
            a_lock_reaches_instances_that_saw_no_failure(databases, json!({ "nc_lease": 0 }));
        }
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    /// Credentials in the fleet's SQLite file, counts and failures in the
    /// shared Redis under a prefix of this run's own.
    fn databases() -> Option<Value> {
        common::block_on(common::redis::shared_store("shared_limit"))?;
        Some(json!({ "digest_auth_counts": {
            "url": common::redis::shared_url(),
            "key_prefix": common::redis::unique_prefix("shared_limit"),
        } }))
    }

    #[test]
    fn a_burst_over_three_instances_is_judged_at_most_max_failures_times() {
        if let Some(databases) = databases() {
            fleet_shares_one_limit(databases, json!({ "counts": "redis" }));
        }
    }

    #[test]
    fn a_lock_reaches_every_instance() {
        if let Some(databases) = databases() {
            a_lock_reaches_instances_that_saw_no_failure(databases, json!({ "counts": "redis" }));
        }
    }
}
