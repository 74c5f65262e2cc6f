//! The request guard: `DigestAuthenticated<U>` verifies the request and
//! yields the user. `Option<DigestAuthenticated<U>>` makes authentication
//! optional.
//!
//! ```no_run
//! use rocket::{get, routes};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};
//!
//! #[get("/me")]
//! fn me(user: DigestAuthenticated<User>) -> String {
//!     format!("hello, {}", user.username)
//! }
//!
//! #[get("/maybe")]
//! fn maybe(user: Option<DigestAuthenticated>) -> String {
//!     user.map_or("hello, stranger".into(), |u| format!("hello, {}", u.username))
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(DigestAuth::fairing()).mount("/", routes![me, maybe])
//! }
//! ```

use std::ops::Deref;

use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::rocket::request::body_of;
use crate::rocket::state::{fairing_missing, DigestAuthState};
use crate::rocket::user::{DigestUser, User};
use crate::rocket::verdict;
use crate::verifier::{Body, Rejection};

/// A request that passed Digest authentication, holding the user `U`.
/// Dereferences to `U`.
#[derive(Debug, Clone)]
pub struct DigestAuthenticated<U = User> {
    user: U,
}

impl<U> DigestAuthenticated<U> {
    /// The user.
    pub fn into_inner(self) -> U {
        self.user
    }
}

impl<U> Deref for DigestAuthenticated<U> {
    type Target = U;
    fn deref(&self) -> &U {
        &self.user
    }
}

/// Verifies `request` once (with the body bytes when a data guard has them)
/// and loads the user.
pub(crate) async fn authenticate<U: DigestUser>(
    request: &Request<'_>,
    body: Body<'_>,
) -> Result<U, Rejection> {
    let Some(state) = DigestAuthState::of(request) else {
        // The Sentinel stops launch before this; fail closed regardless.
        return Err(crate::store::StoreError::new("DigestAuth::fairing() is not attached").into());
    };
    let verified = verdict::reach(request, state, body).await?;
    match U::from_credential(verified.credential.clone(), request).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(Rejection::Challenge { stale: false }),
        Err(e) => Err(e.into()),
    }
}

#[rocket::async_trait]
impl<'r, U: DigestUser> FromRequest<'r> for DigestAuthenticated<U> {
    type Error = Rejection;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Rejection> {
        match authenticate::<U>(request, body_of(request)).await {
            Ok(user) => Outcome::Success(DigestAuthenticated { user }),
            Err(rejection) => Outcome::Error((rejection.status(), rejection)),
        }
    }
}

impl<U> Sentinel for DigestAuthenticated<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "DigestAuthenticated")
    }
}
