//! Claims per second and latency of the count store's claim script
//! (`src/store/redis/claim.lua`) through the two ways to reach Redis: the
//! `redis` crate's multiplexed `ConnectionManager` (one connection, the
//! claims of every task pipelined on it, what `RedisStore` uses) and a
//! `deadpool-redis` pool (a connection per claim in flight, what
//! `rocket_db_pools`' `deadpool_redis` gives), in alternating rounds of one
//! run.
//!
//! ```text
//! redis-connections URL [CLIENTS] [SECONDS] [ROUNDS]
//! ```
//!
//! Prints one `RESULT kind=.. claims_per_s=.. p50_ms=.. p99_ms=..` line per
//! kind, over all its rounds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_redis::{Config, Pool, Runtime};
use redis::aio::ConnectionManager;

const CLAIM: &str = include_str!("../../../src/store/redis/claim.lua");
const GENERATION: &str = "0000beef";

#[derive(Clone)]
enum Via {
    Multiplexed(ConnectionManager),
    Pool(Pool),
}

impl Via {
    fn kind(&self) -> &'static str {
        match self {
            Via::Multiplexed(_) => "multiplexed",
            Via::Pool(_) => "deadpool",
        }
    }

    async fn query(&self, cmd: &redis::Cmd) -> redis::RedisResult<(i64, String)> {
        match self {
            Via::Multiplexed(c) => cmd.query_async(&mut c.clone()).await,
            Via::Pool(p) => {
                let mut c = p.get().await.map_err(|e| {
                    redis::RedisError::from((redis::ErrorKind::IoError, "pool", e.to_string()))
                })?;
                cmd.query_async(&mut c).await
            }
        }
    }
}

/// One client: claims rising counts on a nonce of its own until `stop`.
async fn client(via: Via, sha: String, id: String, stop: Arc<AtomicBool>) -> Vec<u32> {
    let expires_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 300;
    let key = format!("{{bench}}:n:{id}");
    let mut latencies = Vec::new();
    let mut nc = 0u32;
    while !stop.load(Ordering::Relaxed) {
        nc += 1;
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&sha)
            .arg(2)
            .arg("{bench}:generation")
            .arg(&key)
            .arg(GENERATION)
            .arg(GENERATION)
            .arg(format!("{nc}:c"))
            .arg(nc)
            .arg(256)
            .arg(512)
            .arg(expires_at)
            .arg(60);
        let started = Instant::now();
        let (code, _) = via.query(&cmd).await.expect("a claim");
        latencies.push(started.elapsed().as_micros() as u32);
        assert_eq!(code, 1, "claim {nc} of {id} refused");
    }
    latencies
}

async fn round(via: &Via, sha: &str, clients: usize, seconds: u64, round: usize) -> Vec<u32> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let id = format!("{}-{round}-{i}", via.kind());
            tokio::spawn(client(via.clone(), sha.to_owned(), id, stop.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a client task"));
    }
    all
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .expect("usage: redis-connections URL [CLIENTS] [SECONDS] [ROUNDS]");
    let clients: usize = args.get(1).map_or(16, |a| a.parse().expect("CLIENTS"));
    let seconds: u64 = args.get(2).map_or(5, |a| a.parse().expect("SECONDS"));
    let rounds: usize = args.get(3).map_or(3, |a| a.parse().expect("ROUNDS"));

    let client = redis::Client::open(url.as_str()).expect("a Redis URL");
    let manager = ConnectionManager::new(client).await.expect("a connection");
    // As many connections as clients: the pool's best case.
    let pool = Config::from_url(url.as_str())
        .builder()
        .expect("a pool config")
        .max_size(clients)
        .runtime(Runtime::Tokio1)
        .build()
        .expect("a pool");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(CLAIM)
        .query_async(&mut manager.clone())
        .await
        .expect("SCRIPT LOAD");
    let vias = [Via::Multiplexed(manager), Via::Pool(pool)];
    // Warm-up: the pool opens its connections, both paths run once.
    for via in &vias {
        round(via, &sha, clients, 1, 0).await;
    }
    let mut latencies = [Vec::new(), Vec::new()];
    for r in 1..=rounds {
        // Alternating order, so neither kind always runs first.
        let order: [usize; 2] = if r % 2 == 1 { [0, 1] } else { [1, 0] };
        for i in order {
            let l = round(&vias[i], &sha, clients, seconds, r).await;
            eprintln!(
                "round {r} {}: {:.0} claims/s",
                vias[i].kind(),
                l.len() as f64 / seconds as f64
            );
            latencies[i].extend(l);
        }
    }
    for (via, mut l) in vias.iter().zip(latencies) {
        l.sort_unstable();
        println!(
            "RESULT kind={} clients={clients} claims_per_s={:.0} p50_ms={:.3} p99_ms={:.3}",
            via.kind(),
            l.len() as f64 / (seconds * rounds as u64) as f64,
            percentile(&l, 50.0),
            percentile(&l, 99.0)
        );
    }
}
