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

use rocket::http::uri::{Authority, Host};

use crate::config::Config;
use crate::ha1_cache::Ha1Cache;
pub use crate::limiter::FailureLimiter;
use crate::limiter::Limit;
use crate::protocol::digest::HashedHa1;
use crate::protocol::{
    digest, Algorithm, AuthenticationInfo, Authorization, Challenge, HashFunction, NonceKey,
    NonceStatus, ParseError, Qop,
};
use crate::store::{
    Claim, ClaimRequest, Credential, CredentialStore, FailureStore, NonceCountStore, StoreError,
};

/// What the verifier needs to know of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request-target as received: path and query, not percent-decoded.
    pub target: &'a str,
    /// The request's `Host` (HTTP/2: `:authority`), which an absolute-form
    /// `uri` must name; `None` when the request has none.
    pub host: Option<&'a Host<'a>>,
    /// The `Authorization` header value, if any.
    pub authorization: Option<&'a str>,
    /// The client's address, for brute-force limiting.
    pub client: Option<IpAddr>,
    /// The request body, as far as the caller can see it.
    pub body: Body<'a>,
}

impl<'a> RequestParts<'a> {
    /// A bodiless request from an unknown address, without a `Host`.
    pub fn new(method: &'a str, target: &'a str, authorization: Option<&'a str>) -> Self {
        RequestParts {
            method,
            target,
            host: None,
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
    /// 400: the signed `uri` does not name this request's target (or, in
    /// absolute form, not this request's `Host`).
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
    /// 403: the digest checked out, but the app's
    /// [`DigestUser`](crate::DigestUser) refused the user for this route.
    #[error("the user may not use this resource")]
    Forbidden,
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
            Rejection::Forbidden => 403,
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
    /// The `Authentication-Info` header value to send with the response
    /// ([`AuthenticationInfo::parse`] reads it back).
    pub authentication_info: String,
}

/// Verifies requests against the configuration and the stores.
pub struct Verifier {
    config: Config,
    key: NonceKey,
    qop: Vec<Qop>,
    domain: Option<String>,
    credentials: Arc<dyn CredentialStore>,
    counts: Arc<dyn NonceCountStore>,
    limit: Limit,
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

/// Unix seconds now (without a calendar date, which the checks never need).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
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
        let limit = Limit::new(&config, None);
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
            limit,
            config,
        }
    }

