//! The request guard: `DigestAuthenticated<U>` verifies the request and
//! yields the user (see its docs for `Option` and `Result`).

use std::ops::Deref;

use rocket::request::{FromRequest, Outcome};
use rocket::{Ignite, Request, Rocket, Sentinel};

use crate::rocket::state::{fairing_missing, DigestAuthState};
use crate::rocket::user::{DigestUser, Refusal, User};
use crate::rocket::verdict;
use crate::verifier::Rejection;

/// A request that passed Digest authentication, holding the user `U`
/// (by default [`User`]; any [`DigestUser`]). Dereferences to `U`.
///
/// How a route takes it decides what a request that did not pass gets:
///
/// - `DigestAuthenticated<U>`: the request fails with the rejection's status
///   ([`Rejection::status_code`]): 401 with a challenge (the fairing's
///   catcher), 403 when the `DigestUser` refused the user, 400, 429 with
///   `Retry-After`, 503 when a store cannot answer.
/// - `Result<DigestAuthenticated<U>, Rejection>`: the route always runs and
///   sees why. [`Rejection`] is a `Responder`, so `user?` in a route
///   returning `Result<_, Rejection>` answers exactly as the plain guard
///   would (the challenge on a 401, `Retry-After` on a 429).
/// - `Option<DigestAuthenticated<U>>`: the route always runs, and every
///   rejection becomes `None`: a client without credentials is never
///   challenged (a browser never shows its password dialog), and wrong
///   credentials, a refused user or an unavailable store are all treated as
///   anonymous. Wrong guesses still count towards `max_failures`. Use it
///   for pages that only look different to a signed-in user, and give the
///   sign-in itself a route with the plain guard.
///
/// ```
/// use rocket::{get, routes};
/// use rocket::http::Status;
/// use rocket::local::asynchronous::Client;
/// use rocket_digest_auth::{DigestAuth, DigestAuthenticated, Rejection};
///
/// #[get("/me")]
/// fn me(user: DigestAuthenticated) -> String {
///     format!("hello, {}", user.username)
/// }
///
/// #[get("/why")]
/// fn why(user: Result<DigestAuthenticated, Rejection>) -> Result<String, Rejection> {
///     match user {
///         Ok(user) => Ok(format!("hello, {}", user.username)),
///         Err(rejection) => Err(rejection), // answered as the plain guard would
///     }
/// }
///
/// #[get("/maybe")]
/// fn maybe(user: Option<DigestAuthenticated>) -> String {
///     user.map_or("hello, stranger".into(), |u| format!("hello, {}", u.username))
/// }
///
/// # rocket::async_test(async {
/// let figment = rocket::Config::figment().merge(("digest_auth.store", "memory"));
/// let rocket = rocket::custom(figment)
///     .attach(DigestAuth::fairing())
///     .mount("/", routes![me, why, maybe]);
/// let client = Client::tracked(rocket).await.unwrap();
/// assert_eq!(client.get("/me").dispatch().await.status(), Status::Unauthorized);
/// assert_eq!(client.get("/why").dispatch().await.status(), Status::Unauthorized);
/// let maybe = client.get("/maybe").dispatch().await;
/// assert_eq!(maybe.status(), Status::Ok); // no challenge
/// assert_eq!(maybe.into_string().await.unwrap(), "hello, stranger");
/// # });
/// ```
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
    body: Option<&[u8]>,
) -> Result<U, Rejection> {
    let Some(state) = DigestAuthState::of(request) else {
        // The Sentinel stops launch before this; fail closed regardless.
        return Err(crate::store::StoreError::new("DigestAuth::fairing() is not attached").into());
    };
    let verified = verdict::reach(request, state, body).await?;
    let rejection = match U::from_credential(verified.credential.clone(), request).await {
        Ok(user) => return Ok(user),
        Err(Refusal::Unauthenticated) => Rejection::Challenge { stale: false },
        Err(Refusal::Forbidden) => Rejection::Forbidden,
        Err(Refusal::Unavailable(e)) => e.into(),
    };
    verdict::refuse(request, rejection.clone());
    Err(rejection)
}

#[rocket::async_trait]
impl<'r, U: DigestUser> FromRequest<'r> for DigestAuthenticated<U> {
    type Error = Rejection;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Rejection> {
        match authenticate::<U>(request, None).await {
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
