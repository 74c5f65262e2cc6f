//! A fleet on Redis: two and three instances (real TCP ports, one SQLite
//! file of credentials, one `secret`) sharing nonce counts in one Redis
//! (`counts = "redis"`).
//!
//! One client's requests alternate between instances on one nonce; the
//! same header sent to every instance at once wins once; a `FLUSHALL` and an
//! empty restart of Redis in the middle of traffic accept no replay and
//! cost each client one `stale=true`; a stopped Redis answers 503 and the
//! fleet recovers when it is back.
//!
//! Needs `--features redis`, `redis-server` and the server of
//! `DIGEST_AUTH_TEST_REDIS_URL` (see `tests/common/redis.rs`); the flush,
//! restart and stop happen on private servers these tests start.
#![cfg(feature = "redis")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::redis::{cli, Fleet, PrivateRedis, DURABLE};
use rocket_digest_auth::protocol::DigestClient;
use serde_json::json;

/// A fleet of `n` on the shared test Redis; `None` when it is not there.
fn shared_fleet(n: usize, tag: &str) -> Option<Fleet> {
    let url = common::redis::shared_url();
    // Skips (or fails, when required) if the shared Redis is unreachable.
    common::block_on(common::redis::shared_store(tag))?;
    Some(Fleet::start(n, Fleet::counts_at(&url, tag), json!({})))
}

/// Requests of one client going round-robin over every instance, on one
/// nonce: each accepted once, refused by every instance afterwards.
fn alternating_requests_on_one_nonce(fleet: &Fleet) {
    let n = fleet.instances.len();
    let (user, token) = fleet.user("alternating");
    let mut client = fleet.client(0, &user, &token);
    let headers: Vec<String> = (0..4 * n)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    for (i, header) in headers.iter().enumerate() {
        Fleet::assert_ok(&fleet.get(i, Some(header)), i % n, &user);
        for other in (1..n).map(|k| (i + k) % n) {
            Fleet::assert_replay_refused(&fleet.get(other, Some(header)), other);
        }
    }
    for header in &headers {
        for i in 0..n {
            Fleet::assert_replay_refused(&fleet.get(i, Some(header)), i);
        }
    }
    // Counts overtaking each other behind the balancer: each accepted once.
    let late: Vec<String> = (0..n + 1)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    for (k, header) in late.iter().enumerate().rev() {
        Fleet::assert_ok(&fleet.get(k, Some(header)), k % n, &user);
    }
    Fleet::assert_replay_refused(&fleet.get(1, Some(&late[0])), 1);
}

#[test]
fn one_clients_requests_alternate_over_two_instances_on_one_nonce() {
    let Some(fleet) = shared_fleet(2, "fleet-two") else {
        return;
    };
    alternating_requests_on_one_nonce(&fleet);
}

#[test]
fn one_clients_requests_alternate_over_three_instances_on_one_nonce() {
    let Some(fleet) = shared_fleet(3, "fleet-three") else {
        return;
    };
    alternating_requests_on_one_nonce(&fleet);
}

/// Every header sent to every instance at the same moment, all headers in
/// flight together: exactly one 200 per header in total.
pub fn the_same_header_to_every_instance_at_once(fleet: &Fleet) {
    let n = fleet.instances.len();
    let (user, token) = fleet.user("race");
    let mut client = fleet.client(0, &user, &token);
    let headers: Vec<String> = (0..24)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    let statuses: Vec<Vec<u16>> = thread::scope(|s| {
        let pending: Vec<Vec<_>> = headers
            .iter()
            .map(|h| {
                (0..n)
                    .map(|i| s.spawn(move || fleet.get(i, Some(h)).status))
                    .collect()
            })
            .collect();
        pending
            .into_iter()
            .map(|p| p.into_iter().map(|t| t.join().unwrap()).collect())
            .collect()
    });
    for (i, answers) in statuses.iter().enumerate() {
        let wins = answers.iter().filter(|&&s| s == 200).count();
        let refused = answers.iter().filter(|&&s| s == 401).count();
        assert_eq!((wins, refused), (1, n - 1), "header {i}: {answers:?}");
    }
}

#[test]
fn the_same_header_sent_to_three_instances_at_once_wins_once() {
    let Some(fleet) = shared_fleet(3, "fleet-race") else {
        return;
    };
    the_same_header_to_every_instance_at_once(&fleet);
}

// ------------------------------------------------ data loss mid-traffic

/// What one client of [`traffic_through`] saw.
#[derive(Debug, Default)]
struct ClientLog {
    ok_before: u64,
    ok_after: u64,
    stale: u64,
    unavailable: u64,
    other: Vec<String>,
}

