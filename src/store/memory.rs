//! The in-memory store: tokens and nonce counts in this process only.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};

use chrono::Utc;

use super::{
    generate_token, Claim, Credential, CredentialStore, HashFunction, NonceCountStore, Secret,
    StoreError, StoreOptions, TokenAdmin,
};

/// Most (cnonce, nc) entries one nonce keeps (at least four windows).
const MAX_ENTRIES_PER_NONCE: u64 = 4096;

/// Tokens and nonce counts in memory: for one process, tests and demos.
///
/// Its nonce counts die with the process, so it reports
/// [`bound_to_process`](NonceCountStore::bound_to_process) and the fairing
/// makes nonces from an earlier process `stale` rather than replayable.
#[derive(Debug)]
pub struct MemoryStore {
    options: StoreOptions,
    users: RwLock<HashMap<String, Credential>>,
    nonces: Mutex<HashMap<String, NonceCounts>>,
}

/// The counts accepted on one nonce, decided in memory: used by the memory
/// store, and by the database store for the counts it has leased.
#[derive(Debug)]
pub(super) struct NonceCounts {
    highest: u32,
    /// `highest` when `seen` was last trimmed: trim again only once it moved.
    trimmed_at: u32,
    seen: HashSet<(String, u32)>,
    pub(super) expires_at: i64,
}

impl NonceCounts {
    pub(super) fn new(expires_at: i64) -> NonceCounts {
        NonceCounts {
            highest: 0,
            trimmed_at: 0,
            seen: HashSet::new(),
            expires_at,
        }
    }

    /// The highest count accepted so far (0 before the first).
    pub(super) fn highest(&self) -> u32 {
        self.highest
    }

    /// Whether `nc` is `window` or more below the highest accepted count.
    pub(super) fn below_window(&self, nc: u32, window: u32) -> bool {
        u64::from(nc) + u64::from(window) <= u64::from(self.highest)
    }

    /// How many (cnonce, nc) entries are kept.
    pub(super) fn entries(&self) -> usize {
        self.seen.len()
    }

    /// Checks and records (cnonce, nc) under the window rule of
    /// [`NonceCountStore`].
    pub(super) fn claim(&mut self, cnonce: &str, nc: u32, window: u32) -> Claim {
        if self.below_window(nc, window) {
            return Claim::Replayed;
        }
        // A client re-using one count with ever new cnonces would otherwise
        // grow the record without bound: past the cap it gets a new nonce.
        let window = u64::from(window);
        if self.seen.len() as u64 >= (4 * window).max(MAX_ENTRIES_PER_NONCE) {
            return Claim::Replayed;
        }
        if !self.seen.insert((cnonce.to_owned(), nc)) {
            return Claim::Replayed;
        }
        self.highest = self.highest.max(nc);
        // Counts below the window are refused before `seen` is consulted, so
        // their entries can go: a busy nonce keeps about two windows' worth
        // instead of one entry per request for its whole lifetime.
        if self.seen.len() as u64 > 2 * window && self.trimmed_at != self.highest {
            let highest = u64::from(self.highest);
            self.seen
                .retain(|&(_, seen)| u64::from(seen) + window > highest);
            self.trimmed_at = self.highest;
        }
        Claim::Accepted
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new(options: StoreOptions) -> MemoryStore {
        MemoryStore {
            options,
            users: RwLock::default(),
            nonces: Mutex::default(),
        }
    }

    /// Adds or replaces a user with a token chosen by the caller.
    pub fn insert_token(&self, username: &str, token: &str) {
        self.insert(username, Secret::Token(token.to_owned()));
    }

    fn insert(&self, username: &str, secret: Secret) {
        let credential = Credential {
            username: username.to_owned(),
            secret,
            created_at: Some(Utc::now()),
        };
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        users.insert(username.to_owned(), credential);
    }

    /// How many nonces have records (for tests of the cleanup).
    pub fn nonce_records(&self) -> usize {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many (cnonce, nc) entries one nonce's record holds.
    pub fn nonce_entries(&self, nonce: &str) -> usize {
        let nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.get(nonce).map_or(0, NonceCounts::entries)
    }
}

#[rocket::async_trait]
impl CredentialStore for MemoryStore {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        Ok(users.get(username).cloned())
    }

    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        // A scan: fine for the few users a memory store holds.
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        Ok(users
            .values()
            .find(|c| self.options.userhash(hash, &c.username) == userhash)
            .cloned())
    }
}

#[rocket::async_trait]
impl NonceCountStore for MemoryStore {
    async fn claim(
        &self,
        nonce: &str,
        cnonce: &str,
        nc: u32,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        // Look up before allocating the key: most claims are on a known nonce.
        if let Some(counts) = nonces.get_mut(nonce) {
            return Ok(counts.claim(cnonce, nc, self.options.nc_window));
        }
        let mut counts = NonceCounts::new(expires_at);
        let claim = counts.claim(cnonce, nc, self.options.nc_window);
        nonces.insert(nonce.to_owned(), counts);
        Ok(claim)
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let mut removed = 0u64;
        nonces.retain(|_, r| {
            let keep = r.expires_at > now;
            if !keep {
                removed += r.entries() as u64;
            }
            keep
        });
        Ok(removed)
    }

    fn bound_to_process(&self) -> bool {
        true
    }
}

#[rocket::async_trait]
impl TokenAdmin for MemoryStore {
    async fn issue_token(&self, username: &str) -> Result<String, StoreError> {
        let token = generate_token();
        // In HA1-only mode the token is returned once and never kept.
        let secret = if self.options.ha1_only {
            let [md5, sha256, sha512_256] =
                Secret::ha1_values(username, &self.options.realm, &token).map(Some);
            Secret::Ha1 {
                md5,
                sha256,
                sha512_256,
            }
        } else {
            Secret::Token(token.clone())
        };
        self.insert(username, secret);
        Ok(token)
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        Ok(users.remove(username).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rocket::async_test]
    async fn a_busy_nonce_keeps_a_bounded_record_and_still_refuses_replays() {
        let store = MemoryStore::new(StoreOptions::new("r"));
        let window = store.options.nc_window;
        for nc in 1..=10_000 {
            let cnonce = format!("c{nc}");
            assert_eq!(
                store.claim("n", &cnonce, nc, i64::MAX).await.unwrap(),
                Claim::Accepted
            );
        }
        assert!(store.nonce_entries("n") <= 2 * window as usize + 1);
        // Inside the window, a repeat is still refused; below it, everything is.
        assert_eq!(
            store.claim("n", "c10000", 10_000, i64::MAX).await.unwrap(),
            Claim::Replayed
        );
        assert_eq!(
            store.claim("n", "c9999", 9_999, i64::MAX).await.unwrap(),
            Claim::Replayed
        );
        assert_eq!(
            store.claim("n", "c5", 5, i64::MAX).await.unwrap(),
            Claim::Replayed
        );
        assert_eq!(
            store.claim("n", "new", 9_990, i64::MAX).await.unwrap(),
            Claim::Accepted
        );
    }

    #[rocket::async_test]
    async fn one_count_with_endless_cnonces_is_capped() {
        let store = MemoryStore::new(StoreOptions::new("r"));
        let mut accepted = 0;
        for i in 0..5_000 {
            let cnonce = format!("c{i}");
            if store.claim("n", &cnonce, 7, i64::MAX).await.unwrap() == Claim::Accepted {
                accepted += 1;
            }
        }
        assert_eq!(accepted, MAX_ENTRIES_PER_NONCE);
        assert_eq!(store.nonce_entries("n") as u64, MAX_ENTRIES_PER_NONCE);
    }
}
