//! What a failover to a replica that lags behind its master does to the
//! Redis count store: the counts the replica received stay refused, the
//! ones it never received can be accepted once more. SECURITY.md states
//! this limit.
//!
//! Needs `--features redis`, `redis-server` and `redis-cli`; the master and
//! the replica are private servers this test starts.
#![cfg(feature = "redis")]

mod common;

use std::time::{Duration, Instant};

use common::redis::{cli, PrivateRedis};
use rocket_digest_auth::protocol::NonceKey;
use rocket_digest_auth::store::{
    Claim, ClaimRequest, NonceCountStore, RedisOptions, RedisStore, DEFAULT_NC_WINDOW,
};

const SECRET: &[u8] = b"redis replica test: a secret of 32+ bytes";

async fn claim(store: &RedisStore, nonce: &str, nc: u32) -> Claim {
    let expires_at = chrono::Utc::now().timestamp() + 300;
    let request = ClaimRequest::new(nonce, "c", nc, expires_at, DEFAULT_NC_WINDOW);
    store.claim(request).await.expect("a claim")
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
