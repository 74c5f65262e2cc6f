//! One test suite for every [`FailureStore`]: the built-in ones run it, and
//! an app can run it on its own store with
//! [`failure_store_suite!`](crate::failure_store_suite) (feature
//! `test-util`). Each check takes a fresh pair of its own, so one store can
//! serve all of them at once. Stores are run with [`run`]'s
//! runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failures::{FailureKey, FailureStore};

/// A store under test.
pub type FailureStoreUnderTest = Arc<dyn FailureStore>;

const MAX_FAILURES: u32 = 10;
const WINDOW: u64 = 300;

fn fresh_key(tag: &str) -> FailureKey {
    FailureKey::new(&format!("suite-{tag}-{}", super::generate_token()), None)
}

/// Runs one check as the nonce-count suite does; `make` returns `None` when
/// the backend is not available here (the check is skipped).
pub use super::suite::run;

/// 50 failures recorded at once are told 1, 2, ..., 50, each number once,
/// and the count is then 50.
pub async fn parallel_failures_count_exactly(store: FailureStoreUnderTest) {
    let key = fresh_key("parallel");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            rocket::tokio::spawn(async move {
                store
                    .record_failure(key, WINDOW, MAX_FAILURES)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut told = Vec::new();
    for task in tasks {
        let count = task.await.unwrap();
        assert!((1..=WINDOW).contains(&count.seconds_left), "{count:?}");
        told.push(count.failures);
    }
    told.sort_unstable();
    assert_eq!(told, (1..=50).collect::<Vec<u64>>());
    assert_eq!(store.failures(key).await.unwrap().failures, 50);
}

/// A window ends by the store's clock, and the next failure starts a new one.
pub async fn windows_end(store: FailureStoreUnderTest) {
    let key = fresh_key("window");
    let first = store.record_failure(key, 1, 1).await.unwrap();
    assert_eq!(first.failures, 1);
    assert!(first.locks(1), "{first:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.failures(key).await.unwrap().failures > 0 {
        assert!(
            Instant::now() < deadline,
            "a 1 s window still open after 5 s"
        );
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = store
        .record_failure(key, WINDOW, MAX_FAILURES)
        .await
        .unwrap();
    assert_eq!(again.failures, 1, "a new window: {again:?}");
    store.remove_expired().await.unwrap();
    assert_eq!(store.failures(key).await.unwrap().failures, 1);
}

/// A reset forgets failures short of a lock, and leaves a lock alone.
pub async fn reset_forgets(store: FailureStoreUnderTest) {
    let (short, locked) = (fresh_key("reset"), fresh_key("reset-locked"));
    let record = |key| {
        let store = store.clone();
        async move {
            store
                .record_failure(key, WINDOW, MAX_FAILURES)
                .await
                .unwrap()
        }
    };
    for _ in 0..MAX_FAILURES - 1 {
        record(short).await;
    }
    store.reset(short, MAX_FAILURES).await.unwrap();
    assert_eq!(store.failures(short).await.unwrap().failures, 0);
    assert_eq!(record(short).await.failures, 1, "counted afresh");
    for _ in 0..MAX_FAILURES {
        record(locked).await;
    }
    store.reset(locked, MAX_FAILURES).await.unwrap();
    let count = store.failures(locked).await.unwrap();
    assert!(
        count.locks(MAX_FAILURES),
        "a reset lifted a lock: {count:?}"
    );
}

/// A pair is reported locked from its `max_failures`-th failure on, with the
/// seconds left in its window; one short of it is not.
pub async fn locks_are_reported(store: FailureStoreUnderTest) {
    let (locked, short) = (fresh_key("locked"), fresh_key("short"));
    let since = store.locked_since(0).await.unwrap().now;
    for i in 1..=MAX_FAILURES {
        store
            .record_failure(short, WINDOW, MAX_FAILURES + 1)
            .await
            .unwrap();
        let count = store
            .record_failure(locked, WINDOW, MAX_FAILURES)
            .await
            .unwrap();
        assert_eq!(count.locks(MAX_FAILURES), i == MAX_FAILURES, "{count:?}");
    }
    let locks = store.locked_since(since).await.unwrap();
    assert!(locks.now >= since);
    let found: Vec<_> = locks.locked.iter().filter(|(k, _)| *k == locked).collect();
    assert_eq!(found.len(), 1, "{locks:?}");
    assert!((1..=WINDOW).contains(&found[0].1), "{locks:?}");
    assert!(!locks.locked.iter().any(|(k, _)| *k == short), "{locks:?}");
}

/// The [`FailureStore`] checks as `#[test]` functions, on stores made by
/// `$make` (an async fn returning `Option<FailureStoreUnderTest>`).
#[macro_export]
macro_rules! failure_store_suite {
    ($make:path) => {
        $crate::failure_store_suite!(@tests $make,
            parallel_failures_count_exactly,
            windows_end,
            reset_forgets,
            locks_are_reported
        );
    };
    (@tests $make:path, $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::store::failure_suite::run($make, $crate::store::failure_suite::$check);
            }
        )*
    };
}
