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

use std::collections::HashSet;

use super::Claim;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod batch;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
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
    /// Accepted entries; those below the window may linger until a trim.
    seen: HashSet<(String, u32)>,
    pub(crate) expires_at: i64,
}

impl NonceCounts {
    pub(crate) fn new(expires_at: i64) -> NonceCounts {
        NonceCounts {
            highest: 0,
            trimmed_at: 0,
            seen: HashSet::new(),
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
        if !self.seen.insert((cnonce.to_owned(), nc)) {
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
