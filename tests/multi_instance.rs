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

use std::thread;
use std::time::{Duration, Instant};

use common::block_on;
use common::http::Response;
use common::instances::{
    assert_ok, assert_replay_refused, create_user, secret, Db, Instance, Setup,
};
use common::proxy::{Link, Proxy};
use rocket_digest_auth::protocol::DigestClient;
use rocket_digest_auth::store::generate_token;

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
