//! One test suite for every [`NonceCountStore`]: the built-in ones run it,
//! and an app can run it on its own store with
//! [`nonce_count_store_suite!`](crate::nonce_count_store_suite) (feature
//! `test-util`).
//!
//! The suite chooses the window of each claim, as the verifier does from
//! `nc_window`, and checks the store's answers against the engine's rule
//! ([`counts`](super::counts)). Each check takes a fresh nonce of its own, so
//! one store (one database) can serve all of them at once.

use std::future::Future;
use std::sync::Arc;

use rand::{Rng, SeedableRng};

use super::counts::{max_entries_per_nonce, NonceCounts};
use super::{Claim, ClaimRequest, NonceCountStore, DEFAULT_NC_WINDOW};
use crate::protocol::MAX_CLOCK_SKEW_SECS;

/// A store under test.
pub type StoreUnderTest = Arc<dyn NonceCountStore>;

/// The window of the checks that do not choose one: the default.
const WINDOW: u32 = DEFAULT_NC_WINDOW;

/// Runs one check on a multi-threaded runtime. `make` returns `None` when
/// the store's backend is not available here and the check is skipped
/// (it should print why).
pub fn run<S, M, MF, T, TF>(make: M, check: T)
where
    M: FnOnce() -> MF,
    MF: Future<Output = Option<S>>,
    T: FnOnce(S) -> TF,
    TF: Future<Output = ()>,
{
    run_on_runtime(async move {
        if let Some(store) = make().await {
            check(store).await;
        }
    });
}

/// Runs `check` on a multi-threaded runtime of 4 workers.
fn run_on_runtime(check: impl Future<Output = ()>) {
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(check);
}

fn fresh_nonce(tag: &str) -> String {
    format!("suite-{tag}-{}", super::generate_token())
}

fn far_future() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

async fn claim_in(
    store: &dyn NonceCountStore,
    nonce: &str,
    cnonce: &str,
    nc: u32,
    window: u32,
) -> Claim {
    let request = ClaimRequest::new(nonce, cnonce, nc, far_future(), window);
    store.claim(request).await.expect("claim should not fail")
}

async fn claim(store: &dyn NonceCountStore, nonce: &str, cnonce: &str, nc: u32) -> Claim {
    claim_in(store, nonce, cnonce, nc, WINDOW).await
}

/// Each (nonce, cnonce, nc) is accepted once; another cnonce is another key.
pub async fn accepts_once(store: StoreUnderTest) {
    let n = fresh_nonce("once");
    assert_eq!(claim(&*store, &n, "c1", 1).await, Claim::Accepted);
    assert_eq!(claim(&*store, &n, "c1", 1).await, Claim::Replayed);
    assert_eq!(claim(&*store, &n, "c2", 1).await, Claim::Accepted);
    assert_eq!(claim(&*store, &n, "c1", 2).await, Claim::Accepted);
    assert_eq!(claim(&*store, &n, "c1", 2).await, Claim::Replayed);
    // Another nonce is independent.
    let other = fresh_nonce("once-other");
    assert_eq!(claim(&*store, &other, "c1", 1).await, Claim::Accepted);
}

/// Counts may arrive in any order within the window, each once.
pub async fn out_of_order_within_window(store: StoreUnderTest) {
    let n = fresh_nonce("ooo");
    for nc in [64, 1, 30, 63, 2, 100, 40] {
        assert_eq!(
            claim_in(&*store, &n, "c", nc, 128).await,
            Claim::Accepted,
            "nc {nc}"
        );
    }
    for nc in [64, 1, 30, 100] {
        assert_eq!(
            claim_in(&*store, &n, "c", nc, 128).await,
            Claim::Replayed,
            "repeat of nc {nc}"
        );
    }
}

/// A count `window` or more below the highest accepted is refused, even
/// unseen and with another cnonce; one just inside is accepted. For the
/// smallest window allowed (64), another, and the default.
pub async fn below_window_rejected(store: StoreUnderTest) {
    for window in [64, 100, DEFAULT_NC_WINDOW] {
        let n = fresh_nonce("below");
        let top = window + 1000;
        let at = |cnonce: &'static str, nc| {
            let (store, n) = (store.clone(), n.clone());
            async move { claim_in(&*store, &n, cnonce, nc, window).await }
        };
        assert_eq!(at("c", top).await, Claim::Accepted);
        assert_eq!(at("c", top - window).await, Claim::Replayed, "{window}");
        assert_eq!(at("other", top - window).await, Claim::Replayed);
        assert_eq!(at("c", 1).await, Claim::Replayed);
        assert_eq!(at("c", top - window + 1).await, Claim::Accepted);
    }
}

