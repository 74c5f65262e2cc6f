//! What the verifier needs of a Rocket request, read in one place: the one
//! `Authorization` header (a second one is refused, not resolved by
//! first-wins), the method and request-target as received, the `Host`, the
//! client address for the failure limit, and whether a body is in the way.
//!
//! The method is the one the client sent and signed, not the one Rocket
//! routes: Rocket turns a POST with a `_method` form field into that method
//! before any fairing runs, and routes a HEAD to GET routes. The fairing
//! records the method as sent ([`method_as_sent`]) before routing.
//!
//! ```
//! use rocket::http::Header;
//! use rocket::local::blocking::Client;
//!
//! // Two Authorization headers are answered 400 before any digest is checked.
//! #[rocket::get("/me")]
//! fn me(user: rocket_digest_auth::DigestAuthenticated) -> String {
//!     user.username.to_string()
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

use rocket::data::Data;
use rocket::form::Form;
use rocket::http::uri::Host;
use rocket::http::Method;
use rocket::Request;

use crate::verifier::{Body, Rejection, RequestParts};

/// The parts of a request the verifier reads.
pub(crate) struct Received<'r> {
    method: &'r str,
    target: Cow<'r, str>,
    host: Option<&'r Host<'r>>,
    authorization: Option<&'r str>,
    client: Option<IpAddr>,
    /// What the headers say of a body a request guard cannot read.
    body: Body<'static>,
}

impl<'r> Received<'r> {
    /// Reads `request`, as sent with `method`; the client address is
    /// Rocket's `ip_header` value when `trust_ip_header`, otherwise the
    /// connection's peer.
    pub(crate) fn read(
        request: &'r Request<'_>,
        method: Method,
        trust_ip_header: bool,
    ) -> Result<Received<'r>, Rejection> {
        // A request has few headers: one pass over them costs less than the
        // hashed lookups of three names.
        let (mut authorization, mut zero_length, mut transfer_encoding) = (None, None, false);
        for header in request.headers().iter() {
            let name = header.name().as_str();
            if name.eq_ignore_ascii_case("Authorization") {
                if authorization.is_some() {
                    return Err(Rejection::DuplicateAuthorizationHeader);
                }
                authorization = Some(header.value);
            } else if zero_length.is_none() && name.eq_ignore_ascii_case("Content-Length") {
                zero_length = Some(header.value().trim() == "0");
            } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
                transfer_encoding = true;
            }
        }
        let bodiless = match zero_length {
            Some(zero) => zero,
            // Without a length, only methods that carry no body are known to be
            // bodiless (an HTTP/2 request may stream a body with neither header).
            None => {
                !transfer_encoding
                    && matches!(
                        method,
                        Method::Get
                            | Method::Head
                            | Method::Options
                            | Method::Delete
                            | Method::Trace
                    )
            }
        };
        // The request-target as received (what `Origin`'s Display writes),
        // copied only when it has a query.
        let uri = request.uri();
        let target = match uri.query() {
            None => Cow::Borrowed(uri.path().as_str()),
            Some(query) => format!("{}?{}", uri.path().as_str(), query.as_str()).into(),
        };
        Ok(Received {
            method: method.as_str(),
            target,
            host: request.host(),
            // `HeaderMap::iter` lends its values; the hashed lookup is the
            // same value should that ever change.
            authorization: authorization.and_then(|value| match value {
                Cow::Borrowed(value) => Some(value),
                Cow::Owned(_) => request.headers().get_one("Authorization"),
            }),
            client: if trust_ip_header {
                request.client_ip()
            } else {
                request.remote().map(|addr| addr.ip())
            },
            body: if bodiless { Body::Empty } else { Body::Unread },
        })
    }

    /// The verifier's view of the request, with the body a data guard read,
    /// or else what the headers announce.
    pub(crate) fn parts<'a>(&'a self, read: Option<&'a [u8]>) -> RequestParts<'a> {
        RequestParts {
            method: self.method,
            target: &self.target,
            host: self.host,
            authorization: self.authorization,
            client: self.client,
            body: read.map_or(self.body, Body::Bytes),
        }
    }
}

/// The method as the client sent it, when Rocket has rewritten it (a
/// `_method` form field) or will (a HEAD routed to GET routes); `None` when
/// it routes the method sent. Runs in the fairing's `on_request`, after
/// Rocket's rewrite and before routing.
pub(crate) async fn method_as_sent(request: &Request<'_>, data: &mut Data<'_>) -> Option<Method> {
    let routed = request.method();
    if routed != Method::Post && overridden_from_post(request, data).await {
        Some(Method::Post)
    } else if routed == Method::Head {
        Some(Method::Head)
    } else {
        None
    }
}

/// Whether Rocket's `_method` override made this request's method out of a
/// POST: its form body starts with a `_method` field naming the method, read
/// exactly as Rocket reads it. A request sent with that method and such a
/// body is taken for a POST too; its own digest is then refused (401).
async fn overridden_from_post(request: &Request<'_>, data: &mut Data<'_>) -> bool {
    // Rocket's window: "_method=get" to "_method=delete".
    const WINDOW: (usize, usize) = ("_method=get".len(), "_method=delete".len());
    if !request.content_type().is_some_and(|ct| ct.is_form()) {
        return false;
    }
    let peeked = data.peek(WINDOW.1).await;
    peeked.len() >= WINDOW.0
        && std::str::from_utf8(peeked)
            .ok()
            .and_then(|form| Form::values(form).next())
            .filter(|field| field.name == "_method")
            .and_then(|field| field.value.parse::<Method>().ok())
            == Some(request.method())
}
