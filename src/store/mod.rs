//! Where secrets come from and where nonce counts live: two traits an app can
//! implement, and the built-in stores (memory, SQLite, PostgreSQL, MySQL/MariaDB).
//!
//! The secret lookup is [`CredentialStore`]; the nonce count is one atomic
//! [`NonceCountStore::claim`], never a get followed by a set, so two requests
//! cannot both win with the same count.
//!
//! Whether a count is accepted is decided by one rule, the engine's
//! `NonceCounts::decide` (see [`counts`]): the memory store runs it directly,
//! the database store runs it in memory over leased blocks of counts or as
//! its SQL translation row by row, and the shared suite
//! (`nonce_count_store_suite!`, feature
//! `test-util`) checks every store against it.
//!
//! ```
//! use rocket_digest_auth::store::{
//!     Claim, ClaimRequest, MemoryStore, NonceCountStore, StoreOptions, TokenAdmin,
//!     DEFAULT_NC_WINDOW,
//! };
//!
//! # rocket::async_test(async {
//! let store = MemoryStore::new(StoreOptions::new("example"));
//! let token = store.issue_token("alice").await.unwrap();
//! assert_eq!(token.len(), 40);
//!
//! let claim = ClaimRequest::new("nonce", "cnonce", 1, i64::MAX, DEFAULT_NC_WINDOW);
//! assert_eq!(store.claim(claim).await.unwrap(), Claim::Accepted);
//! assert_eq!(store.claim(claim).await.unwrap(), Claim::Replayed);
//! # });
//! ```

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;

use crate::protocol::{digest, Algorithm, HashFunction};

mod cache;
pub mod counts;
#[cfg(feature = "test-util")]
pub mod failure_suite;
pub mod failures;
mod htdigest;
mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "test-util")]
pub mod suite;

#[cfg(feature = "redis")]
pub use self::redis::{RedisOptions, RedisStore};
pub use cache::{CachedCredentials, DEFAULT_MAX_CACHED_CREDENTIALS};
pub use counts::ClaimRequest;
pub use failures::{FailureCount, FailureKey, FailureStore, Locks};
pub use htdigest::HtdigestFile;
pub use memory::MemoryStore;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use sql::{
    SqlPool, SqlStore, DEFAULT_MYSQL_NC_LEASE, DEFAULT_SQLITE_NC_LEASE, MIGRATIONS_TABLE,
};

/// A store failure: the database is unreachable, a query failed... The
/// request it happened on fails closed with 503.
/// The cause is [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[error("digest auth store: {0}")]
pub struct StoreError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps any error (or message).
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
        StoreError(e.into())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::new(e)
    }
}

/// The secret a user authenticates with. Its text is shared (`Arc<str>`):
/// a store hands out copies of a credential per request without allocating.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The token itself (the Digest "password").
    Token(Arc<str>),
    /// Only HA1 values, `H(username:realm:token)` per hash function, for the
    /// realm they were made for. A missing one means that algorithm cannot be
    /// used for this user.
    Ha1 {
        /// HA1 with MD5.
        md5: Option<Arc<str>>,
        /// HA1 with SHA-256.
        sha256: Option<Arc<str>>,
        /// HA1 with SHA-512/256.
        sha512_256: Option<Arc<str>>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Token(_) => f.write_str("Token(<redacted>)"),
            Secret::Ha1 { .. } => f.write_str("Ha1(<redacted>)"),
        }
    }
}

impl Secret {
    /// The stored HA1 for `hash`; `None` for a token or a missing HA1.
    pub(crate) fn stored_ha1(&self, hash: HashFunction) -> Option<&str> {
        let Secret::Ha1 {
            md5,
            sha256,
            sha512_256,
        } = self
        else {
            return None;
        };
        match hash {
            HashFunction::Md5 => md5.as_deref(),
            HashFunction::Sha256 => sha256.as_deref(),
            HashFunction::Sha512_256 => sha512_256.as_deref(),
        }
    }

