//! What the verifier needs of a Rocket request, read in one place: the one
//! `Authorization` header (a second one is refused, not resolved by
//! first-wins), the request-target as received, the client address for the
//! failure limit, and whether a body is in the way.
//!
//! ```
//! use rocket::http::Header;
//! use rocket::local::blocking::Client;
//!
//! // Two Authorization headers are answered 400 before any digest is checked.
//! #[rocket::get("/me")]
//! fn me(user: rocket_digest_auth::DigestAuthenticated) -> String {
//!     user.username.clone()
//! }
//! let figment = rocket::Config::figment().merge(("digest_auth.store", "memory"));
//! let rocket = rocket::custom(figment)
//!     .attach(rocket_digest_auth::DigestAuth::fairing())
//!     .mount("/", rocket::routes![me]);
//! let client = Client::tracked(rocket).unwrap();
//! let reply = client
//!     .get("/me")
//!     .header(Header::new("Authorization", "Digest a=1"))
//!     .header(Header::new("Authorization", "Digest b=2"))
//!     .dispatch();
//! assert_eq!(reply.status().code, 400);
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use rocket::http::Method;
use rocket::Request;

use crate::verifier::{Body, Rejection, RequestParts};

/// The parts of a request the verifier reads, except the body.
pub(crate) struct Received<'r> {
    method: &'r str,
    target: Cow<'r, str>,
    authorization: Option<&'r str>,
    client: Option<IpAddr>,
}

impl<'r> Received<'r> {
    /// Reads `request`; the client address is Rocket's `ip_header` value when
    /// `trust_ip_header`, otherwise the connection's peer.
    pub(crate) fn read(
        request: &'r Request<'_>,
        trust_ip_header: bool,
    ) -> Result<Received<'r>, Rejection> {
        let mut headers = request.headers().get("Authorization");
        let authorization = headers.next();
        if headers.next().is_some() {
            return Err(Rejection::DuplicateAuthorizationHeader);
        }
        // The request-target as received (what `Origin`'s Display writes),
        // copied only when it has a query.
        let uri = request.uri();
        let target = match uri.query() {
            None => Cow::Borrowed(uri.path().as_str()),
            Some(query) => format!("{}?{}", uri.path().as_str(), query.as_str()).into(),
        };
        Ok(Received {
            method: request.method().as_str(),
            target,
            authorization,
            client: if trust_ip_header {
                request.client_ip()
            } else {
                request.remote().map(|addr| addr.ip())
            },
        })
    }

    /// The verifier's view of the request, with `body`.
    pub(crate) fn parts<'a>(&'a self, body: Body<'a>) -> RequestParts<'a> {
        RequestParts {
            method: self.method,
            target: &self.target,
            authorization: self.authorization,
            client: self.client,
            body,
        }
    }
}

/// Whether the request announces a body a request guard cannot read.
pub(crate) fn body_of(request: &Request<'_>) -> Body<'static> {
    // A request has few headers: one pass over them costs less than two hashed lookups.
    let (mut zero_length, mut transfer_encoding) = (None, false);
    for header in request.headers().iter() {
        let name = header.name().as_str();
        if zero_length.is_none() && name.eq_ignore_ascii_case("Content-Length") {
            zero_length = Some(header.value().trim() == "0");
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            transfer_encoding = true;
        }
    }
    let empty = match zero_length {
        Some(zero) => zero,
        // Without a length, only methods that carry no body are known to be
        // bodiless (an HTTP/2 request may stream a body with neither header).
        None => {
            !transfer_encoding
                && matches!(
                    request.method(),
                    Method::Get | Method::Head | Method::Options | Method::Delete | Method::Trace
                )
        }
    };
    if empty {
        Body::Empty
    } else {
        Body::Unread
    }
}
