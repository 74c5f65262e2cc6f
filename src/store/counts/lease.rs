//! Leased counts: the database store's claims decided in memory, one block of
//! counts at a time.
//!
//! Writing a row per request is what made the database store slow (one
//! transaction, one WAL append and two thread hand-offs per request). Instead
//! a process leases a block of `nc_lease` counts of a nonce, `[first, last]`,
//! with one `INSERT` that succeeds for exactly one process, and then decides
//! the counts of that block in its memory by the engine's rule
//! ([`NonceCounts::decide`]), exactly as the memory store does.
//! Every count belongs to at most one block and every block to at most one
//! process, so every (nonce, cnonce, nc) is still accepted at most once, across
//! processes and restarts: a block whose process is gone is nobody's, and its
//! counts are refused (the client gets `stale=true` and a fresh nonce).
//!
//! The price: a client whose requests on one nonce alternate between
//! instances (a per-request round-robin balancer) is refused by the instance
//! that does not hold the block, and after a restart each client in the middle
//! of a block gets one `stale=true`. That is why PostgreSQL, the backend for
//! several instances, does not lease by default.
//!
//! Forgetting obeys the watermark rule (see [`super`]): a nonce the book
//! forgot is refused here, before the database is asked, because the lease
//! rows may outlive the book's memory, and a block still ours there would
//! otherwise be decided again from empty counts.

use std::future::Future;
use std::sync::{Arc, Mutex};

use rocket::tokio::sync::OnceCell;

use super::{ClaimRequest, Expiring, NonceCounts, NonceMap};
use crate::store::{Claim, StoreError};

/// Blocks one nonce keeps in memory before refused ones are forgotten.
const MAX_BLOCKS_PER_NONCE: usize = 64;

/// This process's leases and the counts it accepted under them.
#[derive(Debug)]
pub(crate) struct LeaseBook {
    /// Who this process is in the lease table: random, so a restarted
    /// process never mistakes its predecessor's blocks for its own.
    owner: i64,
    size: u32,
    nonces: Mutex<NonceMap<LeasedNonce>>,
}

#[derive(Debug)]
struct LeasedNonce {
    counts: NonceCounts,
    /// Blocks by first count: `true` ours, `false` another's; an empty cell
    /// while the lease is being taken (the others wait on it).
    blocks: Vec<(u32, Arc<OnceCell<bool>>)>,
}

impl Expiring for LeasedNonce {
    fn expires_at(&self) -> i64 {
        self.counts.expires_at
    }
}

impl LeaseBook {
    /// `size` counts per lease (at least 1).
    pub(crate) fn new(size: u32) -> LeaseBook {
        LeaseBook {
            owner: rand::random(),
            size: size.max(1),
            nonces: Mutex::default(),
        }
    }

    /// This process's owner id in the lease table.
    pub(crate) fn owner(&self) -> i64 {
        self.owner
    }

    /// The block `nc` belongs to: its first and last count.
    pub(crate) fn block_of(&self, nc: u32) -> (u32, u32) {
        let first = nc - nc % self.size;
        (first, first.saturating_add(self.size - 1))
    }

    /// Claims `request`. When this process does not know the block
    /// yet, `take(first, last)` asks the database for it once (concurrent
    /// claims on the same block wait for that one answer): `Ok(true)` when the
    /// lease is now ours, `Ok(false)` when another process has it.
    pub(crate) async fn claim<F, Fut>(
        &self,
        request: ClaimRequest<'_>,
        take: F,
    ) -> Result<Claim, StoreError>
    where
        F: FnOnce(u32, u32) -> Fut,
        Fut: Future<Output = Result<bool, StoreError>>,
    {
        let ClaimRequest {
            nonce,
            cnonce,
            nc,
            expires_at,
            window,
            ..
        } = request;
        let (first, last) = self.block_of(nc);
        let cell = {
            let mut nonces = self.lock();
            let new = || LeasedNonce {
                counts: NonceCounts::new(expires_at),
                blocks: Vec::new(),
            };
            let Some(entry) = nonces.record(nonce, expires_at, new) else {
                return Ok(Claim::Replayed);
            };
            if entry.counts.below_window(nc, window) {
                return Ok(Claim::Replayed);
            }
            match entry.blocks.iter().find(|(f, _)| *f == first) {
                Some((_, cell)) => match cell.get() {
                    Some(true) => return Ok(self.decide(entry, cnonce, nc, window)),
                    Some(false) => return Ok(Claim::Replayed),
                    None => cell.clone(),
                },
                None => {
                    let cell = Arc::new(OnceCell::new());
                    entry.blocks.push((first, cell.clone()));
                    cell
                }
            }
        };
        // A failed or cancelled take leaves the cell empty: the next claim
        // asks again. A take that committed but was cancelled before it was
        // recorded leaves the block taken and not known as ours: its counts
        // are refused, never accepted twice.
        let ours = *cell.get_or_try_init(|| take(first, last)).await?;
        if !ours {
            return Ok(Claim::Replayed);
        }
        let mut nonces = self.lock();
        match nonces.get_mut(nonce) {
            Some(entry) => Ok(self.decide(entry, cnonce, nc, window)),
            // Removed by the cleanup meanwhile: the nonce has expired.
            None => Ok(Claim::Replayed),
        }
    }

