//! Faults in one process: the SQLite file failing under traffic, pool
//! exhaustion, a restart, a store that never answers. Authentication must
//! fail closed (503, never 200, never 500, no panic) and recover by itself.
//! A database server stopping is in `tests/faults_servers.rs`; the app,
//! traffic and outage checks both use are in `tests/common/outage.rs`.
//!
//! How the faults are made real, and why these ways:
//!
//! - SQLite "becomes unwritable": `chattr +i` on the database file, its WAL
//!   file and their directory. `chmod` would prove nothing: the tests run as
//!   root, which ignores permission bits, and even for other users a chmod
//!   does not affect the file descriptors the pool already holds open. The
//!   immutable attribute binds root too and the kernel checks it on every
//!   write, so the pool's open connections get EPERM (SQLITE_IOERR) at once.
//!   Setting it needs CAP_LINUX_IMMUTABLE and an ext4/xfs/btrfs-like file
//!   system; where that is not available the test says so and skips.
//! - SQLite write lock held elsewhere / pool exhaustion: another process's
//!   connection holds `BEGIN IMMEDIATE` (in WAL mode the same as EXCLUSIVE
//!   for writers), so the pool's inserts wait `busy_timeout` (= the pool's
//!   `connect_timeout`) and the other requests wait for the pool's only
//!   connection until the acquire timeout. Works for any user.
//! - Restart: the rocket is torn down and built again on the same database
//!   file (or a new in-memory store).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::local::issue;
use common::outage::{
    assert_recovered, check_outage_under, figment, first_attempt, get, launch,
    launch_with_a_used_header_and, run, session, Traffic, SECRET,
};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::routes;
use rocket::tokio::time::sleep;
use rocket_digest_auth::store::{Credential, CredentialStore, StoreError};
use rocket_digest_auth::DigestAuth;
use serde_json::json;

// ---------------------------------------------------------------------------
// SQLite: the file becomes unwritable mid-traffic.

/// `chattr +i` on some paths, undone on drop (also when the test panics, so
/// that the temporary directory can be deleted).
struct Immutable(Vec<PathBuf>);

fn chattr(flag: &str, path: &Path) -> Result<(), String> {
    let output = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .map_err(|e| format!("running chattr: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "chattr {flag} {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Immutable {
    fn set(paths: &[&Path]) -> Immutable {
        let mut guard = Immutable(Vec::new());
        for path in paths {
            chattr("+i", path).expect("chattr +i worked on the probe, so it must work here");
            guard.0.push(path.to_path_buf());
        }
        guard
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in self.0.iter().rev() {
            if let Err(e) = chattr("-i", path) {
                eprintln!("could not undo: {e}");
            }
        }
    }
}

/// `nc_lease = 0`: every claim is a write, so every request inside the
/// outage is refused with 503.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_file_made_unwritable_mid_traffic_fails_closed_and_recovers() {
    sqlite_made_unwritable_mid_traffic(0);
}

/// With leases (a small `nc_lease` so that the traffic crosses blocks during
/// the outage): a count in a block leased before the fault is still decided
/// exactly, in memory; the first count that needs a new lease gets 503, and
/// so does every request of that worker after it until the file heals.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_file_made_unwritable_with_leases_refuses_what_needs_a_new_lease() {
    sqlite_made_unwritable_mid_traffic(16);
}

#[cfg(feature = "sqlite")]
fn sqlite_made_unwritable_mid_traffic(nc_lease: u32) {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        // Probe: can this process set the immutable attribute here?
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"x").unwrap();
        if let Err(e) = chattr("+i", &probe) {
            println!(
                "SKIPPED: cannot make a file immutable here ({e}); this test needs \
                 CAP_LINUX_IMMUTABLE (root) and a file system with the attribute"
            );
            return;
        }
        chattr("-i", &probe).unwrap();
        std::fs::remove_file(&probe).unwrap();

        let db = dir.path().join("auth.db");
        let (client, token, used_before) = launch_with_a_used_header_and(
            json!({
                "url": common::sqlite_url(&db),
                "connect_timeout": 2,
                "max_connections": 4,
            }),
            json!({ "secret": SECRET, "nc_lease": nc_lease }),
        )
        .await;
        let wal = dir.path().join("auth.db-wal");
        assert!(wal.exists(), "the store runs SQLite in WAL mode");

        let traffic = Traffic::start(&client, &token, 3).await;

        let fault = Immutable::set(&[&db, &wal, dir.path()]);
        let fault_at = Instant::now();
        sleep(Duration::from_millis(1500)).await;

        // During the outage: a correct answer on a fresh nonce is refused with
        // 503. Wrong and unknown credentials are refused too: 401 when the
        // read still works, 503 when it does not (a connection the pool opens
        // now gets the file read-only); never 200.
        let reply = first_attempt(&client, "alice", &token).await;
        assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
        for (user, secret) in [("alice", "not the token"), ("nobody", token.as_str())] {
            let reply = first_attempt(&client, user, secret).await;
            assert!([401, 503].contains(&reply.status.code), "{user}: {reply:?}");
        }
        sleep(Duration::from_millis(1000)).await;

        let heal_at = Instant::now();
        drop(fault);
        let recovered = traffic
            .wait_for_success_after(heal_at, Duration::from_secs(15))
            .await;
        let recovery = heal_at.elapsed();
        let samples = traffic.finish().await;
        assert!(recovered, "authentication did not recover within 15 s");
        check_outage_under(
            "sqlite immutable",
            nc_lease,
            &samples,
            (fault_at, heal_at),
            recovery,
        );

        assert_recovered(&client, &token, &used_before).await;
    })
}

