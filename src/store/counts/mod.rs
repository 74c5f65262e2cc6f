//! The nonce-count engine: the one rule that decides whether a count is
//! accepted, and the two ways the built-in stores apply it.
//!
//! `NonceCounts::decide` (crate-private) is that rule. Every built-in store
//! decides by it: the memory store directly, the database store with leases
//! (`lease.rs`) by running it in memory over the counts it leased, and the
//! database store row by row (`batch.rs` and the group statement in `sql/counts.rs`) with a
//! statement that translates it to SQL. The shared store suite
//! (`nonce_count_store_suite!`) checks
//! every store against it.
//!
//! The rule, for a claim of (cnonce, nc) on a nonce with window `w`:
//! refused when `nc` is `w` or more below the highest count accepted on the
//! nonce, when the same (cnonce, nc) was accepted before, or when the nonce
//! already holds [`max_entries_per_nonce`]`(w)` accepted entries inside the
//! window (a client re-using one count with ever new cnonces gets a new
//! nonce instead of growing the record); accepted otherwise.
//!
//! # Forgetting: the "deleted through" watermark
//!
//! Records go once their nonce has expired, and a nonce's records are the
//! only proof of which counts were spent. So every store keeps a watermark,
//! the highest `expires_at` whose records it has deleted (or forgotten),
//! advanced in the same atomic step as the deletion, and **refuses every
//! claim whose `expires_at` lies at or below it**, in the same atomic step as
//! the claim. A count accepted once is then never accepted again, whatever
//! the clock of the instance that asks or of the one that cleaned up says:
//! skew between instances or a clock stepped forward and back can only make
//! a nonce stale early (`stale=true`, the client retries with a new one).
//! `NonceMap` (crate-private) is that rule for stores that keep nonces in
//! memory (the memory store, the lease book); the database store keeps the watermark in
//! a table, advances it in the cleanup's transaction and checks it inside the
//! claim statements, and judges expiry by the database's clock there too.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::Claim;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod batch;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) mod lease;

/// The least per-nonce bound, whatever the window.
pub const MAX_ENTRIES_PER_NONCE: u64 = 4096;

/// Most accepted (cnonce, nc) entries one nonce holds inside its window:
/// four windows, and at least [`MAX_ENTRIES_PER_NONCE`].
pub fn max_entries_per_nonce(window: u32) -> u64 {
    (4 * u64::from(window)).max(MAX_ENTRIES_PER_NONCE)
}

/// What a store is asked to decide: one (nonce, cnonce, nc) and the window
/// it is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimRequest<'a> {
    /// The server nonce.
    pub nonce: &'a str,
    /// The client nonce (empty for a request without `qop`).
    pub cnonce: &'a str,
    /// The nonce count (0 for a request without `qop`).
    pub nc: u32,
    /// Unix time after which the nonce is no longer accepted, so its records
    /// may go.
    pub expires_at: i64,
    /// How far below the highest accepted count a count may arrive (the
    /// `nc_window` setting); one nonce is always claimed with one window.
    pub window: u32,
}

impl<'a> ClaimRequest<'a> {
    /// A claim of (`nonce`, `cnonce`, `nc`) under `window`.
    pub fn new(nonce: &'a str, cnonce: &'a str, nc: u32, expires_at: i64, window: u32) -> Self {
        ClaimRequest {
            nonce,
            cnonce,
            nc,
            expires_at,
            window,
        }
    }
}

/// The 64-bit hash, keyed with this process's random seed, that stands for
/// a client-sent string (a nonce, a cnonce) in the maps kept in memory: a
/// fixed-size key allocates nothing, and without the seed nobody can pick
/// two strings that share one. Two strings that do share one are taken for
/// the same, which can only refuse a claim, never accept a repeat.
fn keyed_hash(s: &str) -> u64 {
    static SEED: OnceLock<ahash::RandomState> = OnceLock::new();
    SEED.get_or_init(ahash::RandomState::new).hash_one(s)
}

/// Something a [`NonceMap`] keeps per nonce, with the nonce's expiry.
pub(crate) trait Expiring {
    /// Unix time after which the nonce is no longer accepted.
    fn expires_at(&self) -> i64;
}

impl Expiring for NonceCounts {
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// The nonces a store keeps in memory, and the watermark of those it
/// forgot (see the module docs): used under the store's own lock, so the
/// watermark check and the claim are one atomic step.
#[derive(Debug)]
pub(crate) struct NonceMap<V> {
    /// Keyed by [`keyed_hash`] of the nonce, hashed again with a random
    /// seed: clients choose what they send as nonce.
    nonces: HashMap<u64, V, ahash::RandomState>,
    /// The highest expiry of a nonce forgotten so far.
    deleted_through: i64,
}

impl<V> Default for NonceMap<V> {
    fn default() -> Self {
        NonceMap {
            nonces: HashMap::default(),
            deleted_through: i64::MIN,
        }
    }
}

impl<V: Expiring> NonceMap<V> {
    /// The record of `nonce`, made by `new` if there is none; `None` when a
    /// nonce expiring at `expires_at` may have been forgotten already (the
    /// claim is refused).
    pub(crate) fn record(
        &mut self,
        nonce: &str,
        expires_at: i64,
        new: impl FnOnce() -> V,
    ) -> Option<&mut V> {
        if expires_at <= self.deleted_through {
            return None;
        }
        Some(self.nonces.entry(keyed_hash(nonce)).or_insert_with(new))
    }

    /// The record of `nonce`, if it is kept.
    pub(crate) fn get_mut(&mut self, nonce: &str) -> Option<&mut V> {
        self.nonces.get_mut(&keyed_hash(nonce))
    }

