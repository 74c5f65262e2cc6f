//! The crate's error types.

use crate::config::InvalidConfig;
use crate::store::StoreError;

/// Why the fairing (or [`Verifier::new`](crate::verifier::Verifier::new)) could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the key.
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    /// The configuration could not be read (wrong type, unknown key...).
    #[error("{}", crate::config::describe_figment_error(.0))]
    Figment(Box<figment::Error>),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database could not be opened or migrated; `key` names its URL
    /// setting (`databases.digest_auth.url`).
    #[error("cannot use the database of `{key}`: {}", cause(.source))]
    Database {
        /// The setting naming the database: `databases.NAME.url`.
        key: String,
        /// What went wrong.
        source: StoreError,
    },
    /// The fairing cannot start in this Rocket instance as attached.
    #[error("{0}")]
    Attach(String),
}

/// A store error's cause, without the store's own prefix.
fn cause(e: &StoreError) -> String {
    std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string)
}

impl From<figment::Error> for Error {
    fn from(e: figment::Error) -> Error {
        Error::Figment(Box::new(e))
    }
}

/// Why [`Tokens`](crate::Tokens) could not do what it was asked. Each kind
/// has its own status when a route returns it (it is a `Responder`): 400,
/// 404 and 503.
///
/// ```
/// use std::sync::Arc;
/// use rocket_digest_auth::store::{MemoryStore, StoreOptions};
/// use rocket_digest_auth::{TokenError, Tokens};
///
/// # rocket::async_test(async {
/// let tokens = Tokens::new(Arc::new(MemoryStore::new(StoreOptions::new("realm"))));
/// match tokens.info("alice").await {
///     Err(TokenError::UnknownUser(name)) => assert_eq!(name, "alice"),
///     other => panic!("{other:?}"),
/// }
/// assert!(matches!(tokens.set("alice", "").await, Err(TokenError::InvalidInput(_))));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// 400: a username or token the store would not accept; the message
    /// says which rule it breaks.
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// 404: the user has no token.
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// 503: the store could not answer.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}