    fn decide(&self, entry: &mut LeasedNonce, cnonce: &str, nc: u32, window: u32) -> Claim {
        let claim = entry.counts.decide(cnonce, nc, window);
        if entry.blocks.len() > 4 {
            // Blocks entirely below the window are never consulted again.
            let (highest, window) = (u64::from(entry.counts.highest()), u64::from(window));
            let size = u64::from(self.size);
            entry
                .blocks
                .retain(|(first, _)| u64::from(*first) + size + window > highest);
            if entry.blocks.len() > MAX_BLOCKS_PER_NONCE {
                // Forget others' blocks: the database still knows they are taken.
                entry.blocks.retain(|(_, cell)| cell.get() != Some(&false));
            }
        }
        claim
    }

    /// Forgets nonces that expired at or before `now`, raising the book's
    /// watermark over them; returns how many.
    pub(crate) fn remove_expired(&self, now: i64) -> u64 {
        self.lock().remove_expired(now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NonceMap<LeasedNonce>> {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A nonce the book forgot while its lease is still ours in the table
    /// (a cleanup of the table that ran with another clock, or not at all) is
    /// refused, not decided again from empty counts.
    #[rocket::async_test]
    async fn a_forgotten_nonce_is_refused_though_its_lease_is_still_ours() {
        let book = LeaseBook::new(16);
        let still_ours = |_, _| async { Ok(true) };
        let request = ClaimRequest::new("n", "c", 1, 100, 64);
        assert_eq!(
            book.claim(request, still_ours).await.unwrap(),
            Claim::Accepted
        );
        assert_eq!(book.remove_expired(1_000), 1);
        assert_eq!(
            book.claim(request, still_ours).await.unwrap(),
            Claim::Replayed
        );
        let other_count = ClaimRequest::new("n", "c", 2, 100, 64);
        assert_eq!(
            book.claim(other_count, still_ours).await.unwrap(),
            Claim::Replayed
        );
        // A nonce that expires later is decided as before.
        let later = ClaimRequest::new("m", "c", 1, 2_000, 64);
        assert_eq!(
            book.claim(later, still_ours).await.unwrap(),
            Claim::Accepted
        );
    }

    #[rocket::async_test]
    async fn one_take_per_block_and_exact_counts_inside() {
        let book = LeaseBook::new(16);
        let takes = AtomicU32::new(0);
        let take = |first: u32, last: u32| {
            takes.fetch_add(1, Ordering::SeqCst);
            assert_eq!(last - first, 15);
            async { Ok(true) }
        };
        for nc in 1..=40 {
            let claim = book
                .claim(ClaimRequest::new("n", "c", nc, i64::MAX, 64), take)
                .await
                .unwrap();
            assert_eq!(claim, Claim::Accepted, "nc {nc}");
        }
        // Blocks [0,15], [16,31], [32,47].
        assert_eq!(takes.load(Ordering::SeqCst), 3);
        let again = book
            .claim(ClaimRequest::new("n", "c", 20, i64::MAX, 64), take)
            .await
            .unwrap();
        assert_eq!(again, Claim::Replayed);
        let other_cnonce = book
            .claim(ClaimRequest::new("n", "d", 20, i64::MAX, 64), take)
            .await
            .unwrap();
        assert_eq!(other_cnonce, Claim::Accepted);
    }

    #[rocket::async_test]
    async fn a_block_held_elsewhere_refuses_and_is_asked_once() {
        let book = LeaseBook::new(16);
        let takes = AtomicU32::new(0);
        let take = |_, _| {
            takes.fetch_add(1, Ordering::SeqCst);
            async { Ok(false) }
        };
        for cnonce in ["a", "b", "c"] {
            let claim = book
                .claim(ClaimRequest::new("n", cnonce, 3, i64::MAX, 64), take)
                .await
                .unwrap();
            assert_eq!(claim, Claim::Replayed);
        }
        assert_eq!(takes.load(Ordering::SeqCst), 1);
    }

    #[rocket::async_test]
    async fn a_failed_take_fails_the_claim_and_is_retried() {
        let book = LeaseBook::new(16);
        let failed = book
            .claim(ClaimRequest::new("n", "c", 1, i64::MAX, 64), |_, _| async {
                Err(StoreError::new("down"))
            })
            .await;
        assert!(failed.is_err());
        let claim = book
            .claim(ClaimRequest::new("n", "c", 1, i64::MAX, 64), |_, _| async {
                Ok(true)
            })
            .await
            .unwrap();
        assert_eq!(claim, Claim::Accepted);
    }

    #[test]
    fn concurrent_claims_on_a_new_block_take_it_once() {
        let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let book = Arc::new(LeaseBook::new(256));
            let takes = Arc::new(AtomicU32::new(0));
            let mut tasks = Vec::new();
            for nc in 1..=64u32 {
                let (book, takes) = (book.clone(), takes.clone());
                tasks.push(rocket::tokio::spawn(async move {
                    let take = |_, _| async {
                        takes.fetch_add(1, Ordering::SeqCst);
                        rocket::tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok(true)
                    };
                    book.claim(ClaimRequest::new("n", "c", nc, i64::MAX, 256), take)
                        .await
                        .unwrap()
                }));
            }
            for task in tasks {
                assert_eq!(task.await.unwrap(), Claim::Accepted);
            }
            assert_eq!(takes.load(Ordering::SeqCst), 1);
        });
    }

    #[rocket::async_test]
    async fn a_busy_nonce_keeps_few_blocks() {
        let book = LeaseBook::new(16);
        for nc in 1..=10_000 {
            let claim = book
                .claim(
                    ClaimRequest::new("n", "c", nc, i64::MAX, 64),
                    |_, _| async { Ok(true) },
                )
                .await
                .unwrap();
            assert_eq!(claim, Claim::Accepted);
        }
        let blocks = book.lock().get_mut("n").map(|e| e.blocks.len()).unwrap();
        // The window (64) spans at most five blocks of 16, plus the current.
        assert!(blocks <= 6, "{blocks} blocks kept");
        assert_eq!(book.remove_expired(i64::MAX), 1);
    }

    use crate::store::{MemoryStore, NonceCountStore, StoreOptions};
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// One claim: which book (process), nonce, cnonce and count.
    fn claims() -> impl Strategy<Value = Vec<(usize, u8, u8, u32)>> {
        prop::collection::vec((0..3usize, 0..2u8, 0..3u8, 0..200u32), 1..400)
    }

    proptest! {
        /// Three processes sharing one lease table: no (nonce, cnonce, nc)
        /// is ever accepted twice, whoever is asked.
        #[test]
        fn processes_sharing_a_table_accept_each_key_at_most_once(claims in claims()) {
            let runtime = rocket::tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let table: Mutex<HashMap<(String, u32), usize>> = Mutex::default();
                let books: Vec<LeaseBook> = (0..3).map(|_| LeaseBook::new(16)).collect();
                let mut accepted = HashSet::new();
                for (who, nonce, cnonce, nc) in claims {
                    let nonce = format!("n{nonce}");
                    let take = |first: u32, _| {
                        let mut table = table.lock().unwrap();
                        let owner = *table.entry((nonce.clone(), first)).or_insert(who);
                        async move { Ok(owner == who) }
                    };
                    let claim = books[who]
                        .claim(ClaimRequest::new(&nonce, &cnonce.to_string(), nc, i64::MAX, 64), take)
                        .await
                        .unwrap();
                    if claim == Claim::Accepted {
                        prop_assert!(
                            accepted.insert((nonce, cnonce, nc)),
                            "accepted twice"
                        );
                    }
                }
                Ok(())
            })?;
        }

        /// A process that gets every lease decides exactly as the memory store.
        #[test]
        fn with_every_lease_it_decides_as_the_memory_store(claims in claims()) {
            let runtime = rocket::tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let book = LeaseBook::new(16);
                let memory = MemoryStore::new(StoreOptions::new("r"));
                for (_, nonce, cnonce, nc) in claims {
                    let (nonce, cnonce) = (format!("n{nonce}"), cnonce.to_string());
                    let leased = book
                        .claim(ClaimRequest::new(&nonce, &cnonce, nc, i64::MAX, 64), |_, _| async { Ok(true) })
                        .await
                        .unwrap();
                    let expected = memory.claim(ClaimRequest::new(&nonce, &cnonce, nc, i64::MAX, 64)).await.unwrap();
                    prop_assert_eq!(leased, expected, "nonce {} cnonce {} nc {}", nonce, cnonce, nc);
                }
                Ok(())
            })?;
        }
    }

    #[test]
    fn blocks_cover_the_whole_range() {
        let book = LeaseBook::new(256);
        assert_eq!(book.block_of(0), (0, 255));
        assert_eq!(book.block_of(256), (256, 511));
        assert_eq!(book.block_of(u32::MAX), (u32::MAX - 255, u32::MAX));
    }
}
