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
    #[error("invalid `digest_auth` configuration: {0}")]
    Figment(Box<figment::Error>),
    /// The store could not be opened or migrated.
    #[error("digest_auth store: {0}")]
    Store(#[from] StoreError),
}

impl From<figment::Error> for Error {
    fn from(e: figment::Error) -> Error {
        Error::Figment(Box::new(e))
    }
}
