//! The app under faults: a Rocket on a database with alice's token, the
//! requests of a Digest session, background traffic that records every
//! outcome, and the checks every outage test makes (only 200 or 503, no
//! request let through inside the outage, recovery after it). Used by
//! `tests/faults.rs` and `tests/faults_servers.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::routes;
use rocket::tokio::task::JoinHandle;
use rocket::tokio::time::sleep;
use rocket_digest_auth::protocol::{Algorithm, DigestClient};
use rocket_digest_auth::DigestAuth;
use serde_json::{json, Value};

use super::local::{issue, Reply};

pub const SECRET: &str = "faults test secret: 0123456789abcdef0123456789abcdef";

/// Runs a test body on a multi-threaded runtime, so that traffic tasks and
/// the test's own requests really run side by side.
pub fn run<F: Future>(f: F) -> F::Output {
    super::block_on_multi_thread(4, f)
}

/// Rocket's log is off; `FAULTS_LOG=normal` shows it (e.g. which store
/// error each 503 came from).
pub fn figment(database: Value, digest_auth: Value) -> Figment {
    Figment::from(rocket::Config::default())
        .merge((
            "log_level",
            std::env::var("FAULTS_LOG").unwrap_or("off".into()),
        ))
        .merge(("databases.digest_auth", database))
        .merge(("digest_auth", digest_auth))
}

pub async fn launch(figment: Figment, auth: DigestAuth) -> Client {
    let rocket = rocket::custom(figment)
        .attach(auth)
        .mount("/", routes![super::me]);
    Client::untracked(rocket).await.expect("the rocket ignites")
}

/// `GET /me`; any challenge in the reply must be a valid Digest one.
pub async fn get(client: &Client, authorization: Option<&str>) -> Reply {
    let reply = super::local::get(client, "/me", authorization).await;
    reply.headers.challenges();
    reply
}

/// A client session for `username` on a fresh challenge.
pub async fn session(client: &Client, username: &str, secret: &str) -> DigestClient {
    super::local::session(client, username, secret, Algorithm::Sha256).await
}

/// `GET /me` answered by `username` with `secret` on a fresh challenge.
pub async fn first_attempt(client: &Client, username: &str, secret: &str) -> Reply {
    let mut digest = session(client, username, secret).await;
    get(client, Some(&digest.authorization("GET", "/me"))).await
}

/// The app on `database` with alice's token, and a header it accepted (to
/// be replayed after a fault).
pub async fn launch_with_a_used_header(database: Value) -> (Arc<Client>, String, String) {
    launch_with_a_used_header_and(database, json!({ "secret": SECRET })).await
}

pub async fn launch_with_a_used_header_and(
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
pub async fn assert_recovered(client: &Arc<Client>, token: &str, used_before: &str) {
    assert_all_succeed(client, token, 32).await;
    let reply = get(client, Some(used_before)).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    assert!(
        reply.headers.is_stale(),
        "a replay gets stale=true: {reply:?}"
    );
}

/// `n` concurrent correct requests, each on its own nonce: all must succeed.
pub async fn assert_all_succeed(client: &Arc<Client>, secret: &str, n: usize) {
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
pub struct Sample {
    started: Instant,
    ended: Instant,
    status: u16,
}

pub struct Traffic {
    stop: Arc<AtomicBool>,
    samples: Vec<Arc<Mutex<Vec<Sample>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// `workers` clients, each on its own nonce, sending correct requests;
    /// returns once each has succeeded.
    pub async fn start(client: &Arc<Client>, secret: &str, workers: usize) -> Traffic {
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
    pub async fn wait_for_success_after(&self, since: Instant, limit: Duration) -> bool {
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

    pub async fn finish(self) -> Vec<Vec<Sample>> {
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
pub fn check_outage(
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
pub fn check_outage_under(
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