// ---------------------------------------------------------------------------
// SQLite: another process holds the write lock, with one pooled connection.

#[cfg(feature = "sqlite")]
/// Holds SQLite's write lock on `db` from a separate connection, as another
/// process (a backup, a migration, an admin's shell) would.
async fn hold_write_lock(db: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&common::sqlite_url(db))
        .await
        .expect("a second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("taking the write lock");
    // Make it a real pending write too.
    sqlx::query("DELETE FROM digest_auth_nonce_counts WHERE nonce = 'none'")
        .execute(&mut conn)
        .await
        .expect("a write inside the lock");
    conn
}

#[cfg(feature = "sqlite")]
#[test]
fn pool_exhaustion_answers_503_within_the_timeout() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("auth.db");
        let client = Arc::new(
            launch(
                figment(
                    json!({ "url": common::sqlite_url(&db), "max_connections": 1, "connect_timeout": 1 }),
                    json!({ "secret": SECRET }),
                ),
                DigestAuth::fairing(),
            )
            .await,
        );
        let token = issue(&client, "alice").await;
        const CONCURRENT: usize = 12;
        let mut sessions = Vec::new();
        for _ in 0..CONCURRENT {
            sessions.push(session(&client, "alice", &token).await);
        }

        let mut lock = hold_write_lock(&db).await;
        let started = Instant::now();
        let tasks: Vec<_> = sessions
            .iter_mut()
            .map(|s| {
                let header = s.authorization("GET", "/me");
                let client = client.clone();
                rocket::tokio::spawn(async move { get(&client, Some(&header)).await })
            })
            .collect();
        let mut replies = Vec::new();
        for task in tasks {
            replies.push(
                rocket::tokio::time::timeout(Duration::from_secs(30), task)
                    .await
                    .expect("a request hung for 30 s")
                    .expect("a request task panicked"),
            );
        }
        let total = started.elapsed();
        let slowest = replies.iter().map(|r| r.elapsed).max().unwrap();
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.code).collect();
        println!(
            "pool exhaustion: {CONCURRENT} concurrent requests, 1 connection, 1 s timeout: \
             statuses {statuses:?}, slowest {slowest:?}, all done in {total:?}"
        );
        assert!(
            statuses.iter().all(|&s| s == 503),
            "every request must fail closed with 503: {statuses:?}"
        );
        // connect_timeout = 1 s bounds each wait (for the pool or the lock);
        // a request waits at most twice. 5 s is generous for a noisy machine.
        assert!(slowest < Duration::from_secs(5), "slowest {slowest:?}");
        assert!(total < Duration::from_secs(5), "total {total:?}");

        // The lock goes away: the same sessions succeed again.
        sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
        drop(lock);
        for s in &mut sessions {
            let reply = get(&client, Some(&s.authorization("GET", "/me"))).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
        }
    })
}

// ---------------------------------------------------------------------------
// Restart.

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_nonces_survive_a_restart_and_still_cannot_be_replayed() {
    sqlite_restart(0);
}

/// With leases (the default), the new process does not hold the blocks the
/// old one leased: the next count of a nonce in use gets `stale=true` too,
/// and the client carries on with a fresh nonce.
#[cfg(feature = "sqlite")]
#[test]
fn sqlite_restart_with_leases_makes_the_current_block_stale() {
    sqlite_restart(256);
}

