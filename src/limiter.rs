//! Brute-force limiting per (user, client address): in this process
//! ([`FailureLimiter`]), and for a whole fleet where a store keeps failures
//! ([`FailureStore`], see [`Limit`]).
//!
//! Keyed on both, so that an attacker hammering one user from one address is
//! stopped while the same user from another address (the real user, or
//! colleagues behind one NAT trying other accounts) is not: nobody can lock a
//! legitimate user out. The user is the one the credential store resolved
//! (a userhash and the plain name are one user); a name nobody has keys on
//! itself as sent.
//!
//! A guess is judged and counted in one step under one lock
//! ([`FailureLimiter::settle`]): however many guesses arrive at once, at most
//! `max_failures` wrong ones per pair and window are answered as wrong, and
//! the rest are refused (429) whatever they were. With a shared store, a
//! wrong guess this process lets through is answered as wrong only if the
//! store's atomic count says so too: at most `max_failures` per pair and
//! window across the fleet.
//!
//! Memory is bounded: keys are fixed-size hashes and the table holds at most
//! `capacity` entries. A lock is never dropped to make room: expired entries
//! go first, then unlocked ones (oldest first); when only locks remain, a new
//! pair's failure is refused (429) until the oldest lock ends. A right token
//! needs no room, so a flood never locks out a user who types it right.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::{FailureStore, StoreError};

/// The fixed-size key of one (user, client address) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureKey([u8; 16]);

impl FailureKey {
    /// The key of `username` (as the credential store resolved it) from
    /// `client`. The same on every instance, so shared stores can use it.
    pub fn new(username: &str, client: Option<IpAddr>) -> FailureKey {
        let mut h = Sha256::new();
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        match client {
            Some(IpAddr::V4(ip)) => h.update(ip.octets()),
            Some(IpAddr::V6(ip)) => h.update(ip.octets()),
            None => h.update(b"unknown"),
        }
        FailureKey(h.finalize()[..16].try_into().expect("16 bytes"))
    }

    /// The key's 16 bytes, as shared stores keep it.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The key whose [`as_bytes`](Self::as_bytes) are `bytes`, if 16 long.
    pub fn from_bytes(bytes: &[u8]) -> Option<FailureKey> {
        bytes.try_into().ok().map(FailureKey)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: i64,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<FailureKey, Entry>,
    /// Until when making room is known to be impossible (only locks left).
    crowded_until: i64,
}

/// Counts failed attempts in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: i64,
    capacity: usize,
    table: Mutex<Table>,
}

