//! Guessing over real TCP from chosen loopback addresses: one request, the
//! challenges a client gets first, and a parallel burst of wrong guesses
//! tallied the way an attacker counts them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};

use super::http::{self, Request, Response};

/// `GET /me` from `from` to `to`.
pub async fn get(from: IpAddr, to: SocketAddr, authorization: Option<&str>) -> Response {
    let request = Request::get("/me").authorization(authorization).end();
    http::send_from(from, to, &request, Duration::from_secs(60))
        .await
        .expect("an HTTP exchange within 60 s")
}

/// The challenges an anonymous request gets (SHA-256, then MD5).
pub async fn challenges(from: IpAddr, to: SocketAddr) -> Vec<ClientChallenge> {
    let reply = get(from, to, None).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    reply.headers.challenges()
}

/// How a burst of guesses was answered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// 401: judged, and wrong.
    pub judged: usize,
    /// 429: refused before judging.
    pub refused: usize,
}

impl Tally {
    /// Counts `reply`; anything but 401 or 429 fails the test.
    pub fn add(&mut self, reply: &Response) {
        match reply.status {
            401 => self.judged += 1,
            429 => self.refused += 1,
            _ => panic!("a wrong guess got {reply:?}"),
        }
    }

    /// Asserts that between 1 and `max_failures` guesses were judged.
    pub fn assert_judged_at_most(&self, max_failures: usize) {
        assert!(
            (1..=max_failures).contains(&self.judged),
            "{} judged, limit {max_failures}: {self:?}",
            self.judged
        );
    }
}

/// `count` wrong guesses for `username` sent all at once from `from`, the
/// i-th to `targets[i % targets.len()]`, each on a connection of its own.
pub async fn burst(
    from: IpAddr,
    targets: &[SocketAddr],
    challenge: &ClientChallenge,
    username: &str,
    count: usize,
) -> Tally {
    let mut client = DigestClient::new(username, "a wrong guess", challenge.clone());
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let header = client.authorization("GET", "/me");
            let to = targets[i % targets.len()];
            rocket::tokio::spawn(async move { get(from, to, Some(&header)).await })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.add(&task.await.expect("a request task"));
    }
    tally
}
