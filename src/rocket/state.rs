//! The state the fairing manages: the verifier every guard and catcher uses,
//! and the launch check for routes that use a guard without the fairing.
//!
//! ```no_run
//! use rocket_digest_auth::DigestAuth;
//!
//! // Attaching the fairing is what puts the state in place.
//! let rocket = rocket::build().attach(DigestAuth::fairing());
//! # let _ = rocket;
//! ```

use rocket::{Ignite, Request, Rocket};

use crate::verifier::Verifier;

/// The managed state: one verifier per Rocket instance.
#[derive(Debug)]
pub(crate) struct DigestAuthState {
    pub(crate) verifier: Verifier,
}

impl DigestAuthState {
    /// The state of the Rocket instance serving `request`, if the fairing is attached.
    pub(crate) fn of<'r>(request: &'r Request<'_>) -> Option<&'r DigestAuthState> {
        request.rocket().state::<DigestAuthState>()
    }
}

/// The database store in use, for [`DigestAuth::pool`](crate::DigestAuth::pool).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) struct DatabaseState(pub(crate) std::sync::Arc<crate::store::SqlStore>);

/// Whether launch must stop: a route uses `guard` but the fairing is not attached.
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
