//! The user type a route receives: loaded through a trait the app
//! implements, with a default that needs nothing more than the credential.
//!
//! ```
//! use rocket::Request;
//! use rocket_digest_auth::{DigestUser, store::{Credential, StoreError}};
//!
//! /// An app's own user, e.g. with a role looked up elsewhere.
//! struct Admin { name: String }
//!
//! #[rocket::async_trait]
//! impl DigestUser for Admin {
//!     async fn from_credential(
//!         credential: Credential,
//!         _request: &Request<'_>,
//!     ) -> Result<Option<Self>, StoreError> {
//!         // `Ok(None)` refuses the user with a 401 even though the digest was right.
//!         Ok((credential.username == "root").then(|| Admin { name: credential.username }))
//!     }
//! }
//! ```

use chrono::{DateTime, Utc};
use rocket::Request;
use serde::Serialize;

use crate::store::{Credential, StoreError};

/// Turns a verified credential into the app's user type.
#[rocket::async_trait]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a user type of `DigestAuthenticated`",
    label = "does not implement `DigestUser`",
    note = "use `rocket_digest_auth::User`, or implement `DigestUser` for `{Self}` \
            (its `from_credential` loads the app's user for a verified name)"
)]
pub trait DigestUser: Sized + Send + Sync + 'static {
    /// Called after the digest checked out. `Ok(None)` refuses the request
    /// with 401 (a disabled account, say); `Err` answers 503.
    async fn from_credential(
        credential: Credential,
        request: &Request<'_>,
    ) -> Result<Option<Self>, StoreError>;
}

/// The default user: the username and when its token was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The authenticated username.
    pub username: String,
    /// When the user's token was created, where the store records it.
    pub token_created_at: Option<DateTime<Utc>>,
}

#[rocket::async_trait]
impl DigestUser for User {
    async fn from_credential(
        credential: Credential,
        _: &Request<'_>,
    ) -> Result<Option<Self>, StoreError> {
        Ok(Some(User {
            username: credential.username,
            token_created_at: credential.created_at,
        }))
    }
}