    /// Shares the failure limit through `store` (the built-in database or
    /// Redis store): one limit per (user, client address) for every
    /// instance using it, instead of one per process. See
    /// [`FailureStore`] for the bound.
    #[must_use]
    pub fn with_failure_store(mut self, store: Arc<dyn FailureStore>) -> Verifier {
        self.limit = Limit::new(&self.config, Some(store));
        self
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
        if !self.uri_matches_target(&auth.uri, req.target, req.host) {
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
            if let Err(retry_after) = self.limit.local.check(&auth.username, req.client, now) {
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
        // most `max_failures` wrong guesses per pair and window are answered,
        // by this process and, with a failure store, by the whole fleet.
        if let Err(retry_after) = self
            .within_store_timeout(self.limit.settle(user, req.client, right, now))
            .await?
        {
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
        self.within_store_timeout(self.limit.succeed(&credential.username, req.client, now))
            .await?;

        let nextnonce = (self.config.nextnonce_within() > 0
            && expires_at - now <= self.config.nextnonce_within() as i64)
            .then(|| self.mint(now));
        let rspauth = kd.rspauth(&auth.uri);
        Ok(Verified {
            authentication_info: AuthenticationInfo::value_of(
                rspauth.as_str(),
                qop.map(|q| (q.kind, &*q.nc_raw, &*q.cnonce)),
                nextnonce.as_deref(),
            ),
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

    /// Whether the signed `uri` names `target`: compared as received,
    /// optionally behind the configured `uri_prefix`. An absolute-form `uri`
    /// must name `host` (RFC 7616 3.4.6: the uri is the request's resource),
    /// and there is none to name without a `Host`.
    fn uri_matches_target(&self, signed: &str, target: &str, host: Option<&Host<'_>>) -> bool {
        let signed = match split_absolute_form(signed) {
            None => Cow::Borrowed(signed),
            Some(absolute) if host.is_some_and(|host| absolute.names(host)) => absolute.origin,
            Some(_) => return false,
        };
        signed == target
            || self
                .config
                .uri_prefix
                .as_deref()
                .and_then(|prefix| signed.strip_prefix(prefix))
                .is_some_and(|rest| rest == target)
    }
}

/// An `http` or `https` absolute-form `uri`, split.
struct AbsoluteForm<'a> {
    /// The scheme's default port, which an authority may leave out.
    default_port: u16,
    /// As written: `host`, `host:port`, `[v6]:port`.
    authority: &'a str,
    /// The same resource in origin form: `/path?q`.
    origin: Cow<'a, str>,
}

impl AbsoluteForm<'_> {
    /// Whether the authority is `host`'s: the name compared without case, a
    /// port equal to the scheme's default the same as none, no user info.
    fn names(&self, host: &Host<'_>) -> bool {
        let Ok(signed) = Authority::parse(self.authority) else {
            return false;
        };
        let port = |port: Option<u16>| port.filter(|&p| p != self.default_port);
        signed.user_info().is_none()
            && host.domain() == signed.host()
            && port(host.port()) == port(signed.port())
    }
}

/// `http://host:port/path?q` split into the default port 80, `host:port` and
/// `/path?q`; `http://host` has the origin form `/`. `None` for a uri that
/// is not absolute-form `http` or `https`.
fn split_absolute_form(uri: &str) -> Option<AbsoluteForm<'_>> {
    let starts_with = |prefix: &str| {
        uri.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let (default_port, after_scheme) = if starts_with("https://") {
        (443, &uri[8..])
    } else if starts_with("http://") {
        (80, &uri[7..])
    } else {
        return None;
    };
    let (authority, origin) = match after_scheme.find(['/', '?']) {
        Some(i) if after_scheme.as_bytes()[i] == b'/' => {
            (&after_scheme[..i], Cow::Borrowed(&after_scheme[i..]))
        }
        // `http://host?q` is the origin form `/?q`: keep the query.
        Some(i) => (
            &after_scheme[..i],
            Cow::Owned(format!("/{}", &after_scheme[i..])),
        ),
        None => (after_scheme, Cow::Borrowed("/")),
    };
    Some(AbsoluteForm {
        default_port,
        authority,
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_is_split_into_authority_and_origin_form() {
        let split = |uri| {
            split_absolute_form(uri).map(|a| (a.default_port, a.authority, a.origin.into_owned()))
        };
        let owned = |port, authority, origin: &str| Some((port, authority, origin.to_owned()));
        assert_eq!(split("http://h:8000/a?b=c"), owned(80, "h:8000", "/a?b=c"));
        assert_eq!(split("HTTPS://h/x"), owned(443, "h", "/x"));
        assert_eq!(split("http://h"), owned(80, "h", "/"));
        assert_eq!(split("http://h?x=1"), owned(80, "h", "/?x=1"));
        assert_eq!(split("/a"), None);
        assert_eq!(split("ftp://h/a"), None);
    }

    #[test]
    fn the_authority_must_name_the_host() {
        let names = |uri, host| {
            let host = Host::parse(host).unwrap();
            split_absolute_form(uri).unwrap().names(&host)
        };
        assert!(names("http://H.example/", "h.EXAMPLE"));
        assert!(names("http://h:80/", "h"));
        assert!(names("http://h/", "h:80"));
        assert!(names("https://h:443/", "h"));
        assert!(names("http://[::1]:8000/", "[::1]:8000"));
        assert!(!names("http://h/", "h:443"));
        assert!(!names("https://h/", "h:80"));
        assert!(!names("http://h:8000/", "h:8001"));
        assert!(!names("http://evil/", "h"));
        assert!(!names("http://u@h/", "h"));
        assert!(!names("http:///", "h"));
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
