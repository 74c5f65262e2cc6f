//! Faults: the database failing under traffic, a server restart, and pool
//! exhaustion. Authentication must fail closed (503, never 200, never 500,
//! no panic) and recover by itself.
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
//! - PostgreSQL stops: a private cluster (`initdb` + `pg_ctl`, see
//!   `common/pg_cluster.rs`) on a free port is stopped with `pg_ctl stop -m
//!   fast` and started again; the shared server on 5432 is left alone.
//! - MariaDB stops: a private server (`mariadb-install-db` + `mariadbd`, see
//!   `common/mariadb_server.rs`) on a free port is stopped by its PID and
//!   started again; the shared server on 3306 is left alone.
//! - Restart: the rocket is torn down and built again on the same database
//!   file (or a new in-memory store).

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::local::{issue, Reply};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::routes;
use rocket::tokio::task::JoinHandle;
use rocket::tokio::time::sleep;
use rocket_digest_auth::protocol::{Algorithm, DigestClient};
use rocket_digest_auth::store::{Credential, CredentialStore, Secret, StoreError};
use rocket_digest_auth::DigestAuth;
use serde_json::{json, Value};

const SECRET: &str = "faults test secret: 0123456789abcdef0123456789abcdef";

/// Runs a test body on a multi-threaded runtime, so that traffic tasks and
/// the test's own requests really run side by side.
fn run<F: Future>(f: F) -> F::Output {
    common::block_on_multi_thread(4, f)
}

/// Rocket's log is off; `FAULTS_LOG=normal` shows it (e.g. which store
/// error each 503 came from).
fn figment(database: Value, digest_auth: Value) -> Figment {
    Figment::from(rocket::Config::default())
        .merge((
            "log_level",
            std::env::var("FAULTS_LOG").unwrap_or("off".into()),
        ))
        .merge(("databases.digest_auth", database))
        .merge(("digest_auth", digest_auth))
}

async fn launch(figment: Figment, auth: DigestAuth) -> Client {
    let rocket = rocket::custom(figment)
        .attach(auth)
        .mount("/", routes![common::me]);
    Client::untracked(rocket).await.expect("the rocket ignites")
}

/// `GET /me`; any challenge in the reply must be a valid Digest one.
async fn get(client: &Client, authorization: Option<&str>) -> Reply {
    let reply = common::local::get(client, "/me", authorization).await;
    reply.headers.challenges();
    reply
}

/// A client session for `username` on a fresh challenge.
async fn session(client: &Client, username: &str, secret: &str) -> DigestClient {
    common::local::session(client, username, secret, Algorithm::Sha256).await
}

/// `GET /me` answered by `username` with `secret` on a fresh challenge.
async fn first_attempt(client: &Client, username: &str, secret: &str) -> Reply {
    let mut digest = session(client, username, secret).await;
    get(client, Some(&digest.authorization("GET", "/me"))).await
}

/// The app on `database` with alice's token, and a header it accepted (to
/// be replayed after a fault).
async fn launch_with_a_used_header(database: Value) -> (Arc<Client>, String, String) {
    launch_with_a_used_header_and(database, json!({ "secret": SECRET })).await
}

async fn launch_with_a_used_header_and(
    database: Value,
    digest_auth: Value,
) -> (Arc<Client>, String, String) {
    let client = Arc::new(launch(figment(database, digest_auth), DigestAuth::fairing()).await);
    let token = issue(&client, "alice").await;
    let mut before = session(&client, "alice", &token).await;
    let used = before.authorization("GET", "/me");
    assert_eq!(get(&client, Some(&used)).await.status, Status::Ok);
    (client, token, used)
}

/// After recovery: every connection of the pool works again (a burst wider
/// than the pool reaches them all), and the count recorded before the
/// outage still refuses a replay.
async fn assert_recovered(client: &Arc<Client>, token: &str, used_before: &str) {
    assert_all_succeed(client, token, 32).await;
    let reply = get(client, Some(used_before)).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    assert!(
        reply.headers.is_stale(),
        "a replay gets stale=true: {reply:?}"
    );
}