#[cfg(feature = "sqlite")]
fn sqlite_restart(nc_lease: u32) {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("auth.db");
        let config = || {
            figment(
                json!({ "url": common::sqlite_url(&db) }),
                json!({ "secret": SECRET, "nc_lease": nc_lease }),
            )
        };

        let first = launch(config(), DigestAuth::fairing()).await;
        let token = issue(&first, "alice").await;
        let mut digest = session(&first, "alice", &token).await;
        let used = digest.authorization("GET", "/me");
        assert_eq!(get(&first, Some(&used)).await.status, Status::Ok);
        drop(first.terminate().await);

        let second = launch(config(), DigestAuth::fairing()).await;
        let next = digest.authorization("GET", "/me");
        let reply = get(&second, Some(&next)).await;
        if nc_lease > 0 {
            // The next count is in the old process's block: stale=true, and
            // the client's next attempt, on the fresh nonce, succeeds.
            assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
            assert!(reply.headers.is_stale(), "{reply:?}");
            let mut fresh = session(&second, "alice", &token).await;
            let reply = get(&second, Some(&fresh.authorization("GET", "/me"))).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
            let reply = get(&second, Some(&used)).await;
            assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
            assert!(reply.headers.is_stale(), "{reply:?}");
            return;
        }
        // Without leases: the same nonce, the next count, accepted by the new instance.
        assert_eq!(reply.status, Status::Ok, "{reply:?}");
        // The exact header used before the restart: refused, stale=true.
        let reply = get(&second, Some(&used)).await;
        assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
        assert!(reply.headers.is_stale(), "{reply:?}");
        // And the one used after it, too.
        let reply = get(&second, Some(&next)).await;
        assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
        assert!(reply.headers.is_stale(), "{reply:?}");
    })
}

/// One user with a fixed token: the credentials an app keeps elsewhere
/// (config, LDAP...), surviving the restart while the counts do not.
struct OneUser {
    token: String,
}

#[rocket::async_trait]
impl CredentialStore for OneUser {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        Ok((username == "alice").then(|| Credential::token(username, &self.token)))
    }
}

#[test]
fn memory_store_nonces_from_before_a_restart_are_stale() {
    run(async {
        let token = "the token of alice, kept by the app";
        let config = || figment(json!({}), json!({ "secret": SECRET, "store": "memory" }));
        let auth = || {
            DigestAuth::fairing().with_credential_store(OneUser {
                token: token.into(),
            })
        };

        let first = launch(config(), auth()).await;
        let mut digest = session(&first, "alice", token).await;
        let used = digest.authorization("GET", "/me");
        assert_eq!(get(&first, Some(&used)).await.status, Status::Ok);
        drop(first.terminate().await);

        let second = launch(config(), auth()).await;
        // A correct answer to the old nonce: the replay records died with the
        // process, so the nonce is stale, never accepted.
        let reply = get(&second, Some(&digest.authorization("GET", "/me"))).await;
        assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
        assert!(reply.headers.is_stale(), "stale=true expected: {reply:?}");
        let reply = get(&second, Some(&used)).await;
        assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
        assert!(reply.headers.is_stale(), "{reply:?}");
        // The client follows the stale challenge without asking the user.
        digest.set_nonce(&reply.headers.challenge().nonce);
        let reply = get(&second, Some(&digest.authorization("GET", "/me"))).await;
        assert_eq!(reply.status, Status::Ok, "{reply:?}");
    })
}

/// A store that never answers (a stuck database, a partition mid-query):
/// the request fails closed with 503 after `store_timeout`, not hanging.
#[rocket::async_test]
async fn a_store_that_never_answers_fails_closed_within_store_timeout() {
    use rocket_digest_auth::store::{Claim, ClaimRequest, NonceCountStore};

    struct Stuck;

    #[rocket::async_trait]
    impl NonceCountStore for Stuck {
        async fn claim(&self, _: ClaimRequest<'_>) -> Result<Claim, StoreError> {
            std::future::pending().await
        }
        async fn remove_expired(&self, _: i64) -> Result<u64, StoreError> {
            Ok(0)
        }
    }

    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("digest_auth.store", "memory"))
        .merge(("digest_auth.store_timeout", 1));
    let rocket = rocket::custom(figment)
        .attach(DigestAuth::fairing().with_nonce_count_store(Stuck))
        .mount("/", routes![common::me]);
    let client = Client::tracked(rocket).await.unwrap();
    let token = issue(&client, "alice").await;
    let reply = first_attempt(&client, "alice", &token).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    let took = reply.elapsed;
    assert!(
        took >= Duration::from_millis(900),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