impl FailureLimiter {
    /// After `max_failures` failures within `window` seconds, attempts are
    /// refused until the window has passed. At most `capacity` keys are kept.
    pub fn new(max_failures: u32, window: u64, capacity: usize) -> FailureLimiter {
        FailureLimiter {
            max_failures,
            window: i64::try_from(window).unwrap_or(i64::MAX),
            capacity: capacity.max(1),
            table: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn end(&self, e: &Entry) -> i64 {
        e.window_start.saturating_add(self.window)
    }

    /// `Some(seconds left)` when `e` is a lock in force at `now`.
    fn locked(&self, e: &Entry, now: i64) -> Option<u64> {
        let end = self.end(e);
        (e.failures >= self.max_failures && now < end).then(|| (end - now) as u64)
    }

    /// Whether no pair has failures: then no key need be hashed.
    fn is_empty(&self) -> bool {
        self.table().entries.is_empty()
    }

    /// `Err(seconds)` until the attempt may be made, when locked out.
    pub fn check(&self, username: &str, client: Option<IpAddr>, now: i64) -> Result<(), u64> {
        // The common case, nobody failing: skip hashing the key.
        if self.is_empty() {
            return Ok(());
        }
        self.check_key(FailureKey::new(username, client), now)
    }

    /// [`check`](Self::check) by key.
    pub fn check_key(&self, key: FailureKey, now: i64) -> Result<(), u64> {
        match self.table().entries.get(&key) {
            Some(e) => self.locked(e, now).map_or(Ok(()), Err),
            None => Ok(()),
        }
    }

    /// Whether `key` has failures (or a lock) in a window not yet over.
    pub fn knows(&self, key: FailureKey, now: i64) -> bool {
        let table = self.table();
        !table.entries.is_empty() && table.entries.get(&key).is_some_and(|e| now < self.end(e))
    }

    /// Takes in a lock another instance saw (through a shared store): `key`
    /// is locked for `seconds_left` from `now`. Kept unless the table has
    /// no room even after [making room](Self::fail) (the shared store still
    /// refuses the pair's wrong guesses then).
    pub fn learn_lock(&self, key: FailureKey, seconds_left: u64, now: i64) {
        let end = now.saturating_add(i64::try_from(seconds_left).unwrap_or(i64::MAX));
        let mut table = self.table();
        if table.entries.len() >= self.capacity
            && !table.entries.contains_key(&key)
            && self.make_room(&mut table, now).is_err()
        {
            return;
        }
        let e = table.entries.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        e.failures = e.failures.max(self.max_failures);
        e.window_start = end.saturating_sub(self.window);
    }

    /// Decides a judged guess in the same step as the check: `right` says
    /// whether it was right. `Err(seconds)` refuses it (429) whatever it
    /// was: the pair is locked, or a wrong guess of a new pair finds no room.
    /// A wrong guess that is not refused is counted here; a right one
    /// changes nothing ([`succeed`](Self::succeed) clears the pair once the
    /// request is accepted).
    pub fn settle(
        &self,
        username: &str,
        client: Option<IpAddr>,
        right: bool,
        now: i64,
    ) -> Result<(), u64> {
        if right {
            return self.check(username, client, now);
        }
        self.fail(username, client, now)
    }

    /// Records a failed attempt, unless the pair is locked or has no room
    /// (`Err(seconds)`, and nothing is recorded).
    pub fn fail(&self, username: &str, client: Option<IpAddr>, now: i64) -> Result<(), u64> {
        self.fail_key(FailureKey::new(username, client), now)
    }

    /// [`fail`](Self::fail) by key.
    pub fn fail_key(&self, key: FailureKey, now: i64) -> Result<(), u64> {
        let mut table = self.table();
        if table.entries.len() >= self.capacity && !table.entries.contains_key(&key) {
            self.make_room(&mut table, now)?;
        }
        let window = self.window;
        let e = table.entries.entry(key).or_insert(Entry {
            failures: 0,
            window_start: now,
        });
        if now >= e.window_start.saturating_add(window) {
            *e = Entry {
                failures: 0,
                window_start: now,
            };
        }
        if let Some(left) = self.locked(e, now) {
            return Err(left);
        }
        e.failures = e.failures.saturating_add(1);
        Ok(())
    }

    /// A success at `now` clears the pair's failures, but not a lock in
    /// force (see [`succeed_key`](Self::succeed_key)); whether failures
    /// were forgotten.
    pub fn succeed(&self, username: &str, client: Option<IpAddr>, now: i64) -> bool {
        !self.is_empty() && self.succeed_key(FailureKey::new(username, client), now)
    }

    /// [`succeed`](Self::succeed) by key, at `now`; whether the key had
    /// failures that are now forgotten. A lock in force stays: one that
    /// came in while the accepted guess was judged is not lifted by it.
    pub fn succeed_key(&self, key: FailureKey, now: i64) -> bool {
        let mut table = self.table();
        match table.entries.get(&key) {
            Some(e) if self.locked(e, now).is_none() => table.entries.remove(&key).is_some(),
            _ => false,
        }
    }

    /// How many keys are tracked.
    pub fn tracked(&self) -> usize {
        self.table().entries.len()
    }

    /// Drops expired windows; if still full, the oldest tenth of the unlocked
    /// entries, so the cost of making room is paid once per many insertions.
    /// Locks are kept: with fewer unlocked entries than that, the table is
    /// crowded and new pairs are refused until the oldest lock ends.
    fn make_room(&self, table: &mut Table, now: i64) -> Result<(), u64> {
        if now < table.crowded_until {
            return Err((table.crowded_until - now) as u64);
        }
        table.entries.retain(|_, e| now < self.end(e));
        if table.entries.len() < self.capacity {
            return Ok(());
        }
        let mut unlocked: Vec<(i64, FailureKey)> = table
            .entries
            .iter()
            .filter(|(_, e)| e.failures < self.max_failures)
            .map(|(k, e)| (e.window_start, *k))
            .collect();
        let cut = (self.capacity / 10).max(1);
        if unlocked.len() >= cut {
            unlocked.select_nth_unstable_by_key(cut - 1, |&(start, _)| start);
            unlocked.truncate(cut);
        } else {
            // Scanning again before a lock ends would find no more room.
            let first_end = table.entries.values().map(|e| self.end(e)).min();
            table.crowded_until = first_end.unwrap_or(now).max(now + 1);
        }
        for (_, key) in &unlocked {
            table.entries.remove(key);
        }
        if table.entries.len() < self.capacity {
            Ok(())
        } else {
            Err((table.crowded_until - now).max(1) as u64)
        }
    }
}

/// The failure limit a verifier applies: this process's [`FailureLimiter`]
/// always, as the floor, and where the store keeps failures for the whole
/// fleet ([`FailureStore`]), the fleet's count on top.
///
/// A wrong guess that this process lets through is recorded in the shared
/// store, and answered as wrong only when the store says it is within
/// `max_failures` for its window; otherwise it is refused (429). A right
/// guess is refused when this process knows the pair is locked; it asks the
/// store only for pairs it knows to have failures, and hears of the locks
/// other instances saw by polling the store once per `poll_every`.
#[derive(Debug)]
pub(crate) struct Limit {
    pub(crate) local: Arc<FailureLimiter>,
    shared: Option<Arc<SharedCounts>>,
}

struct SharedCounts {
    store: Arc<dyn FailureStore>,
    window: u64,
    poll_every: Duration,
    cleanup_every: Duration,
    /// `store_timeout`: a poll that takes longer is given up.
    timeout: Duration,
    poll: Mutex<Polled>,
    /// One request polls at a time; the others go on meanwhile.
    polling: AtomicBool,
}

impl std::fmt::Debug for SharedCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounts")
            .field("poll_every", &self.poll_every)
            .finish_non_exhaustive()
    }
}