/// `n` concurrent correct requests, each on its own nonce: all must succeed.
async fn assert_all_succeed(client: &Arc<Client>, secret: &str, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut digest = session(client, "alice", secret).await;
        let client = client.clone();
        tasks.push(rocket::tokio::spawn(async move {
            get(&client, Some(&digest.authorization("GET", "/me"))).await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("a request task panicked").status.code);
    }
    assert!(
        statuses.iter().all(|&s| s == 200),
        "after recovery, {n} concurrent correct requests: {statuses:?}"
    );
}

// ---------------------------------------------------------------------------
// Traffic: correct requests in a loop, every outcome recorded.

#[derive(Debug, Clone, Copy)]
struct Sample {
    started: Instant,
    ended: Instant,
    status: u16,
}

struct Traffic {
    stop: Arc<AtomicBool>,
    samples: Vec<Arc<Mutex<Vec<Sample>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// `workers` clients, each on its own nonce, sending correct requests;
    /// returns once each has succeeded.
    async fn start(client: &Arc<Client>, secret: &str, workers: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut samples = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let log = Arc::new(Mutex::new(Vec::new()));
            let mut digest = session(client, "alice", secret).await;
            let (client, stop, log2) = (client.clone(), stop.clone(), log.clone());
            tasks.push(rocket::tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let header = digest.authorization("GET", "/me");
                    let started = Instant::now();
                    let reply = get(&client, Some(&header)).await;
                    let status = reply.status.code;
                    log2.lock().unwrap().push(Sample {
                        started,
                        ended: Instant::now(),
                        status,
                    });
                    let pause = if status == 200 { 10 } else { 50 };
                    sleep(Duration::from_millis(pause)).await;
                }
            }));
            samples.push(log);
        }
        let traffic = Traffic {
            stop,
            samples,
            tasks,
        };
        assert!(
            traffic
                .wait_for_success_after(Instant::now(), Duration::from_secs(10))
                .await,
            "no success before the fault"
        );
        traffic
    }

    /// Waits until every worker had a 200 on a request started after `since`.
    async fn wait_for_success_after(&self, since: Instant, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let all = self.samples.iter().all(|log| {
                log.lock()
                    .unwrap()
                    .iter()
                    .any(|s| s.started > since && s.status == 200)
            });
            if all {
                return true;
            }
            sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn finish(self) -> Vec<Vec<Sample>> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a traffic task panicked");
        }
        self.samples
            .into_iter()
            .map(|log| log.lock().unwrap().clone())
            .collect()
    }
}

/// The checks shared by the outage tests: only 200 and 503 ever; every
/// request that ran entirely inside the outage got 503, within `bound`;
/// success before and after.
fn check_outage(
    workers: &[Vec<Sample>],
    fault: Instant,
    heal: Instant,
    bound: Duration,
) -> (usize, Duration) {
    let all: Vec<&Sample> = workers.iter().flatten().collect();
    let mut histogram = std::collections::BTreeMap::new();
    for s in &all {
        *histogram.entry(s.status).or_insert(0) += 1;
    }
    println!("traffic outcomes by status: {histogram:?}");
    assert!(
        all.iter().all(|s| s.status == 200 || s.status == 503),
        "only 200 or 503 may be answered to correct requests: {histogram:?}"
    );
    let inside: Vec<&&Sample> = all
        .iter()
        .filter(|s| s.started > fault && s.ended < heal)
        .collect();
    assert!(
        !inside.is_empty(),
        "no request ran entirely inside the outage"
    );
    let let_through = inside.iter().filter(|s| s.status != 503).count();
    assert_eq!(
        let_through,
        0,
        "{let_through} of {} requests during the outage were not refused with 503",
        inside.len()
    );
    let slowest = inside
        .iter()
        .map(|s| s.ended - s.started)
        .max()
        .unwrap_or_default();
    assert!(
        slowest < bound,
        "a request during the outage took {slowest:?} (bound {bound:?})"
    );
    for (i, worker) in workers.iter().enumerate() {
        assert!(
            worker.iter().any(|s| s.ended < fault && s.status == 200),
            "worker {i} never succeeded before the fault"
        );
        assert!(
            worker.iter().any(|s| s.started > heal && s.status == 200),
            "worker {i} did not recover after the fault was removed"
        );
    }
    (inside.len(), slowest)
}

