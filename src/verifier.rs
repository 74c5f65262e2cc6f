//! The whole verification of one request, as plain async Rust over the store
//! traits: what the request guard runs, and what the fuzz target drives.
//!
//! ```
//! use std::sync::Arc;
//! use rocket_digest_auth::verifier::{Verifier, RequestParts};
//! use rocket_digest_auth::{Config, Rejection};
//! use rocket_digest_auth::store::{MemoryStore, StoreOptions};
//!
//! # rocket::async_test(async {
//! let config = Config::default().with_secret("x".repeat(32));
//! let store = Arc::new(MemoryStore::new(StoreOptions::new(&config.realm)));
//! let verifier = Verifier::new(config, store.clone(), store).unwrap();
//!
//! // No Authorization header: a challenge.
//! let parts = RequestParts::new("GET", "/me", None);
//! assert!(matches!(verifier.verify(&parts).await, Err(Rejection::Challenge { stale: false })));
//! assert_eq!(verifier.challenges(false).len(), 2); // SHA-256, then MD5
//! # });
//! ```

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::ha1_cache::Ha1Cache;
pub use crate::limiter::FailureLimiter;
use crate::protocol::digest::HashedHa1;
use crate::protocol::{
    digest, Algorithm, AuthenticationInfo, Authorization, Challenge, HashFunction, NonceKey,
    NonceStatus, ParseError, Qop,
};
use crate::store::{Claim, ClaimRequest, Credential, CredentialStore, NonceCountStore, StoreError};

/// What the verifier needs to know of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request-target as received: path and query, not percent-decoded.
    pub target: &'a str,
    /// The `Authorization` header value, if any.
    pub authorization: Option<&'a str>,
    /// The client's address, for brute-force limiting.
    pub client: Option<IpAddr>,
    /// The request body, as far as the caller can see it.
    pub body: Body<'a>,
}

impl<'a> RequestParts<'a> {
    /// A bodiless request from an unknown address.
    pub fn new(method: &'a str, target: &'a str, authorization: Option<&'a str>) -> Self {
        RequestParts {
            method,
            target,
            authorization,
            client: None,
            body: Body::Empty,
        }
    }
}

/// The request body as seen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// The request has no body.
    Empty,
    /// The request has a body the caller cannot read (a request guard):
    /// `auth-int` cannot be checked and is refused.
    Unread,
    /// The whole body, read by the data guard.
    Bytes(&'a [u8]),
}

/// Why a request was not authenticated, and so what to answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Rejection {
    /// 401 with a fresh challenge: no or another scheme, wrong realm,
    /// algorithm, opaque or qop, a forged nonce, unknown user or wrong secret,
    /// a replayed `nc`. `stale` when the digest was right but the nonce
    /// expired (or was replayed): the client retries without asking the user.
    #[error("authentication required (stale: {stale})")]
    Challenge {
        /// Send `stale=true`.
        stale: bool,
    },
    /// 400: the Authorization header is not valid Digest.
    #[error("malformed Authorization header: {0}")]
    Malformed(#[from] ParseError),
    /// 400: the request carries more than one Authorization header.
    #[error("more than one Authorization header")]
    DuplicateAuthorizationHeader,
    /// 400: the signed `uri` does not name this request's target.
    #[error("the Digest uri does not match the request-target")]
    UriMismatch,
    /// 400: `qop=auth-int` on a request with a body, at a route that cannot
    /// read the body (it uses the request guard, not the data guard).
    #[error("qop=auth-int over a request body needs the DigestAuthenticatedData guard")]
    BodyNotCovered,
    /// 413: the body is larger than the configured limit, so its hash
    /// cannot be checked (never a hash of a truncated body).
    #[error("request body larger than the limit")]
    PayloadTooLarge,
    /// 400: the body could not be read.
    #[error("request body could not be read: {0}")]
    BodyUnreadable(String),
    /// 422: the authenticated body did not parse as the route's type.
    #[error("request body is invalid: {0}")]
    InvalidBody(String),
    /// 429: too many failures for this (username, client address).
    #[error("too many failed attempts; retry after {retry_after} s")]
    TooManyAttempts {
        /// Seconds until attempts are accepted again.
        retry_after: u64,
    },
    /// 503: a store could not answer; the request is refused (fails closed).
    #[error("authentication store unavailable: {0}")]
    Unavailable(Arc<StoreError>),
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Rejection {
        Rejection::Unavailable(Arc::new(e))
    }
}