/// What the last poll of the shared store found out.
#[derive(Debug, Default)]
struct Polled {
    at: Option<Instant>,
    /// The store's clock at the last poll: locks from then on are new.
    since: i64,
    cleaned: Option<Instant>,
}

/// Seconds a poll looks back beyond the previous one: a lock whose statement
/// read the clock just before that poll but committed after it.
const POLL_OVERLAP_SECS: i64 = 2;

/// Clears the polling flag however the poll ends (error, cancelled).
struct PollingGuard<'a>(&'a AtomicBool);

impl Drop for PollingGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Limit {
    /// The limit of `config`, shared through `store` when there is one.
    pub(crate) fn new(config: &Config, store: Option<Arc<dyn FailureStore>>) -> Limit {
        Limit {
            local: Arc::new(FailureLimiter::new(
                config.max_failures,
                config.failure_window,
                config.max_tracked_clients,
            )),
            shared: store.map(|store| {
                Arc::new(SharedCounts {
                    store,
                    window: config.failure_window,
                    poll_every: Duration::from_millis(config.credential_recheck_ms),
                    cleanup_every: Duration::from_secs(config.cleanup_interval),
                    timeout: Duration::from_secs(config.store_timeout),
                    poll: Mutex::default(),
                    polling: AtomicBool::new(false),
                })
            }),
        }
    }