/// Four clients, each going round-robin over the fleet on its nonce, and a
/// replayer sending accepted headers again to every instance, while
/// `event` happens after a second of traffic; traffic goes on until the
/// clients have had `after` of 200s each since.
fn traffic_through(fleet: &Fleet, event: impl FnOnce(), after: u64) -> (Vec<ClientLog>, u64) {
    let (user, token) = fleet.user("traffic");
    let accepted = Mutex::new(Vec::<String>::new());
    let (happened, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let replays_accepted = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let clients = 4;
    thread::scope(|s| {
        let run_client = |id: usize| {
            let mut log = ClientLog::default();
            let mut client = fleet.client(id, &user, &token);
            let mut i = id;
            let mut counted = false;
            while !stop.load(Ordering::Relaxed) {
                let header = client.authorization("GET", "/me");
                i += 1;
                let after_event = happened.load(Ordering::SeqCst);
                let reply = fleet.get(i, Some(&header));
                match reply.status {
                    200 if after_event => log.ok_after += 1,
                    200 => log.ok_before += 1,
                    401 if reply.headers.is_stale() => {
                        log.stale += 1;
                        client = DigestClient::new(&user, &token, reply.headers.challenge());
                    }
                    503 => {
                        log.unavailable += 1;
                        thread::sleep(Duration::from_millis(50));
                    }
                    _ => log.other.push(format!("{reply:?}")),
                }
                if reply.status == 200 {
                    accepted.lock().unwrap().push(header);
                }
                if log.ok_after >= after && !counted {
                    counted = true;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }
            log
        };
        let logs: Vec<_> = (0..clients)
            .map(|id| s.spawn(move || run_client(id)))
            .collect();
        s.spawn(|| {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let header = {
                    let accepted = accepted.lock().unwrap();
                    accepted.get(k % accepted.len().max(1)).cloned()
                };
                k += 7;
                match header {
                    Some(h) if fleet.get(k, Some(&h)).status == 200 => {
                        replays_accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        thread::sleep(Duration::from_secs(1));
        event();
        happened.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::SeqCst) < clients as u64 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
        let logs = logs.into_iter().map(|t| t.join().unwrap()).collect();
        // Every header accepted, before and after, refused by every instance.
        for header in accepted.lock().unwrap().iter() {
            for i in 0..fleet.instances.len() {
                if fleet.get(i, Some(header)).status == 200 {
                    replays_accepted.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        (logs, replays_accepted.load(Ordering::SeqCst))
    })
}

/// No replay accepted, and each client went on after exactly one
/// `stale=true` (its nonce's generation was gone).
fn assert_survived(logs: &[ClientLog], replays_accepted: u64) {
    assert_eq!(replays_accepted, 0, "replays accepted: {logs:?}");
    for (id, log) in logs.iter().enumerate() {
        assert!(log.other.is_empty(), "client {id}: {:?}", log.other);
        assert!(log.ok_before > 0, "client {id}: {log:?}");
        assert!(log.ok_after >= 20, "client {id} did not go on: {log:?}");
        assert_eq!(log.stale, 1, "client {id}: {log:?}");
    }
}

#[test]
fn a_flushall_mid_traffic_accepts_no_replay_and_costs_each_client_one_stale() {
    let Some(redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let fleet = Fleet::start(2, Fleet::counts_at(&redis.url(), "flush"), json!({}));
    let flush = || assert_eq!(cli(redis.port, &["flushall"]), "OK");
    let (logs, replays) = traffic_through(&fleet, flush, 20);
    assert_survived(&logs, replays);
    assert!(logs.iter().all(|l| l.unavailable == 0), "{logs:?}");
}

#[test]
fn an_empty_redis_restart_mid_traffic_accepts_no_replay_and_costs_each_client_one_stale() {
    let Some(mut redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let fleet = Fleet::start(
        2,
        Fleet::counts_at(&redis.url(), "restart"),
        json!({ "store_timeout": 2 }),
    );
    let restart = || {
        redis.stop();
        thread::sleep(Duration::from_millis(500));
        redis.restart();
    };
    let (logs, replays) = traffic_through(&fleet, restart, 20);
    assert_survived(&logs, replays);
}

#[test]
fn a_stopped_redis_answers_503_and_the_fleet_recovers_when_it_is_back() {
    // Kept on disk: back, it has the counts it had.
    let Some(mut redis) = PrivateRedis::start(DURABLE) else {
        return;
    };
    let fleet = Fleet::start(
        2,
        Fleet::counts_at(&redis.url(), "outage"),
        json!({ "store_timeout": 2 }),
    );
    let (user, token) = fleet.user("outage");
    let mut client = fleet.client(0, &user, &token);
    let used = client.authorization("GET", "/me");
    Fleet::assert_ok(&fleet.get(1, Some(&used)), 1, &user);

    redis.stop();
    // Fails closed on every instance, in bounded time: neither a right
    // answer nor a replay gets through.
    let during = client.authorization("GET", "/me");
    for i in 0..2 {
        let started = Instant::now();
        let reply = fleet.get(i, Some(&during));
        assert_eq!(reply.status, 503, "instance {i}: {reply:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            fleet.get(i, Some(&used)).status,
            503,
            "a replay, instance {i}"
        );
        // A client without credentials still gets its challenge.
        assert_eq!(fleet.get(i, None).status, 401);
    }

    redis.restart();
    // Back with its data: the answer refused with 503 was not used up, the
    // used one stays used, on both instances, without a restart of theirs
    // (each reconnects by itself, within its backoff).
    let restarted = Instant::now();
    Fleet::assert_ok(&until_not_503(&fleet, 0, &during), 0, &user);
    for i in 0..2 {
        Fleet::assert_replay_refused(&until_not_503(&fleet, i, &used), i);
        Fleet::assert_replay_refused(&fleet.get(i, Some(&during)), i);
        let next = client.authorization("GET", "/me");
        Fleet::assert_ok(&fleet.get(i, Some(&next)), i, &user);
    }
    eprintln!(
        "both instances answered again {:?} after Redis was back",
        restarted.elapsed()
    );
}

/// Sends `header` to instance `i` until the answer is not 503 (at most 20 s).
fn until_not_503(fleet: &Fleet, i: usize, header: &str) -> common::http::Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = fleet.get(i, Some(header));
        if reply.status != 503 || Instant::now() > deadline {
            return reply;
        }
        thread::sleep(Duration::from_millis(100));
    }
}