impl Rejection {
    /// The HTTP status code this rejection is answered with.
    pub fn status_code(&self) -> u16 {
        match self {
            Rejection::Challenge { .. } => 401,
            Rejection::Malformed(_)
            | Rejection::DuplicateAuthorizationHeader
            | Rejection::UriMismatch
            | Rejection::BodyNotCovered
            | Rejection::BodyUnreadable(_) => 400,
            Rejection::PayloadTooLarge => 413,
            Rejection::InvalidBody(_) => 422,
            Rejection::TooManyAttempts { .. } => 429,
            Rejection::Unavailable(_) => 503,
        }
    }
}

/// A request that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The user's credential (real username, also after a userhash).
    pub credential: Credential,
    /// The `Authentication-Info` header value to send with the response.
    pub authentication_info: AuthenticationInfo,
}

/// Verifies requests against the configuration and the stores.
pub struct Verifier {
    config: Config,
    key: NonceKey,
    qop: Vec<Qop>,
    domain: Option<String>,
    credentials: Arc<dyn CredentialStore>,
    counts: Arc<dyn NonceCountStore>,
    limiter: FailureLimiter,
    ha1s: Ha1Cache,
    /// HA1 of no user, per hash function (see [`dummy_slot`]).
    dummy_ha1: [HashedHa1; 3],
}

