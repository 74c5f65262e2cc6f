//! Where failed guesses are counted when a fleet shares one failure limit:
//! [`FailureStore`], implemented by the database store (SQLite, PostgreSQL,
//! MySQL/MariaDB: table `digest_auth_failures`) and the Redis store. The
//! memory store and an app's own stores have none: each process then keeps
//! its own limit ([`FailureLimiter`](crate::verifier::FailureLimiter)).
//!
//! Each (user, client address) pair, its [`FailureKey`], has a count in a
//! fixed window that starts at its first failure and lasts `window`
//! seconds by the store's own clock. [`record_failure`] adds one in the same
//! atomic step that reads the count, so however many instances record at
//! once, the n-th failure of a window is told it is the n-th: the verifier
//! answers a wrong guess 401 only when that number is at most
//! `max_failures`, so the fleet answers at most `max_failures` wrong guesses
//! per pair and window.
//!
//! [`record_failure`]: FailureStore::record_failure
//!
//! ```
//! use rocket_digest_auth::store::{FailureCount, FailureKey};
//!
//! let key = FailureKey::new("alice", None);
//! assert_eq!(key, FailureKey::new("alice", None));
//! let count = FailureCount { failures: 3, seconds_left: 120 };
//! assert!(count.locks(3) && !count.locks(4));
//! ```

pub use crate::limiter::FailureKey;

use super::StoreError;

/// A pair's failures in its current window, as a [`FailureStore`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures recorded in the window (0: none, or the window is over).
    pub failures: u64,
    /// Seconds until the window ends, by the store's clock (0 with no failures).
    pub seconds_left: u64,
}

impl FailureCount {
    /// No failures in a window.
    pub const NONE: FailureCount = FailureCount {
        failures: 0,
        seconds_left: 0,
    };

    /// The count a store answered as signed integers (SQL and Lua have no
    /// unsigned ones); a negative value is none.
    pub(crate) fn from_signed(failures: i64, seconds_left: i64) -> FailureCount {
        FailureCount {
            failures: u64::try_from(failures).unwrap_or(0),
            seconds_left: u64::try_from(seconds_left).unwrap_or(0),
        }
    }

    /// Whether this count locks the pair under `max_failures`.
    pub fn locks(&self, max_failures: u32) -> bool {
        self.failures >= u64::from(max_failures) && self.seconds_left > 0
    }
}

/// Pairs that became locked, as [`FailureStore::locked_since`] reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locks {
    /// Each pair locked at or after the time asked about, with the seconds
    /// left in its window.
    pub locked: Vec<(FailureKey, u64)>,
    /// The store's clock when it answered (unix seconds): the `since` of the
    /// next call.
    pub now: i64,
}

/// Failure counts shared by every instance using the store: see the module
/// documentation. Every method is one round trip; none is made on a request
/// whose pair has no failures this instance knows of.
#[rocket::async_trait]
pub trait FailureStore: Send + Sync + 'static {
    /// Adds one failure of `key` in one atomic step and returns the count
    /// including it. A window that has ended (by the store's clock) starts
    /// afresh with this failure and lasts `window` seconds. The count the
    /// `max_failures`-th failure gets marks the pair locked at the store's
    /// time, for [`locked_since`](Self::locked_since).
    async fn record_failure(
        &self,
        key: FailureKey,
        window: u64,
        max_failures: u32,
    ) -> Result<FailureCount, StoreError>;

    /// The failures of `key` in its current window.
    async fn failures(&self, key: FailureKey) -> Result<FailureCount, StoreError>;

    /// Forgets `key`'s failures (a right guess got through), unless they
    /// lock it (`max_failures` or more in a window not yet ended): a lock
    /// set while the right guess was judged stays.
    async fn reset(&self, key: FailureKey, max_failures: u32) -> Result<(), StoreError>;

    /// The pairs that became locked at or after `since` (the store's unix
    /// seconds; an instance passes the `now` of its previous answer) and
    /// whose windows have not ended: how an instance hears of locks other
    /// instances saw, with one query per interval instead of one per request.
    async fn locked_since(&self, since: i64) -> Result<Locks, StoreError>;

    /// Deletes the counts whose windows have ended; returns how many went.
    async fn remove_expired(&self) -> Result<u64, StoreError>;
}
