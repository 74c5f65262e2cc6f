//! The Redis count store on a real Redis Cluster of three masters that each
//! test starts (`redis-server --cluster-enabled yes` x3, `redis-cli
//! --cluster create`) and stops: the shared store suite, and two instances
//! of a fleet with `cluster = true` in `[databases.digest_auth_counts]`.
//!
//! A claim's script touches the generation and the nonce's counts at once:
//! a cluster refuses that (CROSSSLOT) unless both live in one hash slot,
//! which the store's `{key_prefix}` hash tag gives.
//!
//! Needs `--features redis`, `redis-server` and `redis-cli`.
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;

use common::redis::{cli, unique_prefix, Fleet, PrivateCluster};
use rocket_digest_auth::store::suite::StoreUnderTest;
use rocket_digest_auth::store::{
    Claim, ClaimRequest, NonceCountStore, RedisOptions, RedisStore, StoreError,
};
use serde_json::json;

/// A store on a cluster of its own, which lives as long as the store.
struct OnCluster {
    store: RedisStore,
    _cluster: PrivateCluster,
}

#[rocket::async_trait]
impl NonceCountStore for OnCluster {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        self.store.claim(request).await
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.store.remove_expired(now).await
    }

    fn nonce_generation(&self) -> Option<[u8; 4]> {
        self.store.nonce_generation()
    }
}

async fn connect_with_prefix(cluster: &PrivateCluster, prefix: &str) -> RedisStore {
    let options = RedisOptions::default()
        .with_cluster(true)
        .with_key_prefix(prefix);
    RedisStore::connect(&cluster.url(), options)
        .await
        .expect("a store on the cluster")
}

async fn make() -> Option<StoreUnderTest> {
    let cluster = PrivateCluster::start()?;
    let store = connect_with_prefix(&cluster, &unique_prefix("cluster-suite")).await;
    Some(Arc::new(OnCluster {
        store,
        _cluster: cluster,
    }))
}

rocket_digest_auth::nonce_count_store_suite!(make);

/// The three masters each serve a third of the slots, and the store's keys
/// all land in one of them.
#[test]
fn the_cluster_has_three_masters_and_a_stores_keys_share_one_slot() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let masters = cli(cluster.nodes[0].port, &["cluster", "nodes"])
        .lines()
        .filter(|l| l.contains("master"))
        .count();
    assert_eq!(masters, 3);
    let prefix = unique_prefix("cluster-slot");
    // One runtime for the connection and its use: the connection's task
    // lives in it.
    let claimed = common::block_on(async {
        let store = connect_with_prefix(&cluster, &prefix).await;
        let expires_at = chrono::Utc::now().timestamp() + 60;
        store
            .claim(ClaimRequest::new("a-nonce", "c", 1, expires_at, 64))
            .await
    });
    assert_eq!(claimed.unwrap(), Claim::Accepted);
    let slot = |key: &str| cli(cluster.nodes[0].port, &["cluster", "keyslot", key]);
    let generation = slot(&format!("{{{prefix}}}:generation"));
    assert_eq!(slot(&format!("{{{prefix}}}:n:a-nonce")), generation);
    // Both keys exist, on the one node that owns the slot.
    let keys: usize = cluster
        .nodes
        .iter()
        .map(|n| {
            cli(n.port, &["cluster", "countkeysinslot", &generation])
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(keys, 2);
}

#[test]
fn two_instances_on_the_cluster_accept_each_count_once() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let counts = json!({
        "url": cluster.url(),
        "cluster": true,
        "key_prefix": unique_prefix("cluster-fleet"),
    });
    let fleet = Fleet::start(2, counts, json!({}));
    let (user, token) = fleet.user("cluster");
    let mut client = fleet.client(0, &user, &token);
    let headers: Vec<String> = (0..8).map(|_| client.authorization("GET", "/me")).collect();
    for (i, header) in headers.iter().enumerate() {
        Fleet::assert_ok(&fleet.get(i, Some(header)), i % 2, &user);
        Fleet::assert_replay_refused(&fleet.get(i + 1, Some(header)), (i + 1) % 2);
    }
}
