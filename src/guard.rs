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

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::fairing::DigestAuthState;
use crate::protocol::ParseError;
use crate::user::{DigestUser, User};
use crate::verifier::{Body, Rejection, RequestParts, Verified};

/// The result of verifying a request, cached per request so that several
/// guards on one request verify (and spend the nonce count) once.
pub(crate) struct CachedVerification(pub(crate) Option<Result<Verified, Rejection>>);

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
    let Some(state) = request.rocket().state::<DigestAuthState>() else {
        // The Sentinel stops launch before this; fail closed regardless.
        return Err(Rejection::Unavailable(std::sync::Arc::new(
            crate::store::StoreError::new("DigestAuth::fairing() is not attached"),
        )));
    };
    let cached = request
        .local_cache_async(async {
            // Two Authorization headers are refused, not resolved by first-wins.
            let mut headers = request.headers().get("Authorization");
            let authorization = headers.next();
            if headers.next().is_some() {
                let duplicate = ParseError::Duplicate("authorization".into());
                return CachedVerification(Some(Err(Rejection::Malformed(duplicate))));
            }
            // The request-target as received (what `Origin`'s Display writes),
            // copied only when it has a query.
            let uri = request.uri();
            let target = match uri.query() {
                None => std::borrow::Cow::Borrowed(uri.path().as_str()),
                Some(query) => format!("{}?{}", uri.path().as_str(), query.as_str()).into(),
            };
            let parts = RequestParts {
                method: request.method().as_str(),
                target: &target,
                authorization,
                client: if state.verifier().config().trust_ip_header {
                    request.client_ip()
                } else {
                    request.remote().map(|addr| addr.ip())
                },
                body,
            };
            CachedVerification(Some(state.verifier().verify(&parts).await))
        })
        .await;
    let verified = match &cached.0 {
        Some(Ok(verified)) => verified,
        Some(Err(rejection)) => return Err(rejection.clone()),
        None => return Err(Rejection::Challenge { stale: false }),
    };
    match U::from_credential(verified.credential.clone(), request).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(Rejection::Challenge { stale: false }),
        Err(e) => Err(e.into()),
    }
}

/// Whether the request announces a body the request guard cannot read.
pub(crate) fn body_of(request: &Request<'_>) -> Body<'static> {
    use rocket::http::Method;
    let headers = request.headers();
    let empty = match headers.get_one("Content-Length") {
        Some(length) => length.trim() == "0",
        // Without a length, only methods that carry no body are known to be
        // bodiless (an HTTP/2 request may stream a body with neither header).
        None => {
            !headers.contains("Transfer-Encoding")
                && matches!(
                    request.method(),
                    Method::Get | Method::Head | Method::Options | Method::Delete | Method::Trace
                )
        }
    };
    if empty {
        Body::Empty
    } else {
        Body::Unread
    }
}

/// The status a rejection is answered with.
pub(crate) fn status_of(rejection: &Rejection) -> Status {
    Status::from_code(rejection.status_code()).unwrap_or(Status::Unauthorized)
}

#[rocket::async_trait]
impl<'r, U: DigestUser> FromRequest<'r> for DigestAuthenticated<U> {
    type Error = Rejection;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Rejection> {
        match authenticate::<U>(request, body_of(request)).await {
            Ok(user) => Outcome::Success(DigestAuthenticated { user }),
            Err(rejection) => Outcome::Error((status_of(&rejection), rejection)),
        }
    }
}

/// Stops launch when a route uses a guard of this crate without the fairing.
pub(crate) fn fairing_missing(rocket: &Rocket<Ignite>, guard: &str) -> bool {
    if rocket.state::<DigestAuthState>().is_none() {
        rocket::error!(
            "a route uses `{guard}`, but the Digest authentication fairing is not attached: \
             attach it with `rocket::build().attach(DigestAuth::fairing())`"
        );
        return true;
    }
    false
}

impl<U> Sentinel for DigestAuthenticated<U> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "DigestAuthenticated")
    }
}
