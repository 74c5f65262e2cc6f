//! The Rocket glue: the fairing, the guards, the user type, the catchers and
//! the token API, over the [`Verifier`](crate::verifier::Verifier).
//!
//! Each request is verified once (`verdict`) from the parts `request`
//! reads off it; the guards, the catchers and the fairing only read that
//! verdict.
//!
//! ```no_run
//! use rocket::{get, routes};
//! use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};
//!
//! #[get("/me")]
//! fn me(user: DigestAuthenticated<User>) -> String {
//!     user.username.to_string()
//! }
//!
//! #[rocket::launch]
//! fn rocket() -> _ {
//!     rocket::build().attach(DigestAuth::fairing()).mount("/", routes![me])
//! }
//! ```

mod builtin;
pub mod catcher;
pub mod cli;
mod data;
mod fairing;
mod guard;
mod request;
mod responder;
mod state;
mod tokens;
mod user;
mod verdict;

pub use data::{DigestAuthenticatedData, FromAuthenticatedBody};
pub use fairing::DigestAuth;
pub use guard::DigestAuthenticated;
pub use tokens::Tokens;
pub use user::{DigestUser, Refusal, User};
