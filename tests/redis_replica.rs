//! What a failover to a replica that lags behind its master does to the
//! Redis count store. With `replicas = 1` a claim is answered Accepted only
//! once the replica has it, so the failover accepts none of those again, and
//! a claim the replica does not acknowledge fails (503). With the default,
//! `replicas = 0`, the counts the replica received stay refused, the ones it
//! never received can be accepted once more: SECURITY.md states this limit.
//!
//! Needs `--features redis`, `redis-server` and `redis-cli`; the master and
//! the replica are private servers this test starts.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use common::redis::{cli, Fleet, PrivateCluster, PrivateRedis};
use rocket_digest_auth::protocol::NonceKey;
use rocket_digest_auth::store::{
    Claim, ClaimRequest, NonceCountStore, RedisOptions, RedisStore, StoreError, DEFAULT_NC_WINDOW,
};

const SECRET: &[u8] = b"redis replica test: a secret of 32+ bytes";

async fn try_claim(store: &RedisStore, nonce: &str, nc: u32) -> Result<Claim, StoreError> {
    let expires_at = chrono::Utc::now().timestamp() + 300;
    let request = ClaimRequest::new(nonce, "c", nc, expires_at, DEFAULT_NC_WINDOW);
    store.claim(request).await
}

async fn claim(store: &RedisStore, nonce: &str, nc: u32) -> Claim {
    try_claim(store, nonce, nc).await.expect("a claim")
}

/// A private master and a private replica following it.
fn master_and_replica() -> Option<(PrivateRedis, PrivateRedis)> {
    let master = PrivateRedis::start(&[])?;
    let master_port = master.port.to_string();
    let replica = PrivateRedis::start(&["--replicaof", "127.0.0.1", &master_port])?;
    wait_in_sync(&master, &replica);
    Some((master, replica))
}