    /// Judges a guess of `username` (as the credential store resolved it)
    /// from `client` (`right` or not) at `now` and counts a wrong one:
    /// `Ok(Err(seconds))` refuses it (429) whatever it was. The local
    /// limiter decides first, with no await since the check; a store that
    /// cannot answer is an error (503), never a guess let through.
    pub(crate) async fn settle(
        &self,
        username: &str,
        client: Option<IpAddr>,
        right: bool,
        now: i64,
    ) -> Result<Result<(), u64>, StoreError> {
        // Every guess may start a poll, so that ended windows are deleted
        // also while only refused guesses come.
        if let Some(shared) = &self.shared {
            self.hear_of_locks(shared, now).await;
        }
        // The common case, nobody failing here: a right guess is neither
        // locked nor known to have failed, and its key is not hashed.
        if right && self.local.is_empty() {
            return Ok(Ok(()));
        }
        let key = FailureKey::new(username, client);
        let local = if right {
            self.local.check_key(key, now)
        } else {
            self.local.fail_key(key, now)
        };
        let (Ok(()), Some(shared)) = (local, &self.shared) else {
            return Ok(local);
        };
        let max_failures = self.local.max_failures;
        if !right {
            let count = shared
                .store
                .record_failure(key, shared.window, max_failures)
                .await?;
            if count.locks(max_failures) {
                self.local.learn_lock(key, count.seconds_left, now);
            }
            return Ok(if count.failures > u64::from(max_failures) {
                Err(count.seconds_left.max(1))
            } else {
                Ok(())
            });
        }
        // Pairs this process saw fail may have failed elsewhere since.
        if self.local.knows(key, now) {
            let count = shared.store.failures(key).await?;
            if count.locks(max_failures) {
                self.local.learn_lock(key, count.seconds_left, now);
                return Ok(Err(count.seconds_left.max(1)));
            }
        }
        Ok(Ok(()))
    }

    /// A guess of `username` from `client` was accepted at `now`: its
    /// failures are forgotten, in the shared store too when this process
    /// knew of any. No lock is lifted (see [`FailureStore::reset`]).
    pub(crate) async fn succeed(
        &self,
        username: &str,
        client: Option<IpAddr>,
        now: i64,
    ) -> Result<(), StoreError> {
        if self.local.is_empty() {
            return Ok(());
        }
        let key = FailureKey::new(username, client);
        let known = self.local.succeed_key(key, now);
        match &self.shared {
            Some(shared) if known => shared.store.reset(key, self.local.max_failures).await,
            _ => Ok(()),
        }
    }

    /// Starts a poll of the shared store for new locks when `poll_every`
    /// has passed since the last one, in a task of its own: no request
    /// waits for it. One poll at a time.
    async fn hear_of_locks(&self, shared: &Arc<SharedCounts>, now: i64) {
        let due = {
            let polled = shared.poll.lock().unwrap_or_else(|e| e.into_inner());
            polled.at.is_none_or(|at| at.elapsed() >= shared.poll_every)
        };
        if !due || shared.polling.swap(true, Ordering::Acquire) {
            return;
        }
        let (shared, local) = (shared.clone(), self.local.clone());
        let poll = async move {
            let _guard = PollingGuard(&shared.polling);
            let limit = shared.timeout;
            match rocket::tokio::time::timeout(limit, shared.poll(&local, now)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    rocket::warn!("digest_auth: polling the failure store for locks failed: {e}")
                }
                Err(_) => rocket::warn!(
                    "digest_auth: the failure store did not answer a poll within store_timeout"
                ),
            }
        };
        match rocket::tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(poll)),
            // Outside a runtime (a caller driving the verifier by hand): here.
            Err(_) => poll.await,
        }
    }
}