    /// Forgets the nonces that expired at or before `now` and raises the
    /// watermark over them; returns how many went.
    pub(crate) fn remove_expired(&mut self, now: i64) -> u64 {
        let before = self.nonces.len();
        let mut highest = self.deleted_through;
        self.nonces.retain(|_, record| {
            let expires_at = record.expires_at();
            let keep = expires_at > now;
            if !keep {
                highest = highest.max(expires_at);
            }
            keep
        });
        self.deleted_through = highest;
        (before - self.nonces.len()) as u64
    }

    /// How many nonces are kept.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn len(&self) -> usize {
        self.nonces.len()
    }
}

/// Whether `nc` is `window` or more below `highest`: refused unseen.
pub(crate) fn below_window(nc: u32, window: u32, highest: u32) -> bool {
    u64::from(nc) + u64::from(window) <= u64::from(highest)
}

/// The counts accepted on one nonce, decided in memory.
#[derive(Debug)]
pub(crate) struct NonceCounts {
    highest: u32,
    /// `highest` when `seen` was last trimmed: trim again only once it moved.
    trimmed_at: u32,
    /// Accepted entries, the cnonce as its [`keyed_hash`]; those below the
    /// window may linger until a trim. Hashed again with a random seed:
    /// clients choose the cnonces.
    seen: HashSet<(u64, u32), ahash::RandomState>,
    pub(crate) expires_at: i64,
}

impl NonceCounts {
    pub(crate) fn new(expires_at: i64) -> NonceCounts {
        NonceCounts {
            highest: 0,
            trimmed_at: 0,
            seen: HashSet::default(),
            expires_at,
        }
    }

    /// The highest count accepted so far (0 before the first).
    pub(crate) fn highest(&self) -> u32 {
        self.highest
    }

    /// Whether `nc` is refused as below the window, unseen.
    pub(crate) fn below_window(&self, nc: u32, window: u32) -> bool {
        below_window(nc, window, self.highest)
    }

    /// How many (cnonce, nc) entries are kept.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn entries(&self) -> usize {
        self.seen.len()
    }

    /// THE rule (see the module docs): checks (cnonce, nc) under `window`
    /// and records it when accepted.
    pub(crate) fn decide(&mut self, cnonce: &str, nc: u32, window: u32) -> Claim {
        if self.below_window(nc, window) {
            return Claim::Replayed;
        }
        let bound = max_entries_per_nonce(window);
        if self.seen.len() as u64 >= bound {
            // The bound counts entries inside the window only.
            self.trim(window);
            if self.seen.len() as u64 >= bound {
                return Claim::Replayed;
            }
        }
        if !self.seen.insert((keyed_hash(cnonce), nc)) {
            return Claim::Replayed;
        }
        self.highest = self.highest.max(nc);
        // Entries below the window are refused before `seen` is consulted, so
        // they can go: a busy nonce keeps about two windows' worth instead of
        // one entry per request for its whole lifetime.
        if self.seen.len() as u64 > 2 * u64::from(window) && self.trimmed_at != self.highest {
            self.trim(window);
        }
        Claim::Accepted
    }

    fn trim(&mut self, window: u32) {
        let highest = self.highest;
        self.seen
            .retain(|&(_, seen)| !below_window(seen, window, highest));
        self.trimmed_at = highest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_nonce_is_refused_whatever_the_clock_says() {
        let mut map: NonceMap<NonceCounts> = NonceMap::default();
        let record = map.record("n", 100, || NonceCounts::new(100)).unwrap();
        assert_eq!(record.decide("c", 1, 64), Claim::Accepted);
        map.record("live", 500, || NonceCounts::new(500)).unwrap();
        // A cleanup whose clock ran ahead forgets "n"...
        assert_eq!(map.remove_expired(200), 1);
        // ...and no claim on it, nor on any nonce expiring no later, is let in.
        assert!(map.record("n", 100, || NonceCounts::new(100)).is_none());
        assert!(map.record("other", 90, || NonceCounts::new(90)).is_none());
        // Nonces expiring later are untouched, even below the cleanup's `now`.
        assert!(map.record("later", 150, || NonceCounts::new(150)).is_some());
        let live = map.record("live", 500, || NonceCounts::new(500)).unwrap();
        assert_eq!(live.decide("c", 1, 64), Claim::Accepted);
        // A cleanup with a clock stepped back lowers nothing.
        assert_eq!(map.remove_expired(0), 0);
        assert!(map.record("n", 100, || NonceCounts::new(100)).is_none());
    }

    #[test]
    fn one_count_with_endless_cnonces_is_capped() {
        for window in [64, 256, 2048] {
            let mut counts = NonceCounts::new(i64::MAX);
            let accepted = (0..10_000)
                .filter(|i| counts.decide(&format!("c{i}"), 7, window) == Claim::Accepted)
                .count() as u64;
            assert_eq!(accepted, max_entries_per_nonce(window), "window {window}");
            assert_eq!(counts.entries() as u64, max_entries_per_nonce(window));
        }
    }

    #[test]
    fn the_bound_counts_entries_inside_the_window() {
        let window = 64;
        let mut counts = NonceCounts::new(i64::MAX);
        let bound = max_entries_per_nonce(window) as u32;
        // Twice the bound in rising counts: never more than a window inside it.
        for nc in 1..=2 * bound {
            assert_eq!(counts.decide("c", nc, window), Claim::Accepted, "nc {nc}");
        }
        // A nonce full inside its window refuses every new entry.
        let top = 2 * bound;
        for i in 0..bound {
            counts.decide(&format!("x{i}"), top, window);
        }
        assert_eq!(counts.decide("late", top, window), Claim::Replayed);
        assert_eq!(counts.decide("late", top + 1, window), Claim::Replayed);
    }
}