/// Waits until `replica` has replicated everything `master` has.
fn wait_in_sync(master: &PrivateRedis, replica: &PrivateRedis) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = cli(replica.port, &["info", "replication"]);
        let offset = |info: &str, field: &str| -> Option<u64> {
            info.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().parse().ok())
        };
        let master_info = cli(master.port, &["info", "replication"]);
        let up = info.contains("master_link_status:up");
        let (theirs, ours) = (
            offset(&master_info, "master_repl_offset:"),
            offset(&info, "slave_repl_offset:"),
        );
        if up && theirs.is_some() && theirs == ours {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never caught up:\n{info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[rocket::async_test]
async fn a_failover_to_a_lagging_replica_reopens_only_the_counts_it_missed() {
    let Some(master) = PrivateRedis::start(&[]) else {
        return;
    };
    let master_port = master.port.to_string();
    let Some(replica) = PrivateRedis::start(&["--replicaof", "127.0.0.1", &master_port]) else {
        return;
    };
    let on_master = RedisStore::connect(&master.url(), RedisOptions::default())
        .await
        .expect("a store on the master");
    let key = NonceKey::new(SECRET, "replica", None);
    let generation = on_master.nonce_generation().expect("a generation");
    let nonce = key.mint_in(chrono::Utc::now().timestamp(), generation);
    for nc in 1..=3 {
        assert_eq!(claim(&on_master, &nonce, nc).await, Claim::Accepted);
    }
    wait_in_sync(&master, &replica);
    // The replica stops following: what the master accepts from now on is
    // what a lagging replica has not received when it is promoted.
    assert_eq!(cli(replica.port, &["replicaof", "no", "one"]), "OK");
    for nc in 4..=6 {
        assert_eq!(claim(&on_master, &nonce, nc).await, Claim::Accepted);
    }

    // The fleet now reaches the promoted replica.
    let on_replica = RedisStore::connect(&replica.url(), RedisOptions::default())
        .await
        .expect("a store on the promoted replica");
    // Same data generation: nonces minted before the failover stay valid.
    assert_eq!(on_replica.nonce_generation(), Some(generation));
    for nc in 1..=3 {
        assert_eq!(
            claim(&on_replica, &nonce, nc).await,
            Claim::Replayed,
            "replicated count {nc}"
        );
    }
    // The counts it never received are accepted once more, and once only.
    for nc in 4..=6 {
        assert_eq!(
            claim(&on_replica, &nonce, nc).await,
            Claim::Accepted,
            "count {nc}, accepted by the master after the replica's last sync"
        );
        assert_eq!(claim(&on_replica, &nonce, nc).await, Claim::Replayed);
    }
}

#[rocket::async_test]
async fn with_replicas_1_a_failover_accepts_no_count_it_answered_accepted_again() {
    let Some((mut master, replica)) = master_and_replica() else {
        return;
    };
    let options = RedisOptions::default().with_replicas(1, 300);
    let on_master = RedisStore::connect(&master.url(), options.clone())
        .await
        .expect("a store on the master");
    let key = NonceKey::new(SECRET, "replica", None);
    let generation = on_master.nonce_generation().expect("a generation");
    let nonce = key.mint_in(chrono::Utc::now().timestamp(), generation);
    let mut answered = Vec::new();
    for nc in 1..=3 {
        answered.push((nc, try_claim(&on_master, &nonce, nc).await));
    }
    // The replica stops following: from now on it lags behind the master.
    assert_eq!(cli(replica.port, &["replicaof", "no", "one"]), "OK");
    for nc in 4..=6 {
        answered.push((nc, try_claim(&on_master, &nonce, nc).await));
    }
    // The master goes; the fleet reaches the promoted replica.
    master.stop();
    let on_replica = RedisStore::connect(&replica.url(), options)
        .await
        .expect("a store on the promoted replica");
    assert_eq!(on_replica.nonce_generation(), Some(generation));
    let mut replays_accepted = Vec::new();
    for (nc, answer) in &answered {
        if matches!(answer, Ok(Claim::Accepted))
            && claim(&on_replica, &nonce, *nc).await == Claim::Accepted
        {
            replays_accepted.push(*nc);
        }
    }
    assert_eq!(
        replays_accepted,
        Vec::<u32>::new(),
        "answers on the master: {answered:?}"
    );
    // The replica followed for the first three: Accepted.
    for (nc, answer) in &answered[..3] {
        assert!(
            matches!(answer, Ok(Claim::Accepted)),
            "count {nc}: {answer:?}"
        );
    }
    // The replica had stopped following: an error (503 at the fairing).
    for (nc, answer) in &answered[3..] {
        let message = answer
            .as_ref()
            .map_err(ToString::to_string)
            .expect_err("not acknowledged");
        assert!(message.contains("replicas"), "count {nc}: {message}");
    }
}

#[test]
fn with_replicas_1_and_the_replica_stopped_a_right_answer_gets_503() {
    let Some((master, mut replica)) = master_and_replica() else {
        return;
    };
    let mut counts = Fleet::counts_at(&master.url(), "replicas");
    counts["replicas"] = 1.into();
    counts["replica_timeout"] = 300.into();
    let fleet = Fleet::start(1, counts, serde_json::json!({ "store_timeout": 2 }));
    let (user, token) = fleet.user("replicas");
    let mut client = fleet.client(0, &user, &token);
    let first = client.authorization("GET", "/me");
    Fleet::assert_ok(&fleet.get(0, Some(&first)), 0, &user);

    replica.stop();
    let during = client.authorization("GET", "/me");
    let reply = fleet.get(0, Some(&during));
    assert_eq!(reply.status, 503, "{reply:?}");
    // Its count stays spent on the master: the same header again is a
    // replay; the client's next count goes through once a replica is back.
    Fleet::assert_replay_refused(&fleet.get(0, Some(&during)), 0);
    Fleet::assert_replay_refused(&fleet.get(0, Some(&first)), 0);
}

#[rocket::async_test]
async fn with_replicas_1_a_cluster_master_without_replicas_fails_the_claim() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let options = RedisOptions::default()
        .with_cluster(true)
        .with_replicas(1, 200);
    let store = RedisStore::connect(&cluster.url(), options)
        .await
        .expect("a store on the cluster");
    let key = NonceKey::new(SECRET, "replica", None);
    let generation = store.nonce_generation().expect("a generation");
    let nonce = key.mint_in(chrono::Utc::now().timestamp(), generation);
    // `WAIT` went to the master owning the slot, which has no replica.
    let message = try_claim(&store, &nonce, 1)
        .await
        .map_err(|e| e.to_string())
        .expect_err("no replica acknowledged it");
    assert!(message.contains("reached 0 of the 1 replicas"), "{message}");
}