/// [`check_outage`] for a store with `nc_lease` (0: no leases, every
/// request inside the outage 503). With leases, a worker may be served from
/// the block it leased before the outage, fewer than a lease's counts, and
/// then only 503 until the heal.
fn check_outage_under(
    label: &str,
    nc_lease: u32,
    samples: &[Vec<Sample>],
    (fault_at, heal_at): (Instant, Instant),
    recovery: Duration,
) {
    if nc_lease == 0 {
        let (inside, slowest) = check_outage(samples, fault_at, heal_at, Duration::from_secs(5));
        println!(
            "{label}, no leases: {inside} requests inside the outage, all 503, \
             slowest {slowest:?}; all workers recovered within {recovery:?}"
        );
        return;
    }
    for (i, worker) in samples.iter().enumerate() {
        let inside: Vec<u16> = worker
            .iter()
            .filter(|s| s.started > fault_at && s.ended < heal_at)
            .map(|s| s.status)
            .collect();
        assert!(
            inside.iter().all(|&s| s == 200 || s == 503),
            "worker {i}: {inside:?}"
        );
        let served = inside.iter().take_while(|&&s| s == 200).count();
        assert!(
            served < nc_lease as usize,
            "worker {i}: {served} requests served inside the outage, more than one \
             lease of {nc_lease} counts: {inside:?}"
        );
        assert!(
            inside[served..].iter().all(|&s| s == 503) && served < inside.len(),
            "worker {i}: after the first 503 every request until the heal must be 503: \
             {inside:?}"
        );
        println!(
            "{label}, nc_lease {nc_lease}: worker {i} had {served} requests \
             served from its lease, then {} refused with 503; recovered within {recovery:?}",
            inside.len() - served
        );
    }
}

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
        Ok((username == "alice").then(|| Credential {
            username: username.into(),
            secret: Secret::Token(self.token.clone()),
            created_at: None,
        }))
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

// ---------------------------------------------------------------------------
// PostgreSQL stops and starts again.

#[cfg(feature = "postgres")]
#[test]
fn postgres_server_stopping_mid_traffic_fails_closed_and_recovers() {
    use common::pg_cluster::PgCluster;

    let cluster = match PgCluster::start() {
        Ok(cluster) => cluster,
        Err(e) => {
            common::require::POSTGRES.skip(format!("cannot start a private cluster: {e}"));
            return;
        }
    };
    const CONNECT_TIMEOUT: u64 = 2;
    run(async {
        let (client, token, used_before) = launch_with_a_used_header(
            json!({ "url": cluster.url(), "connect_timeout": CONNECT_TIMEOUT }),
        )
        .await;

        let traffic = Traffic::start(&client, &token, 3).await;

        let stopping = Instant::now();
        cluster.stop_server().expect("pg_ctl stop");
        let down_at = Instant::now();
        println!("postgres stopped in {:?}", down_at - stopping);

        // A fresh correct request while the server is down: 503 within the
        // pool's connect timeout (plus scheduling slack).
        let reply = first_attempt(&client, "alice", &token).await;
        assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
        assert!(
            reply.elapsed < Duration::from_secs(CONNECT_TIMEOUT + 3),
            "{reply:?}"
        );
        // A wrong one: 503, or 401 when the credential cache still holds the
        // user (its version read within the last 2 x credential_recheck_ms).
        let reply = first_attempt(&client, "alice", "not the token").await;
        assert!([401, 503].contains(&reply.status.code), "{reply:?}");
        sleep(Duration::from_millis(1500)).await;

        let up_at = Instant::now();
        cluster.start_server().expect("pg_ctl start");
        println!("postgres started again in {:?}", up_at.elapsed());
        let recovered = traffic
            .wait_for_success_after(up_at, Duration::from_secs(20))
            .await;
        let recovery = up_at.elapsed();
        let samples = traffic.finish().await;
        assert!(recovered, "authentication did not recover within 20 s");
        let (inside, slowest) = check_outage(
            &samples,
            down_at,
            up_at,
            Duration::from_secs(CONNECT_TIMEOUT + 3),
        );
        println!(
            "postgres stopped: {inside} requests inside the outage, all 503, slowest {slowest:?}; \
             all workers recovered within {recovery:?} of the restart"
        );

        assert_recovered(&client, &token, &used_before).await;
    });
    drop(cluster);
}

