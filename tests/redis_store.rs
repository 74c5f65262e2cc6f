//! The Redis count store: the shared suite on the shared test server (keys
//! under a prefix of each store's own), and, on private servers these tests
//! start, what a loss of Redis's data, an outage, a full server and an
//! evicting server do.
//!
//! Needs `--features redis`, `redis-server` and the server of
//! `DIGEST_AUTH_TEST_REDIS_URL` (see `tests/common/redis.rs`).
#![cfg(feature = "redis")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::{cli, PrivateRedis};
use rocket_digest_auth::protocol::NonceKey;
use rocket_digest_auth::store::counts::max_entries_per_nonce;
use rocket_digest_auth::store::suite::StoreUnderTest;
use rocket_digest_auth::store::{
    Claim, ClaimRequest, NonceCountStore, RedisOptions, RedisStore, DEFAULT_NC_WINDOW,
};

async fn make() -> Option<StoreUnderTest> {
    let store = common::redis::shared_store("suite").await?;
    Some(Arc::new(store))
}

rocket_digest_auth::nonce_count_store_suite!(make);

const SECRET: &[u8] = b"redis store tests: a secret of 32+ bytes";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A nonce as the verifier mints it for `store`: in its generation.
fn mint(store: &RedisStore) -> String {
    let key = NonceKey::new(SECRET, "redis", None);
    key.mint_in(now(), store.nonce_generation().expect("a generation"))
}

async fn claim(store: &RedisStore, nonce: &str, nc: u32) -> Result<Claim, String> {
    let request = ClaimRequest::new(nonce, "c", nc, now() + 300, DEFAULT_NC_WINDOW);
    store.claim(request).await.map_err(|e| e.to_string())
}

async fn connect(redis: &PrivateRedis) -> RedisStore {
    RedisStore::connect(&redis.url(), RedisOptions::default())
        .await
        .expect("a store on the private server")
}

/// Claims (c, 1..=3) on `nonce`, all accepted.
async fn spend(store: &RedisStore, nonce: &str) {
    for nc in 1..=3 {
        assert_eq!(
            claim(store, nonce, nc).await,
            Ok(Claim::Accepted),
            "nc {nc}"
        );
    }
}

/// After the data is gone, a request made before is refused (replayed or
/// not), in every instance, and a nonce minted after is accepted.
async fn old_nonces_refused_new_accepted(
    a: &RedisStore,
    b: &RedisStore,
    spent: &str,
    unused: &str,
) {
    for nc in 1..=4 {
        assert_eq!(
            claim(a, spent, nc).await,
            Ok(Claim::Replayed),
            "replay nc {nc}"
        );
        assert_eq!(
            claim(b, spent, nc).await,
            Ok(Claim::Replayed),
            "replay nc {nc}"
        );
    }
    assert_eq!(claim(b, unused, 1).await, Ok(Claim::Replayed));
    // Both learnt the new generation with that answer: their next nonces work.
    assert_eq!(a.nonce_generation(), b.nonce_generation());
    for store in [a, b] {
        let fresh = mint(store);
        assert_eq!(claim(store, &fresh, 1).await, Ok(Claim::Accepted));
        assert_eq!(claim(store, &fresh, 1).await, Ok(Claim::Replayed));
    }
}

