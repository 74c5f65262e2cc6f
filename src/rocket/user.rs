//! The user type a guard yields, and how an app refuses an authenticated user.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rocket::Request;
use serde::Serialize;

use crate::store::{Credential, StoreError};

/// Why [`DigestUser::from_credential`] turned a verified credential down.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// 401 with a fresh challenge, as for a wrong token: the client asks
    /// for credentials again (a disabled account, say).
    #[error("the user is not accepted")]
    Unauthenticated,
    /// 403 without a challenge: the user is who they say, but may not use
    /// this route. Not counted as a failed attempt (the digest was right)
    /// and answered without `WWW-Authenticate` or `Authentication-Info`.
    #[error("the user may not use this resource")]
    Forbidden,
    /// 503: what the user depends on could not be looked up.
    #[error(transparent)]
    Unavailable(#[from] StoreError),
}

/// Turns a verified credential into the app's user type: the `U` of
/// [`DigestAuthenticated<U>`](crate::DigestAuthenticated) and
/// [`DigestAuthenticatedData<U, T>`](crate::DigestAuthenticatedData).
/// Called after the digest checked out, once per guard.
///
/// An `Admin` that admits the username `admin` only: any other user with a
/// right token gets 403 at routes guarded by `DigestAuthenticated<Admin>`.
///
/// ```
/// use rocket::{get, Request};
/// use rocket_digest_auth::{store::Credential, DigestAuthenticated, DigestUser, Refusal};
///
/// struct Admin {
///     name: String,
/// }
///
/// impl DigestUser for Admin {
///     async fn from_credential(credential: Credential, _: &Request<'_>) -> Result<Self, Refusal> {
///         match &*credential.username {
///             "admin" => Ok(Admin { name: credential.username.to_string() }),
///             // A StoreError from a lookup of the app's own converts with `?` (503).
///             _ => Err(Refusal::Forbidden),
///         }
///     }
/// }
///
/// #[get("/admin")]
/// fn admin(user: DigestAuthenticated<Admin>) -> String {
///     format!("hello, {}", user.name)
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a user type of `DigestAuthenticated`",
    label = "does not implement `DigestUser`",
    note = "use `rocket_digest_auth::User`, or implement `DigestUser` for `{Self}` \
            (its `from_credential` loads the app's user for a verified name)"
)]
pub trait DigestUser: Sized + Send + Sync + 'static {
    /// The user for `credential`, or why it is refused: see [`Refusal`].
    /// Implement it as a plain `async fn`: `#[async_trait]` on the impl
    /// changes its signature, which then does not match this one.
    fn from_credential(
        credential: Credential,
        request: &Request<'_>,
    ) -> impl Future<Output = Result<Self, Refusal>> + Send;
}

/// The default user: the username and when its token was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The authenticated username (shared with the store's credential).
    pub username: Arc<str>,
    /// When the user's current token was set, where the store records it.
    pub token_created_at: Option<DateTime<Utc>>,
}

impl DigestUser for User {
    async fn from_credential(credential: Credential, _: &Request<'_>) -> Result<Self, Refusal> {
        Ok(User {
            username: credential.username,
            token_created_at: credential.created_at,
        })
    }
}