// ---------------------------------------------------------------------------
// MariaDB stops and starts again.

#[cfg(all(feature = "mysql", unix))]
#[test]
fn mariadb_server_stopping_mid_traffic_fails_closed_and_recovers() {
    mariadb_server_stopping_mid_traffic(0);
}

#[cfg(all(feature = "mysql", unix))]
#[test]
fn mariadb_server_stopping_with_leases_refuses_what_needs_the_server() {
    mariadb_server_stopping_mid_traffic(rocket_digest_auth::store::DEFAULT_MYSQL_NC_LEASE);
}

/// A private MariaDB (see `common/mariadb_server.rs`) stopped by its PID
/// under traffic, then started again on the same port and data.
#[cfg(all(feature = "mysql", unix))]
fn mariadb_server_stopping_mid_traffic(nc_lease: u32) {
    use common::mariadb_server::MariaDbServer;

    let mut server = match MariaDbServer::start() {
        Ok(server) => server,
        Err(e) => {
            common::require::MYSQL.skip(format!("cannot start a private MariaDB: {e}"));
            return;
        }
    };
    const CONNECT_TIMEOUT: u64 = 2;
    run(async {
        let (client, token, used_before) = launch_with_a_used_header_and(
            json!({ "url": server.url(), "connect_timeout": CONNECT_TIMEOUT }),
            json!({ "secret": SECRET, "nc_lease": nc_lease }),
        )
        .await;

        let traffic = Traffic::start(&client, &token, 3).await;

        let pid = server.pid();
        let stopping = Instant::now();
        server.stop_server().expect("stop mariadbd");
        let down_at = Instant::now();
        println!("mariadbd (PID {pid:?}) stopped in {:?}", down_at - stopping);

        // A fresh correct request while the server is down: 503 within the
        // pool's connect timeout (plus scheduling slack).
        let reply = first_attempt(&client, "alice", &token).await;
        assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
        assert!(
            reply.elapsed < Duration::from_secs(CONNECT_TIMEOUT + 3),
            "{reply:?}"
        );
        // A wrong one: 503, or 401 when the credential cache still holds the
        // user (its version read within the last 2 x credential_recheck_ms).
        let reply = first_attempt(&client, "alice", "not the token").await;
        assert!([401, 503].contains(&reply.status.code), "{reply:?}");
        sleep(Duration::from_millis(1500)).await;

        let up_at = Instant::now();
        server.start_server().expect("start mariadbd again");
        println!("mariadbd started again in {:?}", up_at.elapsed());
        let recovered = traffic
            .wait_for_success_after(up_at, Duration::from_secs(20))
            .await;
        let recovery = up_at.elapsed();
        let samples = traffic.finish().await;
        assert!(recovered, "authentication did not recover within 20 s");
        check_outage_under(
            "mariadbd stopped",
            nc_lease,
            &samples,
            (down_at, up_at),
            recovery,
        );

        assert_recovered(&client, &token, &used_before).await;
    });
    drop(server);
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
