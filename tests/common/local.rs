//! Rocket's local client: requests with an optional `Authorization` header,
//! replies owned for easy comparison, tokens, and Digest sessions.

use std::time::{Duration, Instant};

use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest};
use rocket_digest_auth::catcher::UNAUTHORIZED_BODY;
use rocket_digest_auth::protocol::{Algorithm, ClientChallenge, DigestClient};
use rocket_digest_auth::Tokens;

use super::headers::Headers;

/// A response, owned.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub headers: Headers,
    pub body: String,
    /// From dispatch to the end of the body.
    pub elapsed: Duration,
}

impl Reply {
    /// The body as JSON, which it must be.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// A 401 from the built-in catcher, with challenges whose `stale` flag
    /// is `stale`.
    pub fn assert_401(&self, stale: bool) {
        assert_eq!(self.status, Status::Unauthorized, "{self:?}");
        assert_eq!(self.body, UNAUTHORIZED_BODY);
        assert_eq!(self.headers.is_stale(), stale, "stale flag in {self:?}");
    }
}

/// Dispatches `request` and reads the whole reply.
pub async fn send(request: LocalRequest<'_>) -> Reply {
    let started = Instant::now();
    let response = request.dispatch().await;
    let status = response.status();
    let headers = Headers(
        response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect(),
    );
    let body = response.into_string().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    }
}

/// `request` with an `Authorization` header when there is one.
pub fn with_auth<'c>(request: LocalRequest<'c>, authorization: Option<&str>) -> LocalRequest<'c> {
    match authorization {
        Some(a) => request.header(Header::new("Authorization", a.to_owned())),
        None => request,
    }
}

/// `GET uri`, with an optional `Authorization` header.
pub async fn get(client: &Client, uri: &str, authorization: Option<&str>) -> Reply {
    send(with_auth(client.get(uri.to_owned()), authorization)).await
}

/// Creates (or rotates) `username`'s token through the managed `Tokens`.
pub async fn issue(client: &Client, username: &str) -> String {
    client
        .rocket()
        .state::<Tokens>()
        .expect("the built-in store manages Tokens")
        .issue(username)
        .await
        .expect("issuing a token")
}

/// The challenge for `alg` that an unauthenticated `GET /me` gets.
pub async fn challenge_for(client: &Client, alg: Algorithm) -> ClientChallenge {
    let reply = get(client, "/me", None).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    reply
        .headers
        .challenges()
        .into_iter()
        .find(|c| c.algorithm == alg)
        .unwrap_or_else(|| panic!("no {alg} challenge in {reply:?}"))
}

/// A Digest session for `username` on a fresh nonce with `alg`.
pub async fn session(
    client: &Client,
    username: &str,
    secret: &str,
    alg: Algorithm,
) -> DigestClient {
    DigestClient::new(username, secret, challenge_for(client, alg).await)
}
