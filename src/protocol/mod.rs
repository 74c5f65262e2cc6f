//! The Digest protocol as plain Rust, with no Rocket in it: header parsing,
//! hashing, nonces and challenges, and the client side. Unit-testable, fuzzable and usable on its
//! own.
//!
//! ```
//! use rocket_digest_auth::protocol::{digest, Algorithm, Authorization};
//!
//! let header = r#"Digest username="Mufasa", realm="testrealm@host.com",
//!     nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html",
//!     qop=auth, nc=00000001, cnonce="0a4f113b",
//!     response="6629fae49393a05397450978507c4ef1""#;
//! let auth = Authorization::parse(header).unwrap().unwrap();
//! let ha1 = digest::ha1(auth.algorithm, &auth.username, &auth.realm, "Circle Of Life");
//! let expected = digest::response(
//!     auth.algorithm, &ha1, &auth.nonce, "GET", &auth.uri, auth.qop.as_ref(), "",
//! );
//! assert_eq!(expected, *auth.response);
//! ```

mod algorithm;
mod challenge;
mod client;
pub mod digest;
pub mod grammar;
mod header;
mod nonce;

pub use algorithm::{Algorithm, HashFunction, HexDigest, UnknownAlgorithm};
pub use challenge::{AuthenticationInfo, Challenge};
pub use client::{Answer, ClientChallenge, DigestClient};
pub use header::{
    Authorization, ParseError, Qop, QopParams, MAX_CNONCE_LEN, MAX_HEADER_LEN, MAX_PARAMS,
};
pub use nonce::{NonceKey, NonceStatus, MAX_CLOCK_SKEW_SECS};