    /// HA1 values of `token` for MD5, SHA-256 and SHA-512/256 (in the order
    /// of [`HashFunction::ALL`]).
    pub fn ha1_values(username: &str, realm: &str, token: &str) -> [String; 3] {
        HashFunction::ALL.map(|h| digest::ha1(h, username, realm, token))
    }
}

/// A user's credential as a [`CredentialStore`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The real username (also when the client sent a userhash).
    pub username: Arc<str>,
    /// The secret.
    pub secret: Secret,
    /// When the token was created, where the store knows it.
    pub created_at: Option<DateTime<Utc>>,
}

impl Credential {
    /// HA1 for `alg` (before any `-sess` step), or `None` when this credential
    /// cannot serve that algorithm.
    pub fn ha1(&self, alg: Algorithm, realm: &str) -> Option<String> {
        match &self.secret {
            Secret::Token(token) => Some(digest::ha1(alg, &self.username, realm, token)),
            ha1s @ Secret::Ha1 { .. } => ha1s.stored_ha1(alg.hash_function()).map(str::to_owned),
        }
    }

    /// The credential of `username` with `token`, created at an unknown time.
    pub fn token(username: &str, token: &str) -> Credential {
        Credential {
            username: username.into(),
            secret: Secret::Token(token.into()),
            created_at: None,
        }
    }
}

/// Where the secret for a username comes from.
#[rocket::async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a credential store",
    note = "`DigestAuth::with_credential_store` takes a type implementing `CredentialStore` \
            (`#[rocket::async_trait] impl CredentialStore for {Self}`)"
)]
pub trait CredentialStore: Send + Sync + 'static {
    /// The credential of `username`, `Ok(None)` when there is no such user.
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError>;

    /// The credential whose userhash `H(username:realm)` under `hash` is
    /// `userhash`. The default finds nobody: override it to serve clients
    /// that send `userhash=true`.
    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let _ = (hash, userhash);
        Ok(None)
    }

    /// A number that changes whenever any credential changes, for stores
    /// that can tell cheaply (the database store: one row bumped by trigger on
    /// every change to the tokens table). [`CachedCredentials`] reads it at
    /// most every `recheck` and forgets everything when it moved. The default,
    /// `Ok(None)`, means the store cannot tell; cached answers then live for
    /// the cache's TTL.
    async fn credentials_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// The hash functions this store can serve. A store holding only MD5
    /// HA1 values (an htdigest file) returns `&[HashFunction::Md5]`, and a
    /// configuration that offers other algorithms is refused at ignite.
    fn hash_functions(&self) -> &'static [HashFunction] {
        &HashFunction::ALL
    }
}

/// The outcome of a [`NonceCountStore::claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First use of this (nonce, cnonce, nc), within the window: recorded.
    Accepted,
    /// Seen before, or below the window: refused.
    Replayed,
}

