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
