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

use rocket::Request;

use crate::rocket::request::Received;
use crate::rocket::state::DigestAuthState;
use crate::verifier::{Body, Rejection, Verified};

/// The cached verdict; `None` until a guard of this crate ran.
struct Verdict(Option<Result<Verified, Rejection>>);

/// The app's refusal of the verified user, as the rejection it answers with.
/// Set at most once; read before [`Verdict`].
struct Refused(OnceLock<Result<Verified, Rejection>>);

fn refused<'r>(request: &'r Request<'_>) -> &'r OnceLock<Result<Verified, Rejection>> {
    &request.local_cache(|| Refused(OnceLock::new())).0
}

/// Records that the app refused the verified user with `rejection`.
pub(crate) fn refuse(request: &Request<'_>, rejection: Rejection) {
    // A second refusal (another guard on the same request) keeps the first.
    let _ = refused(request).set(Err(rejection));
}

/// Verifies `request` once, with `body` as far as the caller can see it; a
/// later call returns the first verdict.
pub(crate) async fn reach<'r>(
    request: &'r Request<'_>,
    state: &DigestAuthState,
    body: Body<'_>,
) -> Result<&'r Verified, Rejection> {
    let verdict = request
        .local_cache_async(async {
            let verifier = &state.verifier;
            let verdict = match Received::read(request, verifier.config().trust_ip_header) {
                Ok(received) => verifier.verify(&received.parts(body)).await,
                Err(rejection) => Err(rejection),
            };
            Verdict(Some(verdict))
        })
        .await;
    match &verdict.0 {
        Some(Ok(verified)) => Ok(verified),
        Some(Err(rejection)) => Err(rejection.clone()),
        // Only if the cache was read before any guard ran: fail closed.
        None => Err(Rejection::Challenge { stale: false }),
    }
}

/// The verdict reached on `request`, if a guard ran.
pub(crate) fn of<'r>(request: &'r Request<'_>) -> Option<&'r Result<Verified, Rejection>> {
    refused(request)
        .get()
        .or_else(|| request.local_cache(|| Verdict(None)).0.as_ref())
}

/// The rejection cached on `request`, if its verification failed.
pub(crate) fn rejection<'r>(request: &'r Request<'_>) -> Option<&'r Rejection> {
    of(request).and_then(|verdict| verdict.as_ref().err())
}
