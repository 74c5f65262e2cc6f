//! The 401 catcher: answers with one `WWW-Authenticate` challenge per
//! configured algorithm, in preference order, with a fresh nonce and
//! `stale=true` where it applies.
//!
//! The fairing registers it at `/` unless `catcher = false`; an app that
//! registers its own 401 catcher can call [`challenge`] or use
//! [`ChallengeResponse`] from it.
//!
//! ```no_run
//! use rocket::{catch, catchers, Request};
//! use rocket_digest_auth::{catcher::ChallengeResponse, DigestAuth};
//!
//! #[catch(401)]
//! fn my_401(request: &Request<'_>) -> ChallengeResponse {
//!     ChallengeResponse::for_request(request).with_body("Please sign in.\n")
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     // With `catcher = false` in [digest_auth].
//!     rocket::build().attach(DigestAuth::fairing()).register("/", catchers![my_401])
//! }
//! ```

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::{catch, Request};

use crate::fairing::DigestAuthState;
use crate::guard::CachedVerification;
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
            request.local_cache(|| CachedVerification(None)).0,
            Some(Err(Rejection::Challenge { stale: true }))
        );
        let challenges = request
            .rocket()
            .state::<DigestAuthState>()
            .map(|s| s.verifier().challenges(stale))
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
