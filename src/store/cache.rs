//! A caching [`CredentialStore`] wrapper: credential lookups (by username
//! and by userhash, found or not) are answered from memory for up to `ttl`,
//! so that a database store costs one query per user per `ttl` instead of
//! one per request.
//!
//! Tokens issued, rotated or revoked *through the wrapper* (its
//! [`TokenAdmin`] impl, which the fairing's `Tokens` should use) empty the
//! cache at once: this process never accepts a revoked or rotated token.
//!
//! Changes made by another process (another instance behind a load balancer,
//! `server create-token` run from a shell, SQL by hand) are seen through
//! [`CredentialStore::credentials_version`]: with [`with_recheck`]
//! (`CachedCredentials::with_recheck`), the wrapper reads that number at most
//! once per `recheck` interval and forgets every answer when it moved, so such
//! a change applies here within `recheck` (twice `recheck` while one read is
//! slow; when the store cannot answer, lookups fail rather than serve older
//! answers).
//! For a store that cannot tell (its `credentials_version` is `None`), another
//! process's change applies within `ttl`.
//!
//! [`with_recheck`]: CachedCredentials::with_recheck
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rocket_digest_auth::store::{CachedCredentials, CredentialStore, MemoryStore, StoreOptions, TokenAdmin};
//!
//! # rocket::async_test(async {
//! let store = Arc::new(MemoryStore::new(StoreOptions::new("example")));
//! let cached = CachedCredentials::new(store.clone(), Duration::from_secs(5));
//! let token = cached.issue_token("alice").await.unwrap();
//! assert!(cached.credential("alice").await.unwrap().is_some());
//! assert!(cached.revoke_token("alice").await.unwrap());
//! assert!(cached.credential("alice").await.unwrap().is_none()); // at once
//! # let _ = token;
//! # });
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{Credential, CredentialStore, HashFunction, StoreError, TokenAdmin, TokenInfo};

/// What a lookup was keyed on.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    Username(&'a str),
    Userhash(HashFunction, &'a str),
}

/// The cached answers by what they were looked up with. Plain names, the
/// common case, are found without copying the name; both maps are keyed
/// with a random seed, since clients choose what is looked up.
#[derive(Debug, Default)]
struct Entries {
    by_name: HashMap<String, Entry, ahash::RandomState>,
    by_userhash: HashMap<(HashFunction, String), Entry, ahash::RandomState>,
}

impl Entries {
    fn get(&self, key: Key<'_>) -> Option<&Entry> {
        match key {
            Key::Username(name) => self.by_name.get(name),
            Key::Userhash(h, userhash) => self.by_userhash.get(&(h, userhash.to_owned())),
        }
    }

    fn contains(&self, key: Key<'_>) -> bool {
        self.get(key).is_some()
    }

    fn insert(&mut self, key: Key<'_>, entry: Entry) {
        match key {
            Key::Username(name) => self.by_name.insert(name.to_owned(), entry),
            Key::Userhash(h, userhash) => self.by_userhash.insert((h, userhash.to_owned()), entry),
        };
    }

    fn len(&self) -> usize {
        self.by_name.len() + self.by_userhash.len()
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.by_name.retain(|_, e| keep(e));
        self.by_userhash.retain(|_, e| keep(e));
    }

    fn clear(&mut self) {
        self.by_name.clear();
        self.by_userhash.clear();
    }
}

#[derive(Debug, Clone)]
struct Entry {
    credential: Option<Credential>,
    fetched: Instant,
}

/// Caches another [`CredentialStore`]'s answers for up to a TTL; see the
/// module documentation for what invalidates them.
#[derive(Debug)]
pub struct CachedCredentials<S: ?Sized> {
    inner: Arc<S>,
    ttl: Duration,
    max_entries: usize,
    entries: RwLock<Entries>,
    /// Bumped by every invalidation: a lookup that raced with one does not
    /// store what it read.
    generation: AtomicU64,
    recheck: Option<Recheck>,
}

/// When the store's credentials version was last read, and what it was.
#[derive(Debug)]
struct Recheck {
    every: Duration,
    last: Mutex<(Option<Instant>, Option<i64>)>,
    /// One request reads the version at a time; the others use the cache
    /// meanwhile, for at most twice `every` after the last good read.
    reading: AtomicBool,
}

