//! HTTP Digest Access Authentication (RFC 7616, serving RFC 2617 clients too)
//! for Rocket 0.5.
//!
//! # Usage
//!
//! Attach the fairing, guard routes with [`DigestAuthenticated`], and give
//! each user a token (their Digest "password", agreed in advance):
//!
//! ```no_run
//! use rocket::{get, routes, State};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated, Tokens, User};
//!
//! #[get("/me")]
//! fn me(user: DigestAuthenticated<User>) -> String {
//!     user.username.to_string()
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(DigestAuth::fairing())
//!         .mount("/", routes![me])
//! }
//! ```
//!
//! ```toml
//! [default.digest_auth]
//! realm = "example"
//! secret = "a random string of at least 32 bytes, shared by all instances"
//!
//! [default.databases.digest_auth]
//! url = "sqlite://digest_auth.db?mode=rwc"
//! ```
//!
//! Tokens are created, rotated and revoked with [`Tokens`], managed by the
//! fairing: `rocket.state::<Tokens>().unwrap().issue("alice").await`.
//!
//! # What happens to a request
//!
//! | request | answer |
//! |---|---|
//! | no `Authorization`, or another scheme | 401 with a challenge per algorithm |
//! | malformed Digest header, duplicate parameter, two `Authorization` headers | 400 |
//! | `uri` not the request-target; absolute-form `uri` not naming `Host` | 400 |
//! | wrong realm, algorithm, qop or opaque; forged nonce | 401 |
//! | digest signed for another method than received (`HEAD`, `_method`) | 401 |
//! | `cnonce` without `qop` (an RFC 2069 answer) | 401 unless `allow_rfc2069` |
//! | unknown user or wrong secret (indistinguishable) | 401 |
//! | right digest, expired nonce or replayed `nc` | 401 with `stale=true` |
//! | body over the limit / not the route's type ([`DigestAuthenticatedData`]) | 413 / 422 |
//! | right digest, but the app's [`DigestUser`] refuses the user ([`Refusal::Forbidden`]) | 403, no challenge, not counted as a failure |
//! | too many failures for (user, address) | 429 with `Retry-After` |
//! | store unreachable | 503 (never let through) |
//! | success | the route, with `Authentication-Info` |
//!
//! # Layout
//!
//! - [`protocol`]: parsing, hashing, nonces and challenges, with no Rocket in it.
//! - [`verifier`]: the whole check of one request over the store traits
//!   ([`Verifier`](verifier::Verifier)), and the brute-force limit per
//!   (user, client address), shared by a fleet through a
//!   [`FailureStore`](store::FailureStore) (the database or Redis).
//! - [`store`]: [`CredentialStore`](store::CredentialStore) and
//!   [`NonceCountStore`](store::NonceCountStore), the built-in memory, SQL and htdigest
//!   stores (the SQL store leases blocks of nonce counts, `nc_lease`), the
//!   credential cache (on by default for the database store, rechecked
//!   against the token table's version every `credential_recheck_ms`), and
//!   the shared store test suite.
//! - [`config`]: the `[digest_auth]` keys and every rule about them.
//! - `src/rocket/`: the Rocket glue. [`DigestAuth`] (the fairing: config,
//!   stores, cleanup, `Authentication-Info`, closing the store),
//!   [`DigestAuthenticated`] (request guard), [`DigestAuthenticatedData`]
//!   (data guard for `qop=auth-int` over request bodies), [`DigestUser`] and
//!   [`User`], [`Tokens`] and the token command line [`cli`], [`catcher`]
//!   (401 and 429), and the [`Rejection`] responder; the request's parts and
//!   its verdict are read and cached in one place each.
//!
//! The [`guide`] has the rest: features, every configuration key, the
//! app's own database, custom users and stores, several instances, testing
//! with Rocket's local client, and the README's walk-through. The threat
//! model is in SECURITY.md.
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod guide;
mod ha1_cache;
mod limiter;
pub mod protocol;
mod rocket;
pub mod store;
pub mod verifier;

pub use crate::rocket::catcher;
pub use crate::rocket::cli;
pub use crate::rocket::{
    DigestAuth, DigestAuthenticated, DigestAuthenticatedData, DigestUser, FromAuthenticatedBody,
    Refusal, Tokens, User,
};
pub use config::{Config, InvalidConfig};
pub use error::{Error, TokenError};
pub use verifier::Rejection;