#[rocket::async_test]
async fn a_flush_makes_every_old_nonce_stale() {
    let Some(redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let (a, b) = (connect(&redis).await, connect(&redis).await);
    assert_eq!(a.nonce_generation(), b.nonce_generation());
    let before = a.nonce_generation();
    let (spent, unused) = (mint(&a), mint(&b));
    spend(&a, &spent).await;
    assert_eq!(cli(redis.port, &["flushall"]), "OK");
    old_nonces_refused_new_accepted(&a, &b, &spent, &unused).await;
    assert_ne!(a.nonce_generation(), before);
}

#[rocket::async_test]
async fn a_restart_empty_makes_every_old_nonce_stale_and_an_outage_fails_closed() {
    let Some(mut redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let (a, b) = (connect(&redis).await, connect(&redis).await);
    let before = a.nonce_generation();
    let (spent, unused) = (mint(&a), mint(&b));
    spend(&a, &spent).await;
    redis.stop();
    // Down: every claim is an error (the verifier answers 503), none accepted.
    for nc in 1..=4 {
        let answer = rocket::tokio::time::timeout(Duration::from_secs(10), claim(&a, &spent, nc))
            .await
            .unwrap_or(Err("timed out".into()));
        assert!(answer.is_err(), "a claim while Redis is down: {answer:?}");
    }
    redis.restart();
    // Back, empty: the connections come back by themselves.
    let mut answer = Err(String::new());
    for _ in 0..100 {
        answer = claim(&a, &spent, 1).await;
        if answer.is_ok() {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, Ok(Claim::Replayed), "the replay after the restart");
    old_nonces_refused_new_accepted(&a, &b, &spent, &unused).await;
    assert_ne!(a.nonce_generation(), before);
}

#[rocket::async_test]
async fn a_full_server_fails_claims_and_recovers() {
    let Some(redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let store = connect(&redis).await;
    let nonce = mint(&store);
    assert_eq!(claim(&store, &nonce, 1).await, Ok(Claim::Accepted));
    // Below what it already uses: every write is refused (noeviction).
    assert_eq!(cli(redis.port, &["config", "set", "maxmemory", "1"]), "OK");
    let full = claim(&store, &nonce, 2).await;
    assert!(full.as_ref().is_err_and(|e| e.contains("OOM")), "{full:?}");
    assert_eq!(cli(redis.port, &["config", "set", "maxmemory", "0"]), "OK");
    assert_eq!(claim(&store, &nonce, 2).await, Ok(Claim::Accepted));
    assert_eq!(claim(&store, &nonce, 1).await, Ok(Claim::Replayed));
}

#[rocket::async_test]
async fn an_evicting_server_is_refused_naming_the_setting() {
    let Some(redis) = PrivateRedis::start(&["--maxmemory-policy", "allkeys-lru"]) else {
        return;
    };
    let err = RedisStore::connect(&redis.url(), RedisOptions::default())
        .await
        .expect_err("an evicting server is refused");
    let message = err.to_string();
    assert!(message.contains("maxmemory-policy"), "{message}");
    assert!(message.contains("allkeys-lru"), "{message}");
    assert_eq!(
        cli(
            redis.port,
            &["config", "set", "maxmemory-policy", "noeviction"]
        ),
        "OK"
    );
    assert!(RedisStore::connect(&redis.url(), RedisOptions::default())
        .await
        .is_ok());
}

#[rocket::async_test]
async fn a_nonce_keeps_at_most_the_bound_and_expires_with_its_margin() {
    let Some(redis) = PrivateRedis::start(&[]) else {
        return;
    };
    let store = connect(&redis).await;
    let nonce = mint(&store);
    let window = 64;
    let expires_at = now() + 30;
    // Rising counts far past the window, with two cnonces each.
    for nc in 1..=10 * window {
        for cnonce in ["a", "b"] {
            let request = ClaimRequest::new(&nonce, cnonce, nc, expires_at, window);
            assert_eq!(store.claim(request).await.unwrap(), Claim::Accepted);
        }
    }
    let key = format!("{{digest_auth}}:n:{nonce}");
    let kept: u64 = cli(redis.port, &["zcard", &key]).parse().unwrap();
    assert!(kept <= 2 * u64::from(window), "{kept} entries kept");
    assert!(kept <= max_entries_per_nonce(window));
    let ttl: i64 = cli(redis.port, &["ttl", &key]).parse().unwrap();
    let margin = rocket_digest_auth::protocol::MAX_CLOCK_SKEW_SECS;
    assert!((margin..=30 + margin).contains(&ttl), "ttl {ttl}");
    // Only the generation and this nonce's counts exist.
    assert_eq!(cli(redis.port, &["dbsize"]), "2");
}