/// `nc` goes up to 0xffffffff.
pub async fn full_nc_range(store: StoreUnderTest) {
    let n = fresh_nonce("max");
    assert_eq!(claim(&*store, &n, "c", u32::MAX).await, Claim::Accepted);
    assert_eq!(claim(&*store, &n, "c", u32::MAX).await, Claim::Replayed);
    assert_eq!(claim(&*store, &n, "c", u32::MAX - 1).await, Claim::Accepted);
}

/// An expiry that is about to pass, by this clock and by a store's own
/// (allowing the skew a database store allows, [`MAX_CLOCK_SKEW_SECS`]):
/// still claimable now, expired within 3 s.
fn expiring_soon(now: i64) -> i64 {
    now - MAX_CLOCK_SKEW_SECS + 2
}

/// Sleeps until a nonce expiring at `expires_at` has expired by any store's
/// clock (a database is on this machine's in the tests).
async fn until_expired(expires_at: i64) {
    while chrono::Utc::now().timestamp() <= expires_at + MAX_CLOCK_SKEW_SECS {
        rocket::tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A cleanup refuses what expired, spares what lives: after it, counts of an
/// expired nonce are refused (spent or not), while a live nonce still refuses
/// its replay and accepts its next count.
pub async fn cleanup_spares_live_nonces(store: StoreUnderTest) {
    let now = chrono::Utc::now().timestamp();
    let (old, live) = (fresh_nonce("expired"), fresh_nonce("live"));
    let at = |nonce, nc, expires_at| ClaimRequest::new(nonce, "c", nc, expires_at, WINDOW);
    let expires_at = expiring_soon(now);
    for nc in 1..=5 {
        let claim = store.claim(at(&old, nc, expires_at)).await.unwrap();
        assert_eq!(claim, Claim::Accepted);
    }
    let claim = store.claim(at(&live, 1, now + 3600)).await.unwrap();
    assert_eq!(claim, Claim::Accepted);
    until_expired(expires_at).await;
    let now = chrono::Utc::now().timestamp();
    store.remove_expired(now).await.expect("cleanup");
    for nc in [1, 5, 6] {
        let claim = store.claim(at(&old, nc, expires_at)).await.unwrap();
        assert_eq!(claim, Claim::Replayed, "nc {nc} of an expired nonce");
    }
    let claim = store.claim(at(&live, 1, now + 3600)).await.unwrap();
    assert_eq!(claim, Claim::Replayed, "the live nonce's replay");
    let claim = store.claim(at(&live, 2, now + 3600)).await.unwrap();
    assert_eq!(claim, Claim::Accepted, "the live nonce's next count");
}

/// The watermark (see [`NonceCountStore`]): claims, then cleanups asked by a
/// clock ten years ahead (a wrong clock, a clock stepped forward), then the
/// same claims (and new counts on the expired nonce): every one refused. A store
/// may delete less than such a clock asks (the database judges by its own),
/// never accept again what it deleted.
pub async fn forgotten_nonces_stay_refused(store: StoreUnderTest) {
    let now = chrono::Utc::now().timestamp();
    let (expired, live) = (fresh_nonce("forgotten"), fresh_nonce("forgotten-live"));
    let claims = [(&expired, expiring_soon(now)), (&live, now + 3600)];
    for (nonce, expires_at) in claims {
        for (cnonce, nc) in [("c", 1), ("c", 2)] {
            let request = ClaimRequest::new(nonce, cnonce, nc, expires_at, WINDOW);
            assert_eq!(store.claim(request).await.unwrap(), Claim::Accepted);
        }
    }
    until_expired(expiring_soon(now)).await;
    let ahead = chrono::Utc::now().timestamp() + 10 * 365 * 24 * 3600;
    // Several rounds: another instance may hold the cleanup for a moment.
    for _ in 0..3 {
        store.remove_expired(ahead).await.expect("cleanup");
        rocket::tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // New counts too on the expired nonce; on the live one only the spent
    // counts (whether its records went depends on the store's clock).
    let asked = [
        (
            &expired,
            expiring_soon(now),
            &[("c", 1), ("c", 2), ("c", 3), ("d", 1)][..],
        ),
        (&live, now + 3600, &[("c", 1), ("c", 2)][..]),
    ];
    for (nonce, expires_at, keys) in asked {
        for &(cnonce, nc) in keys {
            let request = ClaimRequest::new(nonce, cnonce, nc, expires_at, WINDOW);
            let claim = store.claim(request).await.unwrap();
            assert_eq!(
                claim,
                Claim::Replayed,
                "({cnonce}, {nc}) on a nonce expiring at {expires_at} after a cleanup at {ahead}"
            );
        }
    }
}

/// 200 concurrent claims on one nonce: 100 distinct (cnonce, nc) keys, each
/// claimed twice at once, with counts inside the window. Every key wins
/// exactly once; every duplicate loses.
pub async fn concurrent_claims_win_once(store: StoreUnderTest) {
    let n = Arc::new(fresh_nonce("concurrent"));
    let mut tasks = Vec::new();
    for _round in 0..2 {
        for cnonce in ["a", "b"] {
            for nc in 1..=50u32 {
                let (store, n) = (store.clone(), n.clone());
                tasks.push(rocket::tokio::spawn(async move {
                    ((cnonce, nc), claim(&*store, &n, cnonce, nc).await)
                }));
            }
        }
    }
    let mut wins = std::collections::HashMap::new();
    for t in tasks {
        let (key, claim) = t.await.expect("task");
        *wins.entry(key).or_insert(0) += u32::from(claim == Claim::Accepted);
    }
    assert_eq!(wins.len(), 100);
    for (key, w) in wins {
        assert_eq!(w, 1, "{key:?} won {w} times");
    }
}

/// Claims one after another, in a random but repeatable order with repeats,
/// out-of-order and below-window counts: the store answers each exactly as
/// the engine's rule does.
pub async fn decides_as_the_engine(store: StoreUnderTest) {
    let window = 64;
    for seed in 0..3u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let n = fresh_nonce("engine");
        let mut engine = NonceCounts::new(far_future());
        let mut top = 1u32;
        for step in 0..300 {
            // Mostly near the top, sometimes far behind, sometimes ahead.
            let nc = match rng.gen_range(0..10) {
                0 => rng.gen_range(0..=top),
                1 => top + rng.gen_range(1..200),
                _ => top.saturating_sub(rng.gen_range(0..2 * window)).max(1),
            };
            top = top.max(nc);
            let cnonce = ["a", "b", "c"][rng.gen_range(0..3)];
            let expected = engine.decide(cnonce, nc, window);
            let got = claim_in(&*store, &n, cnonce, nc, window).await;
            assert_eq!(got, expected, "seed {seed} step {step}: ({cnonce}, {nc})");
        }
    }
}

/// The per-nonce bound: 5,000 distinct cnonces at one count on one nonce
/// are accepted exactly up to the bound, while rising counts on another
/// nonce, past the bound in number, are all accepted (the bound counts the
/// entries inside the window).
pub async fn per_nonce_bound(store: StoreUnderTest) {
    let bound = max_entries_per_nonce(WINDOW);
    let one_count = Arc::new(fresh_nonce("bound"));
    let cnonces: Vec<String> = (0..5_000).map(|i| format!("c{i}")).collect();
    let mut accepted = 0u64;
    // In chunks of concurrent claims, as requests arrive.
    for chunk in cnonces.chunks(50) {
        let mut tasks = Vec::new();
        for cnonce in chunk {
            let (store, n, cnonce) = (store.clone(), one_count.clone(), cnonce.clone());
            tasks.push(rocket::tokio::spawn(async move {
                claim(&*store, &n, &cnonce, 1).await
            }));
        }
        for task in tasks {
            accepted += u64::from(task.await.expect("task") == Claim::Accepted);
        }
    }
    assert_eq!(accepted, bound, "distinct cnonces accepted at one count");

    let rising = Arc::new(fresh_nonce("rising"));
    let counts: Vec<u32> = (1..=bound as u32 + 1_000).collect();
    for chunk in counts.chunks(50) {
        let mut tasks = Vec::new();
        for &nc in chunk {
            let (store, n) = (store.clone(), rising.clone());
            tasks.push(rocket::tokio::spawn(async move {
                (nc, claim(&*store, &n, "c", nc).await)
            }));
        }
        for task in tasks {
            let (nc, claim) = task.await.expect("task");
            assert_eq!(claim, Claim::Accepted, "nc {nc}");
        }
    }
}

/// Instantiates the whole [`NonceCountStore`] suite as `#[test]`s (feature
/// `test-util`).
///
/// `$make` is an async fn returning `Option<Arc<dyn NonceCountStore>>`: the
/// store, or `None` to skip (when its database is not reachable; print why).
///
/// ```
/// use std::sync::Arc;
/// use rocket_digest_auth::store::{MemoryStore, StoreOptions, suite::StoreUnderTest};
///
/// async fn make() -> Option<StoreUnderTest> {
///     Some(Arc::new(MemoryStore::new(StoreOptions::new("suite"))))
/// }
///
/// rocket_digest_auth::nonce_count_store_suite!(make);
/// ```
#[macro_export]
macro_rules! nonce_count_store_suite {
    ($make:path) => {
        $crate::nonce_count_store_suite!(@tests $make,
            accepts_once,
            out_of_order_within_window,
            below_window_rejected,
            full_nc_range,
            cleanup_spares_live_nonces,
            forgotten_nonces_stay_refused,
            concurrent_claims_win_once,
            decides_as_the_engine,
            per_nonce_bound
        );
    };
    (@tests $make:path, $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::store::suite::run($make, $crate::store::suite::$check);
            }
        )*
    };
}
