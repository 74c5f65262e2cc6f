//! The in-memory store: tokens and nonce counts in this process only.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};

use super::counts::{NonceCounts, NonceMap};
use super::{
    Claim, ClaimRequest, Credential, CredentialStore, HashFunction, NonceCountStore, Secret,
    StoreError, StoreOptions, TokenAdmin, TokenInfo,
};

/// A user's credential (its `created_at`: when the current token was set)
/// and when the user first got a token.
#[derive(Debug)]
struct User {
    credential: Credential,
    created_at: DateTime<Utc>,
}

impl User {
    fn info(&self) -> TokenInfo {
        let updated_at = self.credential.created_at.unwrap_or(self.created_at);
        TokenInfo {
            username: self.credential.username.to_string(),
            created_at: self.created_at,
            updated_at,
        }
    }
}

/// Tokens and nonce counts in memory: for one process, tests and demos.
///
/// Its nonce counts die with the process, so it reports
/// [`bound_to_process`](NonceCountStore::bound_to_process) and the fairing
/// makes nonces from an earlier process `stale` rather than replayable.
#[derive(Debug)]
pub struct MemoryStore {
    options: StoreOptions,
    /// Keyed with a random seed: clients choose the usernames looked up.
    users: RwLock<HashMap<String, User, ahash::RandomState>>,
    nonces: Mutex<NonceMap<NonceCounts>>,
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
        self.insert(username, Secret::Token(token.into()));
    }

    fn insert(&self, username: &str, secret: Secret) {
        let now = Utc::now();
        let credential = Credential {
            username: username.into(),
            secret,
            created_at: Some(now),
        };
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let created_at = users.get(username).map_or(now, |user| user.created_at);
        users.insert(
            username.to_owned(),
            User {
                credential,
                created_at,
            },
        );
    }

    /// How many nonces have records.
    #[cfg(any(test, feature = "test-util"))]
    pub fn nonce_records(&self) -> usize {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many (cnonce, nc) entries one nonce's record holds.
    #[cfg(any(test, feature = "test-util"))]
    pub fn nonce_entries(&self, nonce: &str) -> usize {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.get_mut(nonce).map_or(0, |counts| counts.entries())
    }
}

#[rocket::async_trait]
impl CredentialStore for MemoryStore {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        Ok(users.get(username).map(|user| user.credential.clone()))
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
            .map(|user| &user.credential)
            .find(|c| self.options.userhash(hash, &c.username) == userhash)
            .cloned())
    }
}

#[rocket::async_trait]
impl NonceCountStore for MemoryStore {
    async fn claim(&self, r: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        // The watermark and the decision under one lock: one atomic step.
        match nonces.record(r.nonce, r.expires_at, || NonceCounts::new(r.expires_at)) {
            Some(counts) => Ok(counts.decide(r.cnonce, r.nc, r.window)),
            None => Ok(Claim::Replayed),
        }
    }

    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        Ok(nonces.remove_expired(now))
    }

    fn bound_to_process(&self) -> bool {
        true
    }
}

#[rocket::async_trait]
impl TokenAdmin for MemoryStore {
    async fn set_token(&self, username: &str, token: &str) -> Result<(), StoreError> {
        // In HA1-only mode the token is never kept.
        let secret = if self.options.ha1_only {
            let [md5, sha256, sha512_256] =
                Secret::ha1_values(username, &self.options.realm, token).map(|h| Some(h.into()));
            Secret::Ha1 {
                md5,
                sha256,
                sha512_256,
            }
        } else {
            Secret::Token(token.into())
        };
        self.insert(username, secret);
        Ok(())
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        Ok(users.remove(username).is_some())
    }

    async fn token_info(&self, username: &str) -> Result<Option<TokenInfo>, StoreError> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        Ok(users.get(username).map(User::info))
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<TokenInfo> = users.values().map(User::info).collect();
        list.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counts::max_entries_per_nonce;

    #[rocket::async_test]
    async fn a_busy_nonce_keeps_a_bounded_record_and_still_refuses_replays() {
        let store = MemoryStore::new(StoreOptions::new("r"));
        let window = crate::store::DEFAULT_NC_WINDOW;
        let claim = |cnonce: &'static str, nc| {
            let request = ClaimRequest::new("n", cnonce, nc, i64::MAX, window);
            let claim = store.claim(request);
            async move { claim.await.unwrap() }
        };
        for nc in 1..=10_000 {
            let cnonce = format!("c{nc}");
            let request = ClaimRequest::new("n", &cnonce, nc, i64::MAX, window);
            assert_eq!(store.claim(request).await.unwrap(), Claim::Accepted);
        }
        assert!(store.nonce_entries("n") <= 2 * window as usize + 1);
        // Inside the window, a repeat is still refused; below it, everything is.
        assert_eq!(claim("c10000", 10_000).await, Claim::Replayed);
        assert_eq!(claim("c9999", 9_999).await, Claim::Replayed);
        assert_eq!(claim("c5", 5).await, Claim::Replayed);
        assert_eq!(claim("new", 9_990).await, Claim::Accepted);
    }

    #[rocket::async_test]
    async fn one_count_with_endless_cnonces_is_capped() {
        let store = MemoryStore::new(StoreOptions::new("r"));
        let window = crate::store::DEFAULT_NC_WINDOW;
        let mut accepted = 0;
        for i in 0..5_000 {
            let cnonce = format!("c{i}");
            let request = ClaimRequest::new("n", &cnonce, 7, i64::MAX, window);
            if store.claim(request).await.unwrap() == Claim::Accepted {
                accepted += 1;
            }
        }
        assert_eq!(accepted, max_entries_per_nonce(window));
        assert_eq!(
            store.nonce_entries("n") as u64,
            max_entries_per_nonce(window)
        );
    }
}
