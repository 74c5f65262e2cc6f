//! The token API of the built-in store: create, rotate and revoke users'
//! tokens (their Digest "passwords").
//!
//! ```no_run
//! use rocket::{post, State};
//! use rocket_digest_auth::Tokens;
//!
//! // An admin route; guard it with the app's own authorization.
//! #[post("/tokens/<username>")]
//! async fn issue(tokens: &State<Tokens>, username: &str) -> Option<String> {
//!     tokens.issue(username).await.ok()
//! }
//! ```

use std::sync::Arc;

use crate::store::{StoreError, TokenAdmin};

/// Create, rotate and revoke users' tokens in the built-in store. Managed by
/// the fairing when a built-in credential store is in use: take
/// `&State<Tokens>` in a route, or `rocket.state::<Tokens>()` after ignite.
#[derive(Clone)]
pub struct Tokens(Arc<dyn TokenAdmin>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    /// Wraps a store.
    pub fn new(admin: Arc<dyn TokenAdmin>) -> Tokens {
        Tokens(admin)
    }

    /// Creates `username`'s token, or rotates it if there is one; returns
    /// the new token (the old one stops working at once).
    pub async fn issue(&self, username: &str) -> Result<String, StoreError> {
        if username.is_empty() || username.len() > 256 || username.chars().any(char::is_control) {
            return Err(StoreError::new(
                "a username must be 1 to 256 bytes without control characters",
            ));
        }
        self.0.issue_token(username).await
    }

    /// Revokes `username`'s token; returns whether there was one.
    pub async fn revoke(&self, username: &str) -> Result<bool, StoreError> {
        self.0.revoke_token(username).await
    }
}