fn dummy_slot(alg: Algorithm) -> usize {
    match alg.hash_function() {
        HashFunction::Md5 => 0,
        HashFunction::Sha256 => 1,
        HashFunction::Sha512_256 => 2,
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("realm", &self.config.realm)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The secret of the HA1 an unknown username is checked against.
const DUMMY_SECRET: &str = "rocket_digest_auth dummy secret";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Verifier {
    /// A verifier for a configuration and stores; the configuration is
    /// checked here ([`Config::validate`] and [`Config::validate_for`] the
    /// credential store). Without `config.secret`, nonces are signed with a
    /// random per-process key.
    pub fn new(
        config: Config,
        credentials: Arc<dyn CredentialStore>,
        counts: Arc<dyn NonceCountStore>,
    ) -> Result<Verifier, crate::Error> {
        config.validate()?;
        config.validate_for(&*credentials)?;
        Ok(Verifier::from_valid(config, credentials, counts))
    }

    /// A verifier for a configuration already checked for these stores.
    pub(crate) fn from_valid(
        config: Config,
        credentials: Arc<dyn CredentialStore>,
        counts: Arc<dyn NonceCountStore>,
    ) -> Verifier {
        let secret = match &config.secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut random = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
                random.to_vec()
            }
        };
        let epoch = counts.bound_to_process().then(rand::random::<[u8; 4]>);
        let key = NonceKey::new(&secret, &config.realm, epoch);
        let limiter = FailureLimiter::new(
            config.max_failures,
            config.failure_window,
            config.max_tracked_clients,
        );
        let dummy_ha1 = HashFunction::ALL
            .map(|h| HashedHa1::new(h, digest::ha1_digest(h, "", &config.realm, DUMMY_SECRET)));
        Verifier {
            ha1s: Ha1Cache::new(&config.realm),
            dummy_ha1,
            qop: config.qop.clone(),
            domain: (!config.domain.is_empty()).then(|| config.domain.join(" ")),
            key,
            credentials,
            counts,
            limiter,
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The nonce-count store (the fairing runs its cleanup).
    pub(crate) fn nonce_counts(&self) -> &Arc<dyn NonceCountStore> {
        &self.counts
    }

    /// `WWW-Authenticate` values, one per configured algorithm in order,
    /// sharing one fresh nonce.
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        let nonce = self.mint(now());
        self.config
            .algorithms
            .iter()
            .map(|&algorithm| {
                Challenge {
                    realm: &self.config.realm,
                    domain: self.domain.as_deref(),
                    nonce: &nonce,
                    opaque: self.config.opaque.as_deref(),
                    algorithm,
                    qop: &self.qop,
                    stale,
                    userhash: self.config.userhash,
                }
                .to_string()
            })
            .collect()
    }

    /// Verifies a request now.
    pub async fn verify(&self, req: &RequestParts<'_>) -> Result<Verified, Rejection> {
        self.verify_at(req, now()).await
    }

    /// Verifies a request as if at unix time `now`.
    pub async fn verify_at(&self, req: &RequestParts<'_>, now: i64) -> Result<Verified, Rejection> {
        let challenge = Rejection::Challenge { stale: false };
        let Some(header) = req.authorization else {
            return Err(challenge);
        };
        let Some(auth) = Authorization::parse(header)? else {
            return Err(challenge);
        };

        // What the server did not offer is answered with what it does offer.
        let qop_offered = match &auth.qop {
            None => self.config.allow_rfc2069,
            Some(q) => self.qop.contains(&q.kind),
        };
        let opaque_ok = match &self.config.opaque {
            None => true,
            Some(o) => auth.opaque.as_deref() == Some(o.as_str()),
        };
        if auth.realm != self.config.realm
            || !self.config.algorithms.contains(&auth.algorithm)
            || !qop_offered
            || !opaque_ok
            || (auth.userhash && !self.config.userhash)
        {
            return Err(challenge);
        }
        // RFC 7616 3.4.2 defines the -sess algorithms with a cnonce only.
        if auth.algorithm.is_session() && auth.qop.is_none() {
            return Err(challenge);
        }
        let body: &[u8] = match (auth.qop.as_ref().map(|q| q.kind), req.body) {
            (Some(Qop::AuthInt), Body::Unread) => return Err(Rejection::BodyNotCovered),
            (_, Body::Bytes(bytes)) => bytes,
            _ => b"",
        };
        if !self.uri_matches_target(&auth.uri, req.target) {
            return Err(Rejection::UriMismatch);
        }

        let issued_at = match self.key.check(&auth.nonce, now, self.lifetime()) {
            NonceStatus::Invalid => return Err(challenge),
            NonceStatus::Stale => None,
            NonceStatus::Fresh { issued_at } => Some(issued_at),
        };

        // A plain name is the key itself: a locked pair is refused before the
        // lookup. A userhash is keyed on the user it resolves to, below.
        if !auth.userhash {
            if let Err(retry_after) = self.limiter.check(&auth.username, req.client, now) {
                return Err(Rejection::TooManyAttempts { retry_after });
            }
        }

        let found = if auth.userhash {
            let h = auth.algorithm.hash_function();
            self.within_store_timeout(self.credentials.credential_by_userhash(h, &auth.username))
                .await?
        } else {
            self.within_store_timeout(self.credentials.credential(&auth.username))
                .await?
        };
        let known_ha1 = found
            .as_ref()
            .and_then(|c| self.ha1s.ha1(c, auth.algorithm));
        let known = known_ha1.is_some();
        // An unknown user is checked against a fixed HA1: as cheap as a
        // known user's cached one, so timing does not tell them apart.
        let ha1 = known_ha1.unwrap_or_else(|| self.dummy_ha1[dummy_slot(auth.algorithm)].clone());

        let qop = auth.qop.as_ref();
        let body_hash = match qop.map(|q| q.kind) {
            Some(Qop::AuthInt) => Some(auth.algorithm.hash_digest(body)),
            _ => None,
        };
        let kd = match qop {
            Some(q) if auth.algorithm.is_session() => {
                let effective_ha1 =
                    digest::session_ha1(auth.algorithm, ha1.hex(), &auth.nonce, Some(&q.cnonce));
                digest::KeyedDigest::new(auth.algorithm, &effective_ha1, &auth.nonce, qop)
            }
            _ => digest::KeyedDigest::after_ha1(&ha1, &auth.nonce, qop),
        };
        let expected = kd.response(req.method, &auth.uri, body_hash.as_deref().unwrap_or(""));
        let matches = expected.ct_matches(&auth.response);
        // The user the store resolved (a userhash, `username*` and the plain
        // name are one user); a name nobody has keys on itself as sent.
        let user = found.as_ref().map_or(&*auth.username, |c| &c.username);
        let right = known && matches;
        // Judged and counted in one step, with no await since the check: at
        // most `max_failures` wrong guesses per pair and window are answered.
        if let Err(retry_after) = self.limiter.settle(user, req.client, right, now) {
            return Err(Rejection::TooManyAttempts { retry_after });
        }
        let credential = match found {
            Some(c) if right => c,
            _ => return Err(challenge),
        };

        // The digest is right: from here on the client knows the secret, and
        // a refusal carries stale=true so it retries without asking the user.
        let Some(issued_at) = issued_at else {
            return Err(Rejection::Challenge { stale: true });
        };
        let expires_at = issued_at + self.lifetime();
        // Recorded only now that the response checked out, so nobody can burn
        // a legitimate client's count with a bad response. RFC 2069 requests
        // have no count: their nonce is single-use.
        let (cnonce, nc) = qop.map_or(("", 0), |q| (&*q.cnonce, q.nc));
        match self
            .within_store_timeout(self.counts.claim(ClaimRequest::new(
                &auth.nonce,
                cnonce,
                nc,
                expires_at,
                self.config.nc_window,
            )))
            .await?
        {
            Claim::Accepted => {}
            Claim::Replayed => return Err(Rejection::Challenge { stale: true }),
        }
        self.limiter.succeed(&credential.username, req.client);

        let nextnonce = (self.config.nextnonce_within > 0
            && expires_at - now <= self.config.nextnonce_within as i64)
            .then(|| self.mint(now));
        let rspauth = kd.rspauth(&auth.uri);
        Ok(Verified {
            authentication_info: AuthenticationInfo {
                rspauth: rspauth.into(),
                qop: qop.map(|q| (q.kind, q.nc_raw.to_string(), q.cnonce.to_string())),
                nextnonce,
            },
            credential,
        })
    }

    /// A nonce minted at `now`, in the count store's generation if it has one.
    fn mint(&self, now: i64) -> String {
        match self.counts.nonce_generation() {
            Some(generation) => self.key.mint_in(now, generation),
            None => self.key.mint(now),
        }
    }

    /// A store's answer within `store_timeout`: a store that hangs fails the
    /// request closed (503) instead of holding it.
    async fn within_store_timeout<T>(
        &self,
        query: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Rejection> {
        // Most answers are ready at once (memory, the credential cache, a
        // leased block): those skip the timer, which cost about 1 µs each.
        let mut query = std::pin::pin!(query);
        let first =
            std::future::poll_fn(|cx| std::task::Poll::Ready(query.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(answer) = first {
            return Ok(answer?);
        }
        let limit = std::time::Duration::from_secs(self.config.store_timeout);
        match rocket::tokio::time::timeout(limit, query).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(StoreError::new(format!(
                "no answer within store_timeout ({} s)",
                self.config.store_timeout
            ))
            .into()),
        }
    }

    fn lifetime(&self) -> i64 {
        self.config.nonce_lifetime as i64
    }

    /// Whether the signed `uri` names `target`: compared as received, after
    /// dropping an absolute-form's scheme and authority, optionally behind
    /// the configured `uri_prefix`.
    fn uri_matches_target(&self, signed: &str, target: &str) -> bool {
        let signed = strip_absolute_form(signed);
        signed == target
            || self
                .config
                .uri_prefix
                .as_deref()
                .and_then(|prefix| signed.strip_prefix(prefix))
                .is_some_and(|rest| rest == target)
    }
}

/// `http://host:port/path?q` → `/path?q`; `http://host` → `/`.
fn strip_absolute_form(uri: &str) -> Cow<'_, str> {
    let lower_scheme = |s: &str| {
        s.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
            || s.get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
    };
    if !lower_scheme(uri) {
        return Cow::Borrowed(uri);
    }
    let after_scheme = &uri[uri.find("://").map_or(0, |i| i + 3)..];
    match after_scheme.find(['/', '?']) {
        Some(i) if after_scheme.as_bytes()[i] == b'/' => Cow::Borrowed(&after_scheme[i..]),
        // `http://host?q` is the origin form `/?q`: keep the query.
        Some(i) => Cow::Owned(format!("/{}", &after_scheme[i..])),
        None => Cow::Borrowed("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_is_reduced_to_origin_form() {
        assert_eq!(strip_absolute_form("http://h:8000/a?b=c"), "/a?b=c");
        assert_eq!(strip_absolute_form("HTTPS://h/x"), "/x");
        assert_eq!(strip_absolute_form("http://h"), "/");
        assert_eq!(strip_absolute_form("http://h?x=1"), "/?x=1");
        assert_eq!(strip_absolute_form("/a"), "/a");
    }
}

#[cfg(test)]
mod sess_tests {
    use super::*;
    use crate::protocol::{Answer, ClientChallenge};
    use crate::store::{MemoryStore, StoreOptions};

    #[rocket::async_test]
    async fn sess_algorithms_need_a_cnonce() {
        let config = Config {
            algorithms: vec![crate::protocol::Algorithm::Md5Sess],
            allow_rfc2069: true,
            secret: Some("s".repeat(32)),
            ..Config::default()
        };
        let store = Arc::new(MemoryStore::new(StoreOptions::new(&config.realm)));
        store.insert_token("alice", "token");
        let verifier = Verifier::new(config, store.clone(), store).unwrap();
        let www = verifier.challenges(false).remove(0);
        let challenge = ClientChallenge::parse(&www).unwrap().unwrap();
        let answer = |qop| {
            Answer {
                username: "alice",
                password: "token",
                challenge: &challenge,
                method: "GET",
                uri: "/",
                qop,
                nc: 1,
                cnonce: "c",
                body: b"",
                userhash: false,
            }
            .header()
        };
        let rfc2069 = answer(None);
        let parts = RequestParts::new("GET", "/", Some(&rfc2069));
        assert!(matches!(
            verifier.verify(&parts).await,
            Err(Rejection::Challenge { stale: false })
        ));
        let with_qop = answer(Some(Qop::Auth));
        let parts = RequestParts::new("GET", "/", Some(&with_qop));
        assert!(verifier.verify(&parts).await.is_ok());
    }
}
