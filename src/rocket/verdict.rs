//! The verdict on a request, reached once and cached in the request: several
//! guards on one request verify (and spend the nonce count) once, and the
//! catchers and the fairing read the same verdict to write their headers.
//! When the app's [`DigestUser`](crate::DigestUser) refuses the verified user,
//! the refusal replaces the verdict for everyone who reads it afterwards, so
//! that a 403 or 401 carries no `Authentication-Info`.
//!
//! ```no_run
//! use rocket::get;
//! use rocket_digest_auth::DigestAuthenticated;
//!
//! // Both guards share one verdict: the nonce count is spent once.
//! #[get("/twice")]
//! fn twice(a: DigestAuthenticated, b: DigestAuthenticated) -> String {
//!     format!("{} {}", a.username, b.username)
//! }
//! ```

use std::sync::OnceLock;

use rocket::http::Method;
use rocket::tokio::sync::OnceCell;
use rocket::Request;

use crate::rocket::request::Received;
use crate::rocket::state::DigestAuthState;
use crate::verifier::{Rejection, Verified};

/// What this crate keeps on a request, in one local-cache entry (each
/// entry is an allocation and a type-map lookup).
struct Kept {
    /// The method as sent, where Rocket routes the request as another.
    method_as_sent: Option<Method>,
    /// The verdict, once a guard of this crate ran.
    verdict: OnceCell<Result<Verified, Rejection>>,
    /// The app's refusal of the verified user, as the rejection it answers
    /// with; set at most once, read before the verdict.
    refused: OnceLock<Rejection>,
}

fn kept<'r>(request: &'r Request<'_>) -> &'r Kept {
    request.local_cache(|| Kept {
        method_as_sent: None,
        verdict: OnceCell::new(),
        refused: OnceLock::new(),
    })
}

/// Records the method the client sent (see `request::method_as_sent`);
/// before routing, so before any guard reads the request.
pub(crate) fn record_method_as_sent(request: &Request<'_>, method: Method) {
    request.local_cache(|| Kept {
        method_as_sent: Some(method),
        verdict: OnceCell::new(),
        refused: OnceLock::new(),
    });
}

/// Records that the app refused the verified user with `rejection`.
pub(crate) fn refuse(request: &Request<'_>, rejection: Rejection) {
    // A second refusal (another guard on the same request) keeps the first.
    let _ = kept(request).refused.set(rejection);
}

/// Verifies `request` once, with the body a data guard read (`None`: what
/// the headers announce); a later call returns the first verdict.
pub(crate) async fn reach<'r>(
    request: &'r Request<'_>,
    state: &DigestAuthState,
    body: Option<&[u8]>,
) -> Result<&'r Verified, Rejection> {
    let kept = kept(request);
    let verdict = kept
        .verdict
        .get_or_init(|| async {
            let verifier = &state.verifier;
            let method = kept.method_as_sent.unwrap_or_else(|| request.method());
            match Received::read(request, method, verifier.config().trust_ip_header) {
                Ok(received) => verifier.verify(&received.parts(body)).await,
                Err(rejection) => Err(rejection),
            }
        })
        .await;
    verdict.as_ref().map_err(Rejection::clone)
}

/// The verdict reached on `request`, if a guard ran: the app's refusal
/// first.
pub(crate) fn of<'r>(request: &'r Request<'_>) -> Option<Result<&'r Verified, &'r Rejection>> {
    let kept = kept(request);
    match kept.refused.get() {
        Some(rejection) => Some(Err(rejection)),
        None => kept.verdict.get().map(Result::as_ref),
    }
}

/// The rejection cached on `request`, if its verification failed.
pub(crate) fn rejection<'r>(request: &'r Request<'_>) -> Option<&'r Rejection> {
    of(request).and_then(Result::err)
}
