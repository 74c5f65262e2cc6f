//! The catchers: a 401 with one `WWW-Authenticate` challenge per configured
//! algorithm (in preference order, with a fresh nonce and `stale=true` where
//! it applies), and a 429 with `Retry-After`. Each answers with the
//! request's cached [`Rejection`](crate::Rejection), with the body
//! [`error_body`] writes: JSON when the client prefers it, the app's own
//! with [`ErrorBodies`].
//!
//! The fairing registers both at `/` unless `catcher = false`, which turns
//! both off: an app that registers its own 401 catcher builds the challenge
//! with [`ChallengeResponse`], and registers [`too_many_attempts`] (or its
//! own 429 catcher) to keep `Retry-After`.
//!
//! ```no_run
//! use rocket::{catch, catchers, Request};
//! use rocket_digest_auth::{catcher::{self, ChallengeResponse}, DigestAuth};
//!
//! #[catch(401)]
//! fn my_401(request: &Request<'_>) -> ChallengeResponse {
//!     ChallengeResponse::for_request(request).with_body("Please sign in.\n")
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     // With `catcher = false` in [digest_auth].
//!     rocket::build()
//!         .attach(DigestAuth::fairing())
//!         .register("/", catchers![my_401, catcher::too_many_attempts])
//! }
//! ```

use rocket::response::Responder;
use rocket::{catch, Request};

pub use crate::rocket::responder::{error_body, ChallengeResponse, ErrorBodies, UNAUTHORIZED_BODY};
use crate::rocket::{responder, verdict};
use crate::verifier::Rejection;

/// The 401 catcher the fairing registers.
#[catch(401)]
pub fn challenge(request: &Request<'_>) -> ChallengeResponse {
    ChallengeResponse::for_request(request)
}

/// The 429 catcher the fairing registers: `Retry-After` when the request
/// was refused for too many failures (a 429 of the app's own has none).
#[catch(429)]
pub fn too_many_attempts<'r>(request: &'r Request<'_>) -> impl Responder<'r, 'static> {
    let retry_after = match verdict::rejection(request) {
        Some(Rejection::TooManyAttempts { retry_after }) => Some(*retry_after),
        _ => None,
    };
    responder::TooManyAttempts { retry_after }
}