impl SharedCounts {
    /// Learns the locks reported since the last poll into `local`, and
    /// deletes ended windows when `cleanup_every` has passed.
    async fn poll(&self, local: &FailureLimiter, now: i64) -> Result<(), StoreError> {
        let (since, clean) = {
            let mut polled = self.poll.lock().unwrap_or_else(|e| e.into_inner());
            // A poll that fails is retried a `poll_every` later, not at once.
            polled.at = Some(Instant::now());
            let clean = polled
                .cleaned
                .is_none_or(|at| at.elapsed() >= self.cleanup_every);
            (polled.since, clean)
        };
        let locks = self
            .store
            .locked_since(since.saturating_sub(POLL_OVERLAP_SECS))
            .await?;
        for (key, seconds_left) in locks.locked {
            local.learn_lock(key, seconds_left, now);
        }
        if clean {
            self.store.remove_expired().await?;
        }
        let mut polled = self.poll.lock().unwrap_or_else(|e| e.into_inner());
        polled.since = locks.now;
        if clean {
            polled.cleaned = polled.at;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn locks_the_pair_only_until_the_window_passes() {
        let l = FailureLimiter::new(3, 60, 100);
        for _ in 0..3 {
            assert_eq!(l.settle("alice", A, false, 100), Ok(()));
        }
        assert_eq!(l.check("alice", A, 110), Err(50));
        assert_eq!(l.settle("alice", A, true, 110), Err(50), "right or wrong");
        assert_eq!(l.settle("alice", A, false, 110), Err(50));
        assert_eq!(l.check("alice", B, 110), Ok(()), "other address unaffected");
        assert_eq!(l.check("bob", A, 110), Ok(()), "other user unaffected");
        assert_eq!(l.check("alice", A, 160), Ok(()), "window passed");
        assert_eq!(l.settle("alice", A, false, 160), Ok(()));
    }

    #[test]
    fn success_resets() {
        let l = FailureLimiter::new(2, 60, 100);
        l.fail("alice", A, 0).unwrap();
        assert!(l.succeed("alice", A, 0));
        l.fail("alice", A, 0).unwrap();
        assert_eq!(l.check("alice", A, 0), Ok(()));
        l.fail("alice", A, 0).unwrap();
        assert!(!l.succeed("alice", A, 0), "a lock in force stays");
        assert_eq!(l.check("alice", A, 0), Err(60));
    }

    #[test]
    fn a_learned_lock_holds_and_a_success_does_not_lift_a_lock() {
        let l = FailureLimiter::new(3, 60, 100);
        let key = FailureKey::new("alice", A);
        assert!(!l.knows(key, 100));
        l.learn_lock(key, 20, 100);
        assert!(l.knows(key, 100));
        assert_eq!(l.check("alice", A, 110), Err(10));
        assert!(!l.succeed_key(key, 110), "a lock in force stays");
        assert_eq!(l.check_key(key, 110), Err(10));
        assert_eq!(l.check_key(key, 120), Ok(()), "the store's window ended");
        l.fail_key(key, 200).unwrap();
        assert!(l.succeed_key(key, 200), "failures short of a lock go");
        assert!(!l.knows(key, 200));
    }

    #[test]
    fn memory_is_bounded() {
        let l = FailureLimiter::new(2, 60, 1000);
        for i in 0..10_000 {
            l.fail(&format!("user{i}"), A, i).unwrap();
        }
        assert!(l.tracked() <= 1000, "{}", l.tracked());
        // The newest attacker is still tracked.
        l.fail("user9999", A, 10_000).unwrap();
        assert!(l.check("user9999", A, 10_000).is_err());
        // Entries from one second are evicted a tenth at a time, not all at once.
        let l = FailureLimiter::new(2, 60, 100);
        for i in 0..101 {
            l.fail(&format!("user{i}"), A, 0).unwrap();
        }
        assert_eq!(l.tracked(), 91);
    }

    #[test]
    fn locks_are_never_evicted() {
        let l = FailureLimiter::new(2, 60, 10);
        l.fail("alice", A, 0).unwrap();
        l.fail("alice", A, 0).unwrap();
        for i in 0..1000 {
            let _ = l.fail(&format!("junk{i}"), A, 1);
        }
        assert_eq!(l.check("alice", A, 2), Err(58));
        // Only locks left: a new pair is refused until the oldest ends.
        let l = FailureLimiter::new(1, 60, 3);
        for (i, now) in [(0, 0), (1, 5), (2, 10)] {
            l.fail(&format!("user{i}"), A, now).unwrap();
        }
        assert_eq!(l.fail("new", A, 20), Err(40));
        assert_eq!(l.fail("new", A, 59), Err(1));
        assert_eq!(l.fail("new", A, 60), Ok(()), "user0's lock ended");
        assert_eq!(l.check("user1", A, 60), Err(5));
    }
}
