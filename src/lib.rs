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
//!     user.username.clone()
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
//! | malformed Digest header, duplicate parameter | 400 |
//! | `uri` not the request-target | 400 |
//! | wrong realm, algorithm, qop or opaque; forged nonce | 401 |
//! | unknown user or wrong secret (indistinguishable) | 401 |
//! | right digest, expired nonce or replayed `nc` | 401 with `stale=true` |
//! | body over the limit / not the route's type ([`DigestAuthenticatedData`]) | 413 / 422 |
//! | too many failures for (user, address) | 429 with `Retry-After` |
//! | store unreachable | 503 (never let through) |
//! | success | the route, with `Authentication-Info` |
//!
//! # Layout
//!
//! - [`protocol`]: parsing, hashing, nonces and challenges, with no Rocket in it.
//! - [`Verifier`]: the whole check of one request over the store traits.
//! - [`store`]: [`CredentialStore`](store::CredentialStore) and
//!   [`NonceCountStore`](store::NonceCountStore), the built-in memory, SQL and htdigest
//!   stores (the SQL store leases blocks of nonce counts, `nc_lease`), the
//!   credential cache (on by default for the database store, rechecked
//!   against the token table's version every `credential_recheck_ms`), and
//!   the shared store test suite.
//! - The Rocket glue: [`DigestAuth`] (fairing), [`DigestAuthenticated`]
//!   (request guard), [`DigestAuthenticatedData`] (data guard for
//!   `qop=auth-int` over request bodies), [`catcher`].
//!
//! Every configuration key, the status table, multi-instance deployment and
//! the comparison with other servers are in the README; the threat model is
//! in SECURITY.md.
#![deny(missing_docs)]

pub mod catcher;
mod config;
mod data;
mod error;
mod fairing;
mod guard;
mod limiter;
pub mod protocol;
pub mod store;
mod user;
mod verifier;

pub use config::{Config, InvalidConfig, Qop, StoreKind, TokenStorage, MIN_SECRET_LEN};
pub use data::{DigestAuthenticatedData, FromAuthenticatedBody};
pub use error::Error;
pub use fairing::{DigestAuth, DigestAuthState, Tokens, DATABASE_NAME, DEFAULT_DATABASE_URL};
pub use guard::DigestAuthenticated;
pub use limiter::FailureLimiter;
pub use user::{DigestUser, User};
pub use verifier::{Body, Rejection, RequestParts, Verified, Verifier};