/// Where nonce counts live: every (nonce, cnonce, nc) is accepted once.
///
/// A store decides each [`ClaimRequest`] by the engine's rule (see
/// [`counts`]): refused when the same (nonce, cnonce, nc) was accepted
/// before, when `nc` is `window` or more below the highest `nc` accepted on
/// that nonce, or when the nonce already holds
/// [`max_entries_per_nonce`](counts::max_entries_per_nonce)`(window)` entries
/// inside the window. Everything else is accepted in any order, so requests
/// in flight together on one nonce may arrive out of order. The shared suite
/// (`nonce_count_store_suite!`) checks a
/// store against the rule.
///
/// Deleting records must never make a spent count acceptable again, whatever
/// the clocks of the instances say (see [`counts`], "Forgetting"): a store
/// keeps a "deleted through" watermark, the highest `expires_at` whose
/// records it deleted, raises it in the same atomic step as the deletion,
/// and refuses (`Replayed`, so `stale=true`) every claim whose `expires_at`
/// lies at or below it, in the same atomic step as the claim. A store with a
/// clock of its own (a database server) should also judge expiry by that
/// clock, in the claim and in the cleanup, rather than by the `now` of the
/// instance that asks. The suite's `forgotten_nonces_stay_refused` checks it.
#[rocket::async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a nonce-count store",
    note = "`DigestAuth::with_nonce_count_store` takes a type implementing `NonceCountStore` \
            (`#[rocket::async_trait] impl NonceCountStore for {Self}`)"
)]
pub trait NonceCountStore: Send + Sync + 'static {
    /// Checks and records in one atomic step; refuses a nonce at or below
    /// the watermark in the same step.
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Claim, StoreError>;

    /// Deletes the records of nonces that expired at or before `now` (a
    /// store with its own clock deletes no further than that clock says),
    /// raising the watermark over them in the same atomic step; returns how
    /// many nonces' records went (the unit every store counts in). Called
    /// periodically by the fairing.
    async fn remove_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Whether the records die with the process (an in-memory store). The
    /// fairing then binds nonces to the process, so that after a restart old
    /// nonces get `stale=true` instead of being replayable.
    fn bound_to_process(&self) -> bool {
        false
    }

    /// The generation of the records, for a store that can lose them all at
    /// once while the fleet runs (Redis): signed into every nonce minted,
    /// and the store refuses nonces of another generation, so that a loss
    /// makes old nonces stale instead of replayable. `None` (the default):
    /// nonces carry none.
    fn nonce_generation(&self) -> Option<[u8; 4]> {
        None
    }
}

/// What a store records about a user's token, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// The username.
    pub username: String,
    /// When the user first got a token; rotations keep it.
    pub created_at: DateTime<Utc>,
    /// When the current token was set (issued, rotated or imported).
    pub updated_at: DateTime<Utc>,
}

/// Creating, rotating, importing, listing and revoking users' tokens in a
/// built-in store. [`Tokens`](crate::Tokens) checks its arguments before it
/// calls these; an `Err` here always means the store could not answer.
#[rocket::async_trait]
pub trait TokenAdmin: Send + Sync + 'static {
    /// Creates a token for a new user, or rotates an existing user's token;
    /// returns the new token. The old token stops working at once.
    async fn issue_token(&self, username: &str) -> Result<String, StoreError> {
        let token = generate_token();
        self.set_token(username, &token).await?;
        Ok(token)
    }

    /// Sets `username`'s token to `token` (creating the user or replacing
    /// its token), e.g. to import tokens from another system.
    async fn set_token(&self, username: &str, token: &str) -> Result<(), StoreError>;

    /// Revokes `username`'s token; returns whether there was one.
    async fn revoke_token(&self, username: &str) -> Result<bool, StoreError>;

    /// What is recorded about `username`'s token, `None` when it has none.
    async fn token_info(&self, username: &str) -> Result<Option<TokenInfo>, StoreError>;

    /// Every user with a token, by username.
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
}

/// A fresh token: 160 random bits as 40 hex digits.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the built-in stores need to know of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The realm: userhash lookups and HA1 values depend on it.
    pub realm: String,
    /// Keep only HA1 values, not tokens (database store only).
    pub ha1_only: bool,
    /// Database store: how many counts of a nonce this process leases at a
    /// time and then decides in memory (`0`: one database write per
    /// request). `None`: the backend's default, 256 on SQLite and MySQL, 0
    /// on PostgreSQL. See the crate docs on `nc_lease`.
    pub nc_lease: Option<u32>,
}

impl StoreOptions {
    /// Options for `realm`, storing tokens.
    pub fn new(realm: impl Into<String>) -> StoreOptions {
        StoreOptions {
            realm: realm.into(),
            ha1_only: false,
            nc_lease: None,
        }
    }

    /// The userhash of `username` under `hash` for this realm.
    pub fn userhash(&self, hash: HashFunction, username: &str) -> String {
        digest::userhash(hash, username, &self.realm)
    }
}

/// The default `nc` window: how far below the highest accepted count a count
/// may arrive and still be accepted once.
pub const DEFAULT_NC_WINDOW: u32 = 256;