/// Clears [`Recheck::reading`] also when the read fails or is cancelled.
struct Reading<'a>(&'a AtomicBool);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Default bound on cached lookups (found and not found).
pub const DEFAULT_MAX_CACHED_CREDENTIALS: usize = 10_000;

impl<S: ?Sized> CachedCredentials<S> {
    /// Caches `inner`'s answers for `ttl` (zero: no caching), keeping at
    /// most [`DEFAULT_MAX_CACHED_CREDENTIALS`] of them.
    pub fn new(inner: Arc<S>, ttl: Duration) -> CachedCredentials<S> {
        Self::with_capacity(inner, ttl, DEFAULT_MAX_CACHED_CREDENTIALS)
    }

    /// As [`new`](Self::new), keeping at most `max_entries` answers.
    pub fn with_capacity(inner: Arc<S>, ttl: Duration, max_entries: usize) -> CachedCredentials<S> {
        CachedCredentials {
            inner,
            ttl,
            max_entries,
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            recheck: None,
        }
    }

    /// Also reads the store's
    /// [`credentials_version`](CredentialStore::credentials_version) at most
    /// once per `every` and forgets every answer when it moved: changes made
    /// by other processes then apply here within `every`.
    pub fn with_recheck(mut self, every: Duration) -> CachedCredentials<S> {
        self.recheck = Some(Recheck {
            every,
            last: Mutex::new((None, None)),
            reading: AtomicBool::new(false),
        });
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// How long an answer is reused.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets every cached answer (call it after changing tokens behind the
    /// wrapper's back).
    pub fn invalidate(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// How many answers are cached.
    #[cfg(any(test, feature = "test-util"))]
    pub fn cached(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn get(&self, key: Key<'_>) -> Option<Option<Credential>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| e.fetched.elapsed() < self.ttl)
            .map(|e| e.credential.clone())
    }

    fn put(&self, key: Key<'_>, credential: Option<Credential>, generation: u64, fetched: Instant) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Read before an invalidation that happened while we were asking:
        // what we read may be the old token.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= self.max_entries && !entries.contains(key) {
            entries.retain(|e| e.fetched.elapsed() < self.ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                credential,
                fetched,
            },
        );
    }
}

impl<S: CredentialStore + ?Sized> CachedCredentials<S> {
    /// Reads the store's credentials version when `every` has passed since
    /// the last read, and empties the cache when it moved.
    async fn recheck(&self, recheck: &Recheck) -> Result<(), StoreError> {
        let due = |last: &(Option<Instant>, Option<i64>)| {
            last.0.is_none_or(|at| at.elapsed() >= recheck.every)
        };
        if !due(&recheck.last.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(());
        }
        if recheck.reading.swap(true, Ordering::SeqCst) {
            // Someone is reading it now: use the cache meanwhile, but only
            // while the last good read is under two intervals old. Past that
            // (the store is slow or down) read it too, and fail with it:
            // answers are never older than twice the interval.
            let known = recheck.last.lock().unwrap_or_else(|e| e.into_inner()).0;
            if known.is_some_and(|at| at.elapsed() < 2 * recheck.every) {
                return Ok(());
            }
        }
        let _reading = Reading(&recheck.reading);
        let asked = Instant::now();
        let version = self.inner.credentials_version().await?;
        let mut last = recheck.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.1 != version {
            self.invalidate();
        }
        *last = (Some(asked), version);
        Ok(())
    }

    async fn lookup(&self, key: Key<'_>) -> Result<Option<Credential>, StoreError> {
        if self.ttl.is_zero() {
            return match key {
                Key::Username(u) => self.inner.credential(u).await,
                Key::Userhash(h, u) => self.inner.credential_by_userhash(h, u).await,
            };
        }
        if let Some(recheck) = &self.recheck {
            self.recheck(recheck).await?;
        }
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        // The age counts from before the query: an answer is never reused
        // longer than `ttl` after the store was asked.
        let fetched = Instant::now();
        let credential = match key {
            Key::Username(u) => self.inner.credential(u).await?,
            Key::Userhash(h, u) => self.inner.credential_by_userhash(h, u).await?,
        };
        self.put(key, credential.clone(), generation, fetched);
        Ok(credential)
    }
}

#[rocket::async_trait]
impl<S: CredentialStore + ?Sized> CredentialStore for CachedCredentials<S> {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        self.lookup(Key::Username(username)).await
    }

    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        self.lookup(Key::Userhash(hash, userhash)).await
    }

