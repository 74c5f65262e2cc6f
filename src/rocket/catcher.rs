//! The catchers: a 401 with one `WWW-Authenticate` challenge per configured
//! algorithm (in preference order, with a fresh nonce and `stale=true` where
//! it applies), and a 429 with `Retry-After`. Each answers with the
//! request's cached [`Rejection`](crate::Rejection).
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

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::{catch, Request};

use crate::rocket::state::DigestAuthState;
use crate::rocket::{responder, verdict};
use crate::verifier::Rejection;

/// The body of every 401, whatever the reason: an unknown user and a wrong
/// secret must look the same.
pub const UNAUTHORIZED_BODY: &str = "401 Unauthorized: Digest authentication required.\n";

/// A 401 response carrying the challenges.
#[derive(Debug, Clone)]
pub struct ChallengeResponse {
    challenges: Vec<String>,
    body: String,
}

impl ChallengeResponse {
    /// The challenges for this request: `stale=true` when its verification
    /// found a right digest on an expired nonce or a replayed count.
    pub fn for_request(request: &Request<'_>) -> ChallengeResponse {
        let stale = matches!(
            verdict::rejection(request),
            Some(Rejection::Challenge { stale: true })
        );
        ChallengeResponse::with_stale(request, stale)
    }

    /// The challenges, with `stale` as given.
    pub(crate) fn with_stale(request: &Request<'_>, stale: bool) -> ChallengeResponse {
        let challenges = DigestAuthState::of(request)
            .map(|state| state.verifier.challenges(stale))
            .unwrap_or_default();
        ChallengeResponse {
            challenges,
            body: UNAUTHORIZED_BODY.into(),
        }
    }

    /// Replaces the plain-text body.
    pub fn with_body(mut self, body: impl Into<String>) -> ChallengeResponse {
        self.body = body.into();
        self
    }
}

impl<'r> Responder<'r, 'static> for ChallengeResponse {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(Status::Unauthorized)
            .header(ContentType::Plain)
            .sized_body(self.body.len(), Cursor::new(self.body));
        for challenge in self.challenges {
            response.header_adjoin(Header::new("WWW-Authenticate", challenge));
        }
        Ok(response.finalize())
    }
}

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
