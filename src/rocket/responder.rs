//! The rejection answers for itself: a [`Rejection`] is a `Responder` that
//! writes its status and, where the status calls for one, its header:
//! `WWW-Authenticate` on a 401 (`stale=true` when it applies) and
//! `Retry-After` on a 429. Other rejections forward to the app's catcher
//! for their status (400, 413, 422, 503). [`ChallengeResponse`] is the 401
//! an app's own catcher can send.
//!
//! ```no_run
//! use rocket::get;
//! use rocket_digest_auth::{DigestAuthenticated, Rejection};
//!
//! // A route that wants to know why answers the rejection itself.
//! #[get("/why")]
//! fn why(user: Result<DigestAuthenticated, Rejection>) -> Result<String, Rejection> {
//!     Ok(user?.username.clone())
//! }
//! ```

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;

use crate::rocket::state::DigestAuthState;
use crate::rocket::verdict;
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

/// The body of every 429.
const TOO_MANY_ATTEMPTS_BODY: &str = "429 Too Many Requests: too many failed attempts.\n";

impl Rejection {
    /// The status this rejection is answered with.
    pub(crate) fn status(&self) -> Status {
        Status::from_code(self.status_code()).unwrap_or(Status::Unauthorized)
    }
}

/// A 429, with `Retry-After` when the wait is known.
pub(crate) struct TooManyAttempts {
    pub(crate) retry_after: Option<u64>,
}

impl<'r> Responder<'r, 'static> for TooManyAttempts {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .status(Status::TooManyRequests)
            .header(ContentType::Plain)
            .sized_body(
                TOO_MANY_ATTEMPTS_BODY.len(),
                Cursor::new(TOO_MANY_ATTEMPTS_BODY),
            );
        if let Some(seconds) = self.retry_after {
            response.header(Header::new("Retry-After", seconds.to_string()));
        }
        Ok(response.finalize())
    }
}

impl<'r> Responder<'r, 'static> for Rejection {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Rejection::Challenge { stale } => {
                ChallengeResponse::with_stale(request, stale).respond_to(request)
            }
            Rejection::TooManyAttempts { retry_after } => TooManyAttempts {
                retry_after: Some(retry_after),
            }
            .respond_to(request),
            other => Err(other.status()),
        }
    }
}
