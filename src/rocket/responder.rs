//! The crate's answers as `Responder`s: a [`Rejection`] writes its status
//! and, where the status calls for one, its header (`WWW-Authenticate` on a
//! 401, `stale=true` when it applies; `Retry-After` on a 429); a
//! [`StoreError`] answers 503 and a [`TokenError`] 400, 404 or 503.
//! [`ChallengeResponse`] is the 401 an app's own catcher can send.
//!
//! Every body follows Rocket's default catcher: JSON
//! (`{"error": {"code", "reason", "description"}}`) when the client's
//! `Accept` prefers JSON, else one line of plain text. An app that manages an
//! [`ErrorBodies`] writes them itself.

use std::io::Cursor;

use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::Request;

use crate::error::TokenError;
use crate::rocket::state::DigestAuthState;
use crate::rocket::verdict;
use crate::store::StoreError;
use crate::verifier::Rejection;

/// The plain-text body of every 401, whatever the reason: an unknown user
/// and a wrong secret must look the same.
pub const UNAUTHORIZED_BODY: &str = "401 Unauthorized: Digest authentication required.\n";

/// What an [`ErrorBodies`] hook is given and returns.
type WriteBody = dyn Fn(Status, &str, &Request<'_>) -> (ContentType, String) + Send + Sync;

/// An app's own bodies for the crate's error answers (401, 403, 429, 400,
/// 404, 413, 422, 503), from its responders and catchers. Managed state:
/// `rocket.manage(ErrorBodies::new(...))`. The function gets the status, a
/// short description (the same for every 401, whatever the reason) and the
/// request, and returns the content type and body. Headers
/// (`WWW-Authenticate`, `Retry-After`) are the crate's in any case.
///
/// ```
/// use rocket::http::{ContentType, Status};
/// use rocket::Request;
/// use rocket_digest_auth::{catcher::ErrorBodies, DigestAuth};
///
/// fn body(status: Status, description: &str, _: &Request<'_>) -> (ContentType, String) {
///     (ContentType::HTML, format!("<h1>{}</h1><p>{description}</p>", status.code))
/// }
///
/// let rocket = rocket::build()
///     .attach(DigestAuth::fairing())
///     .manage(ErrorBodies::new(body));
/// ```
pub struct ErrorBodies(Box<WriteBody>);

impl ErrorBodies {
    /// Bodies written by `write(status, description, request)`.
    pub fn new(
        write: impl Fn(Status, &str, &Request<'_>) -> (ContentType, String) + Send + Sync + 'static,
    ) -> ErrorBodies {
        ErrorBodies(Box::new(write))
    }
}

impl std::fmt::Debug for ErrorBodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ErrorBodies")
    }
}

/// The description of each status the crate answers with. None holds a
/// character JSON would need escaped.
fn description(status: Status) -> &'static str {
    match status.code {
        400 => "The request could not be understood.",
        401 => "Digest authentication required.",
        403 => "The authenticated user may not use this resource.",
        404 => "The user has no token.",
        413 => "The request body is larger than the limit.",
        422 => "The request body is invalid.",
        429 => "too many failed attempts.",
        503 => "The authentication store is unavailable.",
        _ => "An error occurred.",
    }
}

/// The body of an error answer with `status`: the app's [`ErrorBodies`] if
/// it manages one, else JSON when the client prefers it (as Rocket's default
/// catcher decides) or one line of text.
pub fn error_body(status: Status, request: &Request<'_>) -> (ContentType, String) {
    body_with(status, description(status), request)
}

fn body_with(status: Status, description: &str, request: &Request<'_>) -> (ContentType, String) {
    if let Some(bodies) = request.rocket().state::<ErrorBodies>() {
        return (bodies.0)(status, description, request);
    }
    let reason = status.reason_lossy();
    let prefers_json = request.accept().is_some_and(|a| a.preferred().is_json());
    if prefers_json {
        let json = format!(
            "{{\n  \"error\": {{\n    \"code\": {},\n    \"reason\": \"{reason}\",\n    \
             \"description\": \"{description}\"\n  }}\n}}",
            status.code
        );
        (ContentType::JSON, json)
    } else {
        let text = format!("{} {reason}: {description}\n", status.code);
        (ContentType::Plain, text)
    }
}

/// An answer with `status` and the crate's body for it, plus `headers`.
fn answer(
    status: Status,
    body: (ContentType, String),
    headers: impl IntoIterator<Item = Header<'static>>,
) -> response::Result<'static> {
    let (content_type, body) = body;
    let mut response = Response::build();
    response
        .status(status)
        .header(content_type)
        .sized_body(body.len(), Cursor::new(body));
    for header in headers {
        response.header_adjoin(header);
    }
    Ok(response.finalize())
}

/// A 401 response carrying the challenges.
#[derive(Debug, Clone)]
pub struct ChallengeResponse {
    challenges: Vec<String>,
    /// A plain-text body the app chose; `None`: [`error_body`].
    body: Option<String>,
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
            body: None,
        }
    }

    /// Replaces the body with this plain text.
    pub fn with_body(mut self, body: impl Into<String>) -> ChallengeResponse {
        self.body = Some(body.into());
        self
    }
}

impl<'r> Responder<'r, 'static> for ChallengeResponse {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = Status::Unauthorized;
        let body = match self.body {
            Some(text) => (ContentType::Plain, text),
            None => error_body(status, request),
        };
        let challenges = self.challenges;
        let headers = challenges
            .into_iter()
            .map(|c| Header::new("WWW-Authenticate", c));
        answer(status, body, headers)
    }
}

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
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = Status::TooManyRequests;
        let retry_after = self
            .retry_after
            .map(|seconds| Header::new("Retry-After", seconds.to_string()));
        answer(status, error_body(status, request), retry_after)
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
            other => {
                let status = other.status();
                if let Rejection::Unavailable(e) = &other {
                    rocket::error!("digest_auth: {e}");
                }
                answer(status, error_body(status, request), None)
            }
        }
    }
}

/// 503: the store could not answer (the cause is logged, not sent).
impl<'r> Responder<'r, 'static> for StoreError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        Rejection::from(self).respond_to(request)
    }
}

/// 400 with the rule the input broke, 404 for an unknown user, 503 when the
/// store could not answer.
impl<'r> Responder<'r, 'static> for TokenError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self {
            TokenError::InvalidInput(rule) => {
                let status = Status::BadRequest;
                answer(status, body_with(status, rule, request), None)
            }
            TokenError::UnknownUser(_) => {
                let status = Status::NotFound;
                answer(status, error_body(status, request), None)
            }
            TokenError::Unavailable(e) => e.respond_to(request),
        }
    }
}