    async fn credentials_version(&self) -> Result<Option<i64>, StoreError> {
        self.inner.credentials_version().await
    }

    fn hash_functions(&self) -> &'static [HashFunction] {
        self.inner.hash_functions()
    }
}

#[rocket::async_trait]
impl<S: TokenAdmin + ?Sized> TokenAdmin for CachedCredentials<S> {
    async fn set_token(&self, username: &str, token: &str) -> Result<(), StoreError> {
        let result = self.inner.set_token(username, token).await;
        // Also on failure: the change may have happened before the error.
        self.invalidate();
        result
    }

    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError> {
        let result = self.inner.revoke_token(username).await;
        self.invalidate();
        result
    }

    async fn token_info(&self, username: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.inner.token_info(username).await
    }

    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.inner.list_tokens().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, StoreOptions};

    fn stores(ttl: Duration) -> (Arc<MemoryStore>, CachedCredentials<MemoryStore>) {
        let inner = Arc::new(MemoryStore::new(StoreOptions::new("realm")));
        let cached = CachedCredentials::new(inner.clone(), ttl);
        (inner, cached)
    }

    fn token_of(c: &Option<Credential>) -> Option<String> {
        match c.as_ref().map(|c| &c.secret) {
            Some(crate::store::Secret::Token(t)) => Some(t.to_string()),
            _ => None,
        }
    }

    /// A memory store with a version that can be bumped or made to fail
    /// (slowly, as an unreachable database does).
    struct Versioned {
        inner: MemoryStore,
        version: std::sync::atomic::AtomicI64,
        down: AtomicBool,
    }

    #[rocket::async_trait]
    impl CredentialStore for Versioned {
        async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::new("down"));
            }
            self.inner.credential(username).await
        }

        async fn credentials_version(&self) -> Result<Option<i64>, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                rocket::tokio::time::sleep(Duration::from_millis(300)).await;
                return Err(StoreError::new("down"));
            }
            Ok(Some(self.version.load(Ordering::SeqCst)))
        }
    }

    #[test]
    fn a_recheck_applies_changes_and_never_serves_answers_older_than_two_intervals() {
        let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Arc::new(Versioned {
                inner: MemoryStore::new(StoreOptions::new("realm")),
                version: 0.into(),
                down: false.into(),
            });
            store.inner.insert_token("alice", "one");
            let every = Duration::from_millis(100);
            let cached = Arc::new(
                CachedCredentials::new(store.clone(), Duration::from_secs(60)).with_recheck(every),
            );
            let token = |c: Result<Option<Credential>, StoreError>| token_of(&c.unwrap());
            assert_eq!(
                token(cached.credential("alice").await).as_deref(),
                Some("one")
            );

            // A change with a new version applies after the interval.
            store.inner.insert_token("alice", "two");
            store.version.store(1, Ordering::SeqCst);
            rocket::tokio::time::sleep(every + Duration::from_millis(10)).await;
            assert_eq!(
                token(cached.credential("alice").await).as_deref(),
                Some("two")
            );

            // The store goes down: one lookup reads the version (slowly)...
            store.down.store(true, Ordering::SeqCst);
            rocket::tokio::time::sleep(every + Duration::from_millis(10)).await;
            let reader = rocket::tokio::spawn({
                let cached = cached.clone();
                async move { cached.credential("alice").await.is_err() }
            });
            rocket::tokio::time::sleep(Duration::from_millis(20)).await;
            // ...the others still use the cache within two intervals...
            assert_eq!(
                token(cached.credential("alice").await).as_deref(),
                Some("two")
            );
            // ...and past them read it too, and fail with it.
            rocket::tokio::time::sleep(every).await;
            assert!(cached.credential("alice").await.is_err());
            assert!(reader.await.unwrap(), "the reader's lookup failed too");
        });
    }

    #[rocket::async_test]
    async fn answers_are_reused_until_the_ttl() {
        let (inner, cached) = stores(Duration::from_millis(300));
        inner.insert_token("alice", "one");
        assert_eq!(
            token_of(&cached.credential("alice").await.unwrap()).as_deref(),
            Some("one")
        );
        // Changed behind the wrapper's back: the cached answer stands...
        inner.insert_token("alice", "two");
        assert_eq!(
            token_of(&cached.credential("alice").await.unwrap()).as_deref(),
            Some("one")
        );
        // ...until the TTL has passed.
        rocket::tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            token_of(&cached.credential("alice").await.unwrap()).as_deref(),
            Some("two")
        );
    }

    #[rocket::async_test]
    async fn unknown_users_are_cached_too_and_issue_clears_them() {
        let (_, cached) = stores(Duration::from_secs(60));
        assert!(cached.credential("bob").await.unwrap().is_none());
        assert_eq!(cached.cached(), 1);
        let token = cached.issue_token("bob").await.unwrap();
        assert_eq!(
            token_of(&cached.credential("bob").await.unwrap()),
            Some(token)
        );
    }

    #[rocket::async_test]
    async fn rotation_and_revocation_through_the_wrapper_apply_at_once() {
        let (_, cached) = stores(Duration::from_secs(60));
        let first = cached.issue_token("carol").await.unwrap();
        assert_eq!(
            token_of(&cached.credential("carol").await.unwrap()),
            Some(first.clone())
        );
        let second = cached.issue_token("carol").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(
            token_of(&cached.credential("carol").await.unwrap()),
            Some(second)
        );
        assert!(cached.revoke_token("carol").await.unwrap());
        assert!(cached.credential("carol").await.unwrap().is_none());
    }

    #[rocket::async_test]
    async fn userhash_lookups_are_cached_and_invalidated() {
        let (inner, cached) = stores(Duration::from_secs(60));
        cached.issue_token("dave").await.unwrap();
        let uh = StoreOptions::new("realm").userhash(HashFunction::Sha256, "dave");
        let found = cached
            .credential_by_userhash(HashFunction::Sha256, &uh)
            .await
            .unwrap();
        assert_eq!(found.map(|c| c.username).as_deref(), Some("dave"));
        assert!(cached.revoke_token("dave").await.unwrap());
        assert!(cached
            .credential_by_userhash(HashFunction::Sha256, &uh)
            .await
            .unwrap()
            .is_none());
        assert_eq!(inner.nonce_records(), 0);
    }

    #[rocket::async_test]
    async fn a_lookup_racing_an_invalidation_is_not_stored() {
        let (inner, cached) = stores(Duration::from_secs(60));
        inner.insert_token("erin", "old");
        let generation = cached.generation.load(Ordering::SeqCst);
        let read = inner.credential("erin").await.unwrap();
        // The token changes and the cache is invalidated before the
        // lookup that read the old token stores it.
        inner.insert_token("erin", "new");
        cached.invalidate();
        cached.put(Key::Username("erin"), read, generation, Instant::now());
        assert_eq!(cached.cached(), 0);
        assert_eq!(
            token_of(&cached.credential("erin").await.unwrap()).as_deref(),
            Some("new")
        );
    }

    #[rocket::async_test]
    async fn the_cache_stays_bounded() {
        let inner = Arc::new(MemoryStore::new(StoreOptions::new("realm")));
        let cached = CachedCredentials::with_capacity(inner, Duration::from_secs(60), 8);
        for i in 0..100 {
            assert!(cached
                .credential(&format!("nobody{i}"))
                .await
                .unwrap()
                .is_none());
            assert!(cached.cached() <= 8);
        }
    }

    #[rocket::async_test]
    async fn a_zero_ttl_caches_nothing() {
        let (inner, cached) = stores(Duration::ZERO);
        inner.insert_token("frank", "one");
        assert!(cached.credential("frank").await.unwrap().is_some());
        assert_eq!(cached.cached(), 0);
    }
}
