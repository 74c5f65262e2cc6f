//! Rocket local-client integration tests: every row of the status table and
//! the protocol of issue 2, against rockets built in-process with the memory
//! store and with the default SQLite store (a temporary database file).
//!
//! Challenges are answered with the crate's own client
//! (`protocol::{ClientChallenge, DigestClient, Answer}`); `Authentication-Info`
//! is checked by recomputing `rspauth` with `protocol::digest`.
//!
//! Layout: helpers first (routes, rockets, requests, header parsing), then
//! the tests, grouped as the status table is: challenges, success, malformed
//! and uri, refusals, stale and replay, RFC 2069 and usernames, the Rocket
//! glue (optional guard, Sentinel, config), custom types and stores,
//! concurrency, brute force, tokens, and the SQLite store.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::local::{challenge_for, get, issue, send, session, with_auth, Reply};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Json, Value};
use rocket::{catch, catchers, get, post, routes, Build, Request, Rocket};
use rocket_digest_auth::catcher::{ChallengeResponse, UNAUTHORIZED_BODY};
use rocket_digest_auth::protocol::{
    digest, grammar, Algorithm, Answer, AuthenticationInfo, Authorization, ClientChallenge,
    DigestClient, HashFunction, Qop,
};
use rocket_digest_auth::store::{
    Claim, ClaimRequest, Credential, CredentialStore, MemoryStore, NonceCountStore, Secret,
    StoreError, StoreOptions,
};
use rocket_digest_auth::verifier::{RequestParts, Verifier};
use rocket_digest_auth::{
    Config, DigestAuth, DigestAuthenticated, DigestUser, Rejection, Tokens, User,
};

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

const REALM: &str = "local client tests";
const SECRET: &str = "a nonce secret for the local-client tests, > 32 bytes";

#[get("/")]
fn public() -> &'static str {
    "public"
}

#[get("/me")]
fn me(user: DigestAuthenticated<User>) -> Json<Value> {
    Json(json!({ "username": user.username }))
}

#[get("/maybe")]
fn maybe(user: Option<DigestAuthenticated<User>>) -> Json<Value> {
    Json(json!({ "username": user.map(|u| u.into_inner().username) }))
}

#[get("/vip")]
fn vip(user: DigestAuthenticated<NotMallory>) -> Json<Value> {
    Json(json!({ "vip": user.name }))
}

#[post("/upload", data = "<body>")]
fn upload(user: DigestAuthenticated<User>, body: String) -> Json<Value> {
    Json(json!({ "username": user.username, "bytes": body.len() }))
}

/// An app's own 401 catcher, for `catcher = false`.
#[catch(401)]
fn sign_in_please(request: &Request<'_>) -> ChallengeResponse {
    ChallengeResponse::for_request(request).with_body("Please sign in.\n")
}

/// An app's user type that refuses one account although its digest is right
/// (a disabled account).
struct NotMallory {
    name: String,
}

#[rocket::async_trait]
impl DigestUser for NotMallory {
    async fn from_credential(
        credential: Credential,
        _: &Request<'_>,
    ) -> Result<Option<Self>, StoreError> {
        Ok((credential.username != "mallory").then_some(NotMallory {
            name: credential.username,
        }))
    }
}

// ---------------------------------------------------------------------------
// Custom stores
// ---------------------------------------------------------------------------

/// An app's own credential store: fixed tokens.
struct FixedTokens(BTreeMap<&'static str, &'static str>);

#[rocket::async_trait]
impl CredentialStore for FixedTokens {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self.0.get(username).map(|token| Credential {
            username: username.to_owned(),
            secret: Secret::Token((*token).to_owned()),
            created_at: None,
        }))
    }
}

/// An htdigest-like store: only MD5 HA1 values.
struct Md5Ha1Only {
    username: &'static str,
    ha1: String,
}

#[rocket::async_trait]
impl CredentialStore for Md5Ha1Only {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        Ok((username == self.username).then(|| Credential {
            username: username.to_owned(),
            secret: Secret::Ha1 {
                md5: Some(self.ha1.clone()),
                sha256: None,
                sha512_256: None,
            },
            created_at: None,
        }))
    }

    fn hash_functions(&self) -> &'static [HashFunction] {
        &[HashFunction::Md5]
    }
}

/// A credential store whose database is down.
struct DownCredentials;

#[rocket::async_trait]
impl CredentialStore for DownCredentials {
    async fn credential(&self, _: &str) -> Result<Option<Credential>, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

/// A nonce-count store whose database is down.
struct DownCounts;

#[rocket::async_trait]
impl NonceCountStore for DownCounts {
    async fn claim(&self, _: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        Err(StoreError::new("connection refused"))
    }

    async fn remove_expired(&self, _: i64) -> Result<u64, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

// ---------------------------------------------------------------------------
// Rockets and clients
// ---------------------------------------------------------------------------

/// Rocket's defaults only: no Rocket.toml, no ROCKET_* environment.
fn base_figment() -> Figment {
    Figment::from(rocket::Config::debug_default()).merge(("log_level", "critical"))
}

/// `[digest_auth]` with the memory store, a fixed secret and realm, plus `settings`.
fn memory(settings: Value) -> Figment {
    base_figment()
        .merge((
            "digest_auth",
            json!({ "store": "memory", "secret": SECRET, "realm": REALM }),
        ))
        .merge(("digest_auth", settings))
}

/// `[digest_auth]` with the default (database) store on a SQLite file in `dir`.
fn sqlite(dir: &tempfile::TempDir, settings: Value) -> Figment {
    let url = common::sqlite_url(&dir.path().join("digest_auth.db"));
    base_figment()
        .merge(("digest_auth", json!({ "secret": SECRET, "realm": REALM })))
        .merge(("digest_auth", settings))
        .merge(("databases.digest_auth.url", url))
}

fn app(fairing: DigestAuth, figment: Figment) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(fairing)
        .mount("/", routes![public, me, maybe, vip, upload])
}

async fn client_with(fairing: DigestAuth, figment: Figment) -> Client {
    match Client::tracked(app(fairing, figment)).await {
        Ok(client) => client,
        Err(e) => panic!("the rocket did not launch: {e}"),
    }
}

async fn client(figment: Figment) -> Client {
    client_with(DigestAuth::fairing(), figment).await
}

/// A client of the memory-store app with `settings`, and alice's new token.
async fn with_alice(settings: Value) -> (Client, String) {
    let client = client(memory(settings)).await;
    let token = issue(&client, "alice").await;
    (client, token)
}

// ---------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------

/// What these tests check on a [`Reply`] beyond its headers.
trait Checks {
    fn json(&self) -> Value;
    /// The first challenge's parameters (all share one nonce and flags).
    fn challenge_params(&self) -> BTreeMap<String, String>;
    fn is_stale(&self) -> bool;
    /// `Some(stale)` for a 401 with challenges, `None` otherwise.
    fn is_stale_or_none(&self) -> Option<bool>;
    fn assert_401(&self, stale: bool);
}

impl Checks for Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    fn challenge_params(&self) -> BTreeMap<String, String> {
        let first = self.headers.all("WWW-Authenticate");
        params(first.first().expect("a WWW-Authenticate header"))
    }

    fn is_stale(&self) -> bool {
        let challenges = self.headers.challenges();
        assert!(!challenges.is_empty(), "no challenge in {self:?}");
        let stale = challenges[0].stale;
        assert!(challenges.iter().all(|c| c.stale == stale));
        stale
    }

    fn is_stale_or_none(&self) -> Option<bool> {
        (!self.headers.all("WWW-Authenticate").is_empty()).then(|| self.is_stale())
    }

    fn assert_401(&self, stale: bool) {
        assert_eq!(self.status, Status::Unauthorized, "{self:?}");
        assert_eq!(self.body, UNAUTHORIZED_BODY);
        assert_eq!(self.is_stale(), stale, "stale flag in {self:?}");
    }
}

/// `GET uri` answered by session `s` (its next count): the header sent and
/// the reply.
async fn signed_get(client: &Client, s: &mut DigestClient, uri: &str) -> (String, Reply) {
    let header = s.authorization("GET", uri);
    let reply = get(client, uri, Some(&header)).await;
    (header, reply)
}

/// `GET /me` from the address 192.0.2.`last`, answered by session `s`.
async fn attempt_from(client: &Client, last: u8, s: &mut DigestClient) -> Reply {
    let remote = SocketAddr::from(([192, 0, 2, last], 40000));
    let header = s.authorization("GET", "/me");
    send(with_auth(client.get("/me"), Some(&header)).remote(remote)).await
}

/// A hand-crafted `qop=auth` GET answer.
fn answer<'a>(
    username: &'a str,
    token: &'a str,
    challenge: &'a ClientChallenge,
    uri: &'a str,
    nc: u32,
    cnonce: &'a str,
) -> Answer<'a> {
    Answer {
        username,
        password: token,
        challenge,
        method: "GET",
        uri,
        qop: Some(Qop::Auth),
        nc,
        cnonce,
        body: b"",
        userhash: false,
    }
}

/// alice's RFC 2069 answer (no qop, nc or cnonce) for `GET uri`.
fn rfc2069_answer(token: &str, challenge: &ClientChallenge, uri: &str) -> String {
    Answer {
        qop: None,
        ..answer("alice", token, challenge, uri, 1, "c")
    }
    .header()
}

/// alice's answer for `GET /me` with `username` replaced by its userhash.
fn userhash_answer(token: &str, challenge: &ClientChallenge) -> String {
    Answer {
        userhash: true,
        ..answer("alice", token, challenge, "/me", 1, "c")
    }
    .header()
}

/// `name=value` and `name="quoted"` pairs of a header value, names lower-cased
/// (a leading `Digest ` scheme is skipped); each must be valid and given once.
fn params(value: &str) -> BTreeMap<String, String> {
    let list = grammar::digest_params(value).unwrap_or(value);
    grammar::params(list)
        .map(|p| {
            let (name, v) = p.unwrap_or_else(|e| panic!("{value}: {e}"));
            (name.to_ascii_lowercase(), v.into_owned())
        })
        .collect()
}

/// Checks `Authentication-Info` against the request header `sent`:
/// `rspauth` recomputed (A2 with an empty method), `qop`, `nc` and `cnonce`
/// echoed. Returns it.
fn check_authentication_info(
    reply: &Reply,
    sent: &str,
    username: &str,
    token: &str,
) -> AuthenticationInfo {
    let info = reply
        .headers
        .authentication_info()
        .unwrap_or_else(|| panic!("no Authentication-Info in {reply:?}"));
    let auth = Authorization::parse(sent).unwrap().unwrap();
    let alg = auth.algorithm;
    let q = auth.qop.as_ref().expect("a qop request");
    let ha1 = digest::ha1(alg, username, &auth.realm, token);
    let ha1 = digest::session_ha1(alg, &ha1, &auth.nonce, Some(&q.cnonce));
    let rspauth = digest::rspauth(alg, &ha1, &auth.nonce, &auth.uri, Some(q));
    assert_eq!(rspauth, info.rspauth, "{alg}: {info:?}");
    let echoed = (q.kind, q.nc_raw.to_string(), q.cnonce.to_string());
    assert_eq!(info.qop, Some(echoed));
    info
}

/// A verifier over a memory store with `alice`'s token, for tests that set
/// the clock themselves.
fn verifier_with_alice(config: Config) -> (Verifier, String) {
    let store = Arc::new(MemoryStore::new(StoreOptions::new(&config.realm)));
    let token = "alice's token, chosen by the test";
    store.insert_token("alice", token);
    (
        Verifier::new(config, store.clone(), store).unwrap(),
        token.to_owned(),
    )
}

/// Challenges minted in one known unix second: `(challenges, second)`.
fn challenges_at_known_second(verifier: &Verifier) -> (Vec<String>, i64) {
    loop {
        let before = chrono::Utc::now().timestamp();
        let challenges = verifier.challenges(false);
        if chrono::Utc::now().timestamp() == before {
            return (challenges, before);
        }
    }
}

// ---------------------------------------------------------------------------
// 401 challenges
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn no_header_gets_one_challenge_per_algorithm_sha256_first_then_md5() {
    let client = client(memory(json!({}))).await;
    let reply = get(&client, "/me", None).await;
    reply.assert_401(false);
    let values = reply.headers.all("WWW-Authenticate");
    assert_eq!(values.len(), 2, "{values:?}");
    let mut nonces = Vec::new();
    for (value, algorithm) in values.iter().zip(["SHA-256", "MD5"]) {
        assert!(value.starts_with("Digest "), "{value}");
        let p = params(value);
        assert_eq!(p["realm"], REALM);
        assert_eq!(p["qop"], "auth");
        assert_eq!(p["algorithm"], algorithm);
        assert_eq!(p["charset"], "UTF-8");
        assert!(!p["nonce"].is_empty());
        for absent in ["opaque", "userhash", "domain", "stale"] {
            assert!(!p.contains_key(absent), "{absent} in {value}");
        }
        nonces.push(p["nonce"].clone());
    }
    assert_eq!(nonces[0], nonces[1], "the challenges share one nonce");
    // Every 401 carries a fresh nonce.
    let again = get(&client, "/me", None).await;
    assert_ne!(again.challenge_params()["nonce"], nonces[0]);
}

#[rocket::async_test]
async fn other_schemes_get_the_challenge_like_no_header() {
    let client = client(memory(json!({}))).await;
    let none = get(&client, "/me", None).await;
    for header in ["Basic YWxpY2U6c2VjcmV0", "Bearer abc.def", "Digest-ish x=y"] {
        let reply = get(&client, "/me", Some(header)).await;
        reply.assert_401(false);
        assert_eq!(reply.headers.names(), none.headers.names(), "{header}");
        let algorithms: Vec<Algorithm> = reply
            .headers
            .challenges()
            .iter()
            .map(|c| c.algorithm)
            .collect();
        assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5], "{header}");
    }
}

#[rocket::async_test]
async fn challenge_carries_opaque_userhash_and_domain_when_configured() {
    let client = client(memory(json!({
        "opaque": "opaque-value",
        "userhash": true,
        "domain": ["/me", "/maybe"],
        "algorithms": ["SHA-512-256", "MD5-sess"],
    })))
    .await;
    let reply = get(&client, "/me", None).await;
    reply.assert_401(false);
    let values = reply.headers.all("WWW-Authenticate");
    assert_eq!(values.len(), 2);
    for (value, algorithm) in values.iter().zip(["SHA-512-256", "MD5-sess"]) {
        let p = params(value);
        assert_eq!(p["algorithm"], algorithm);
        assert_eq!(p["opaque"], "opaque-value");
        assert_eq!(p["userhash"], "true");
        assert_eq!(p["domain"], "/me /maybe");
        assert_eq!(p["charset"], "UTF-8");
        assert_eq!(p["realm"], REALM);
        assert_eq!(p["qop"], "auth");
    }
}

// ---------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn success_with_each_of_the_six_algorithms_verifies_rspauth() {
    let all = Algorithm::ALL.map(Algorithm::as_str);
    let (client, token) = with_alice(json!({ "algorithms": all })).await;
    let reply = get(&client, "/me", None).await;
    let challenges = reply.headers.challenges();
    let offered: Vec<Algorithm> = challenges.iter().map(|c| c.algorithm).collect();
    assert_eq!(offered, Algorithm::ALL, "in the configured order");
    for challenge in challenges {
        let alg = challenge.algorithm;
        let mut session = DigestClient::new("alice", &token, challenge);
        for _ in 0..2 {
            let (header, reply) = signed_get(&client, &mut session, "/me").await;
            assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
            assert_eq!(reply.json(), json!({ "username": "alice" }));
            let info = check_authentication_info(&reply, &header, "alice", &token);
            assert!(info.nextnonce.is_none(), "{alg}: fresh nonce");
        }
    }
}

#[rocket::async_test]
async fn default_config_authenticates_with_sha256_and_md5() {
    let (client, token) = with_alice(json!({})).await;
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut s = session(&client, "alice", &token, alg).await;
        let (header, reply) = signed_get(&client, &mut s, "/me").await;
        assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
        assert_eq!(reply.json(), json!({ "username": "alice" }));
        check_authentication_info(&reply, &header, "alice", &token);
        assert!(reply.headers.all("WWW-Authenticate").is_empty());
    }
}

#[rocket::async_test]
async fn nextnonce_is_sent_when_the_nonce_nears_its_end_and_works() {
    // 10 s nonces, nextnonce in the last 9 s: after one second it is due.
    let (client, token) = with_alice(json!({ "nonce_lifetime": 10, "nextnonce_within": 9 })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    let info = check_authentication_info(&reply, &header, "alice", &token);
    let next = info.nextnonce.as_ref().expect("nextnonce near the end");
    assert_ne!(next, &s.challenge().nonce);
    s.set_nonce(next);
    let (_, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(
        reply.status,
        Status::Ok,
        "the nextnonce is accepted: {reply:?}"
    );
}

#[rocket::async_test]
async fn nextnonce_appears_exactly_nextnonce_within_seconds_before_expiry() {
    let config = Config::default()
        .with_secret(SECRET)
        .with_nonce_lifetime(300)
        .with_nextnonce_within(60);
    let (verifier, token) = verifier_with_alice(config);
    let (challenges, t0) = challenges_at_known_second(&verifier);
    let challenge = ClientChallenge::parse(&challenges[0]).unwrap().unwrap();
    let mut s = DigestClient::new("alice", &token, challenge);

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    let verified = verifier.verify_at(&parts, t0 + 239).await.unwrap();
    assert_eq!(verified.authentication_info.nextnonce, None, "61 s left");

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    let verified = verifier.verify_at(&parts, t0 + 240).await.unwrap();
    let next = verified.authentication_info.nextnonce.expect("60 s left");

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    assert!(matches!(
        verifier.verify_at(&parts, t0 + 300).await,
        Err(Rejection::Challenge { stale: true })
    ));

    s.set_nonce(&next);
    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    assert!(verifier.verify_at(&parts, t0 + 300).await.is_ok());
}

#[rocket::async_test]
async fn auth_int_without_a_body_succeeds_and_with_an_unread_body_is_400() {
    let (client, token) = with_alice(json!({ "qop": ["auth", "auth-int"] })).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    assert_eq!(challenge.qop, [Qop::Auth, Qop::AuthInt]);

    let header = Answer {
        qop: Some(Qop::AuthInt),
        ..answer("alice", &token, &challenge, "/me", 1, "c1")
    }
    .header();
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert!(reply
        .headers
        .one("Authentication-Info")
        .unwrap()
        .contains("qop=auth-int"));

    // A request guard cannot read the body: auth-int over a body is refused.
    let header = Answer {
        qop: Some(Qop::AuthInt),
        method: "POST",
        body: b"payload",
        ..answer("alice", &token, &challenge, "/upload", 2, "c1")
    }
    .header();
    let request = client
        .post("/upload")
        .header(Header::new("Authorization", header))
        .header(Header::new("Content-Length", "7"))
        .body("payload");
    let reply = send(request).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
}

#[rocket::async_test]
async fn real_client_quirks_are_tolerated() {
    let client = client(memory(json!({}))).await;
    // A username with a quote and a backslash travels escaped.
    let name = r#"o"brien\x"#;
    let token = issue(&client, name).await;
    let challenge = challenge_for(&client, Algorithm::Md5).await;
    // nc=0000000a: lower-case hex, and a count that does not start at 1.
    let header = answer(name, &token, &challenge, "/me", 10, "f2/wE4q74E6zIJ").header();
    assert!(header.contains("nc=0000000a") && header.contains(r#"o\"brien\\x"#));
    let variants = [
        // Python requests quotes token values.
        header
            .replace("algorithm=MD5", "algorithm=\"MD5\"")
            .replace("qop=auth", "qop=\"auth\""),
        // Any case in the scheme and parameter names, extra whitespace,
        // an unknown parameter.
        header
            .replacen("Digest ", "DIGEST   ", 1)
            .replace("username=", "UserName = ")
            .replace(", uri=", " ,\t Uri=")
            + ", x-unknown=\"ignored\"",
    ];
    // Each variant is sent as its own request (nc 1, 2, ...), with the
    // response our client computes for that count.
    let original = Authorization::parse(&header)
        .unwrap()
        .unwrap()
        .response
        .into_owned();
    for (i, variant) in variants.iter().enumerate() {
        let nc = i as u32 + 1;
        let same = answer(name, &token, &challenge, "/me", nc, "f2/wE4q74E6zIJ").header();
        let response = Authorization::parse(&same)
            .unwrap()
            .unwrap()
            .response
            .into_owned();
        let variant = variant
            .replace("nc=0000000a", &format!("nc={nc:08x}"))
            .replace(&original, &response);
        let reply = get(&client, "/me", Some(&variant)).await;
        assert_eq!(reply.status, Status::Ok, "{variant}: {reply:?}");
        assert_eq!(reply.json(), json!({ "username": name }));
    }
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    check_authentication_info(&reply, &header, name, &token);
}

// ---------------------------------------------------------------------------
// 400: malformed header, uri
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn malformed_digest_headers_get_400() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let good = answer("alice", &token, &challenge, "/me", 1, "abc").header();
    assert!(good.contains("nc=00000001"));
    let cases = [
        ("duplicate parameter", format!("{good}, nc=00000002")),
        (
            "duplicate realm, other case",
            format!("{good}, REALM=\"x\""),
        ),
        (
            "unterminated quote",
            good.replacen("cnonce=\"abc\"", "cnonce=\"abc", 1),
        ),
        ("non-hex nc", good.replace("nc=00000001", "nc=0000000g")),
        ("short nc", good.replace("nc=00000001", "nc=1")),
        ("nc without qop", good.replace("qop=auth, ", "")),
        ("missing uri", good.replacen("uri=\"/me\", ", "", 1)),
        (
            "unknown algorithm",
            good.replace("algorithm=SHA-256", "algorithm=SHA-1"),
        ),
        (
            "non-hex response",
            good.replacen("response=\"", "response=\"zz", 1),
        ),
        ("garbage", "Digest ,,, =".to_owned()),
        ("too long", format!("{good}, x=\"{}\"", "a".repeat(20_000))),
    ];
    for (what, header) in cases {
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::BadRequest, "{what}: {reply:?}");
    }
    // The well-formed header still works: nothing was spent by the bad ones.
    let reply = get(&client, "/me", Some(&good)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

#[rocket::async_test]
async fn uri_that_is_not_the_request_target_gets_400() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    for signed in ["/maybe", "/me/", "/ME", "/me?x=1", "http://localhost/other"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::BadRequest, "{signed}: {reply:?}");
    }
}

#[rocket::async_test]
async fn absolute_form_uri_is_accepted() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    for signed in ["http://localhost/me", "https://example.org:8443/me"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Ok, "{signed}: {reply:?}");
        check_authentication_info(&reply, &header, "alice", &token);
    }
}

#[rocket::async_test]
async fn query_strings_are_compared_as_received() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = s.authorization("GET", "/me?a=%20b");
    let reply = get(&client, "/me?a=%20b", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "alice" }));
    for decoded_or_other in ["/me?a=+b", "/me?a=%20B", "/me"] {
        let header = s.authorization("GET", decoded_or_other);
        let reply = get(&client, "/me?a=%20b", Some(&header)).await;
        assert_eq!(
            reply.status,
            Status::BadRequest,
            "{decoded_or_other}: {reply:?}"
        );
    }
}

#[rocket::async_test]
async fn uri_prefix_accepts_the_prefixed_uri_of_a_rewriting_proxy() {
    let (client, token) = with_alice(json!({ "uri_prefix": "/app" })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    for signed in ["/app/me", "/me", "http://proxy.example/app/me"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Ok, "{signed}: {reply:?}");
        check_authentication_info(&reply, &header, "alice", &token);
    }
    for signed in ["/other/me", "/appme", "/app"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::BadRequest, "{signed}: {reply:?}");
    }
}

// ---------------------------------------------------------------------------
// 401 without stale: what the server did not offer, forged nonces, wrong users
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn wrong_realm_algorithm_qop_or_opaque_gets_401_without_stale() {
    let (client, token) =
        with_alice(json!({ "algorithms": ["SHA-256"], "opaque": "the-opaque" })).await;
    let good = challenge_for(&client, Algorithm::Sha256).await;
    let variants = [
        (
            "wrong realm",
            ClientChallenge {
                realm: "other realm".into(),
                ..good.clone()
            },
        ),
        (
            "MD5 not offered",
            ClientChallenge {
                algorithm: Algorithm::Md5,
                ..good.clone()
            },
        ),
        (
            "opaque tampered",
            ClientChallenge {
                opaque: Some("the-opaque2".into()),
                ..good.clone()
            },
        ),
        (
            "opaque left out",
            ClientChallenge {
                opaque: None,
                ..good.clone()
            },
        ),
    ];
    for (what, challenge) in &variants {
        let header = answer("alice", &token, challenge, "/me", 1, "c").header();
        let reply = get(&client, "/me", Some(&header)).await;
        reply.assert_401(false);
        assert!(reply.headers.one("Authentication-Info").is_none(), "{what}");
    }
    let auth_int = Answer {
        qop: Some(Qop::AuthInt),
        ..answer("alice", &token, &good, "/me", 1, "c")
    }
    .header();
    get(&client, "/me", Some(&auth_int)).await.assert_401(false);
    // The untampered answer with the same nonce, nc and cnonce still works:
    // refusals spent nothing.
    let header = answer("alice", &token, &good, "/me", 1, "c").header();
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

#[rocket::async_test]
async fn forged_or_altered_nonce_gets_401_without_stale() {
    let (client, token) = with_alice(json!({})).await;
    let good = challenge_for(&client, Algorithm::Sha256).await;
    let mut altered = good.nonce.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let nonces = [
        String::from_utf8(altered).unwrap(),
        "dcd98b7102dd2f0e8b11d0f600bfb0c093".to_owned(),
        "x".repeat(good.nonce.len()),
        String::new(),
    ];
    for nonce in nonces {
        let forged = ClientChallenge {
            nonce: nonce.clone(),
            ..good.clone()
        };
        let header = answer("alice", &token, &forged, "/me", 1, "c").header();
        let reply = get(&client, "/me", Some(&header)).await;
        reply.assert_401(false);
        assert_ne!(reply.challenge_params()["nonce"], nonce);
    }
}

#[rocket::async_test]
async fn nonce_from_another_secret_gets_401_without_stale() {
    let other = client(memory(
        json!({ "secret": "another secret, also at least 32 bytes" }),
    ))
    .await;
    let (client, token) = with_alice(json!({})).await;
    let foreign = challenge_for(&other, Algorithm::Sha256).await;
    let header = answer("alice", &token, &foreign, "/me", 1, "c").header();
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

#[rocket::async_test]
async fn memory_store_nonce_from_an_earlier_process_gets_stale_not_replay() {
    // Same secret, another process (a restart): the memory store's replay
    // records are gone, so its nonces must not be accepted, but a client that
    // knows the secret retries without prompting.
    let before_restart = client(memory(json!({}))).await;
    let (client, token) = with_alice(json!({})).await;
    let old = challenge_for(&before_restart, Algorithm::Sha256).await;
    let header = answer("alice", &token, &old, "/me", 1, "c").header();
    let reply = get(&client, "/me", Some(&header)).await;
    reply.assert_401(true);
}

#[rocket::async_test]
async fn unknown_user_and_wrong_token_look_the_same() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let unknown = answer("nobody", &token, &challenge, "/me", 1, "c").header();
    let wrong = answer("alice", "not-the-token", &challenge, "/me", 1, "c").header();
    let a = get(&client, "/me", Some(&unknown)).await;
    let b = get(&client, "/me", Some(&wrong)).await;
    a.assert_401(false);
    b.assert_401(false);
    assert_eq!(a.status, b.status);
    assert_eq!(a.body, b.body);
    assert_eq!(a.headers.names(), b.headers.names());
    let shape = |r: &Reply| -> Vec<String> {
        r.headers
            .all("WWW-Authenticate")
            .iter()
            .map(|v| {
                let nonce = &params(v)["nonce"];
                v.replace(nonce.as_str(), "<nonce>")
            })
            .collect()
    };
    assert_eq!(shape(&a), shape(&b));
    assert_ne!(a.challenge_params()["nonce"], b.challenge_params()["nonce"]);
    for (name, value) in &a.headers.0 {
        if !name.eq_ignore_ascii_case("WWW-Authenticate") {
            assert_eq!(b.headers.all(name), [value.as_str()], "{name}");
        }
    }
}

// ---------------------------------------------------------------------------
// 401 with stale=true: expired nonces and replays
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn expired_nonce_with_right_digest_gets_stale_and_the_client_recovers() {
    let (client, token) = with_alice(json!({ "nonce_lifetime": 2, "nextnonce_within": 0 })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
    let (_, reply) = signed_get(&client, &mut s, "/me").await;
    reply.assert_401(true);
    assert!(reply.headers.one("Authentication-Info").is_none());

    // The client takes the new nonce without asking the user again.
    let fresh = reply
        .headers
        .challenges()
        .into_iter()
        .find(|c| c.algorithm == Algorithm::Sha256)
        .unwrap();
    s.set_nonce(&fresh.nonce);
    let (_, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

#[rocket::async_test]
async fn expired_nonce_with_wrong_digest_gets_401_without_stale() {
    let client = client(memory(
        json!({ "nonce_lifetime": 2, "nextnonce_within": 0 }),
    ))
    .await;
    issue(&client, "alice").await;
    let mut wrong = session(&client, "alice", "not-the-token", Algorithm::Sha256).await;
    let mut unknown = session(&client, "nobody", "whatever", Algorithm::Sha256).await;
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
    for header in [
        wrong.authorization("GET", "/me"),
        unknown.authorization("GET", "/me"),
    ] {
        get(&client, "/me", Some(&header)).await.assert_401(false);
    }
}

#[rocket::async_test]
async fn replay_of_the_same_header_gets_401_stale() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
    let replay = get(&client, "/me", Some(&header)).await;
    replay.assert_401(true);
    assert!(replay.headers.one("Authentication-Info").is_none());
    // The session goes on with the next count.
    let next = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&next)).await.status, Status::Ok);
}

#[rocket::async_test]
async fn out_of_order_nc_within_the_window_succeed_once_each() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    for nc in [5, 3, 4, 1, 2, 200, 7] {
        let header = answer("alice", &token, &challenge, "/me", nc, "0a4f113b").header();
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Ok, "nc {nc}: {reply:?}");
        check_authentication_info(&reply, &header, "alice", &token);
    }
    for nc in [3, 200] {
        let header = answer("alice", &token, &challenge, "/me", nc, "0a4f113b").header();
        get(&client, "/me", Some(&header)).await.assert_401(true);
    }
}

#[rocket::async_test]
async fn nc_below_the_window_fails() {
    let (client, token) = with_alice(json!({ "nc_window": 64 })).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let at = |nc| answer("alice", &token, &challenge, "/me", nc, "c").header();
    assert_eq!(get(&client, "/me", Some(&at(100))).await.status, Status::Ok);
    // 100 - 64 = 36 is out of the window; 37 is the lowest still accepted.
    get(&client, "/me", Some(&at(36))).await.assert_401(true);
    get(&client, "/me", Some(&at(1))).await.assert_401(true);
    assert_eq!(get(&client, "/me", Some(&at(37))).await.status, Status::Ok);
}

#[rocket::async_test]
async fn a_wrong_response_does_not_burn_the_clients_count() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    // An attacker sees nonce, nc and cnonce go by and sends them first with a bad response.
    let attack = answer("alice", "guess", &challenge, "/me", 1, "c").header();
    get(&client, "/me", Some(&attack)).await.assert_401(false);
    let real = answer("alice", &token, &challenge, "/me", 1, "c").header();
    assert_eq!(get(&client, "/me", Some(&real)).await.status, Status::Ok);
}

// ---------------------------------------------------------------------------
// RFC 2069, username*, userhash
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn rfc2069_request_without_qop_is_refused_by_default() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let header = rfc2069_answer(&token, &challenge, "/me");
    assert!(!header.contains("qop=") && !header.contains("nc="));
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

#[rocket::async_test]
async fn rfc2069_request_succeeds_once_per_nonce_when_allowed() {
    let (client, token) = with_alice(json!({ "allow_rfc2069": true })).await;
    let challenge = challenge_for(&client, Algorithm::Md5).await;
    let rfc2069 = |uri| rfc2069_answer(&token, &challenge, uri);
    let reply = get(&client, "/me", Some(&rfc2069("/me"))).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "alice" }));
    let info = reply
        .headers
        .authentication_info()
        .expect("Authentication-Info");
    assert!(!info.rspauth.is_empty() && info.qop.is_none(), "{info:?}");
    // The nonce is spent, also for another uri.
    get(&client, "/me", Some(&rfc2069("/me")))
        .await
        .assert_401(true);
    let other = get(&client, "/me?x", Some(&rfc2069("/me?x"))).await;
    other.assert_401(true);
    // A new nonce works once more.
    let fresh = challenge_for(&client, Algorithm::Md5).await;
    let header = rfc2069_answer(&token, &fresh, "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
}

#[rocket::async_test]
async fn username_star_rfc5987_resolves_to_the_real_user() {
    let client = client(memory(json!({}))).await;
    let name = "Jäsøn Doe";
    let token = issue(&client, name).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let plain = answer(name, &token, &challenge, "/me", 1, "c").header();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let header = plain.replacen(
        &format!("username=\"{name}\""),
        &format!("username*=UTF-8''{encoded}"),
        1,
    );
    assert!(
        header.is_ascii() && header.contains("username*="),
        "{header}"
    );
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": name }));
    check_authentication_info(&reply, &header, name, &token);
}

async fn userhash_resolves_to_the_real_user(client: &Client) {
    let token = issue(client, "alice").await;
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let challenge = challenge_for(client, alg).await;
        assert!(challenge.userhash, "{alg}");
        let header = userhash_answer(&token, &challenge);
        let sent = Authorization::parse(&header).unwrap().unwrap();
        assert!(sent.userhash && sent.username != "alice", "{header}");
        let reply = get(client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
        assert_eq!(reply.json(), json!({ "username": "alice" }));
        check_authentication_info(&reply, &header, "alice", &token);
    }
}

#[rocket::async_test]
async fn userhash_resolves_to_the_real_user_with_the_memory_store() {
    userhash_resolves_to_the_real_user(&client(memory(json!({ "userhash": true }))).await).await;
}

#[rocket::async_test]
async fn userhash_is_refused_when_not_offered() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let header = userhash_answer(&token, &challenge);
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

// ---------------------------------------------------------------------------
// The Rocket glue: optional guard, Sentinel, configuration
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn optional_guard_is_anonymous_without_header_and_the_user_with_one() {
    let (client, token) = with_alice(json!({})).await;
    let reply = get(&client, "/maybe", None).await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.json(), json!({ "username": null }));
    assert!(reply.headers.all("WWW-Authenticate").is_empty());

    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let mut s = DigestClient::new("alice", &token, challenge);
    let (header, reply) = signed_get(&client, &mut s, "/maybe").await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.json(), json!({ "username": "alice" }));
    check_authentication_info(&reply, &header, "alice", &token);
}

#[rocket::async_test]
async fn guard_without_the_fairing_stops_launch_through_the_sentinel() {
    use rocket::error::ErrorKind;

    // Without guarded routes the same rocket ignites: the config is fine.
    let plain = rocket::custom(base_figment()).mount("/", routes![public]);
    assert!(plain.ignite().await.is_ok());

    // Rocket 0.5 queries Sentinels inside `ignite()`, so it is ignite that fails.
    for rocket in [
        rocket::custom(base_figment()).mount("/", routes![public, me]),
        rocket::custom(base_figment()).mount("/", routes![maybe]),
    ] {
        match rocket.ignite().await {
            Ok(_) => panic!("ignite succeeded without the fairing"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::SentinelAborts(sentries) if !sentries.is_empty()),
                "{e}"
            ),
        }
    }
    let rocket = rocket::custom(base_figment()).mount("/", routes![me]);
    match Client::tracked(rocket).await {
        Ok(_) => panic!("a client launched without the fairing"),
        Err(e) => assert!(matches!(e.kind(), ErrorKind::SentinelAborts(_)), "{e}"),
    }
}

#[rocket::async_test]
async fn invalid_config_stops_ignite_naming_the_key() {
    use rocket::error::ErrorKind;

    let cases = [
        (json!({ "realm": "" }), "realm"),
        (json!({ "realm": "   " }), "realm"),
        (json!({ "algorithms": ["SHA-1"] }), "algorithms"),
        (json!({ "algorithms": [] }), "algorithms"),
        (json!({ "nonce_lifetime": 0 }), "nonce_lifetime"),
        (json!({ "secret": "too short" }), "secret"),
        (json!({ "nc_window": 8 }), "nc_window"),
        (json!({ "no_such_key": 1 }), "no_such_key"),
    ];
    for (settings, key) in cases {
        let figment = memory(settings.clone());
        let message = DigestAuth::config(&figment).unwrap_err().to_string();
        assert!(message.contains(key), "{settings}: {message}");
        match Client::tracked(app(DigestAuth::fairing(), figment)).await {
            Ok(_) => panic!("{settings}: launched"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::FailedFairings(f)
                    if f.iter().any(|i| i.name == "Digest Authentication")),
                "{settings}: {e}"
            ),
        }
    }
}

#[rocket::async_test]
async fn catcher_false_leaves_the_401_to_the_apps_own_catcher() {
    // Without any catcher: Rocket's default 401, no challenge.
    let bare = client(memory(json!({ "catcher": false }))).await;
    let reply = get(&bare, "/me", None).await;
    assert_eq!(reply.status, Status::Unauthorized);
    assert!(
        reply.headers.all("WWW-Authenticate").is_empty(),
        "{reply:?}"
    );

    // An app's own catcher built on ChallengeResponse.
    let rocket = app(DigestAuth::fairing(), memory(json!({ "catcher": false })))
        .register("/", catchers![sign_in_please]);
    let client = match Client::tracked(rocket).await {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    };
    let reply = get(&client, "/me", None).await;
    assert_eq!(reply.status, Status::Unauthorized);
    assert_eq!(reply.body, "Please sign in.\n");
    assert_eq!(reply.headers.challenges().len(), 2);
    assert!(!reply.is_stale());
    let token = issue(&client, "alice").await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
    // stale=true reaches the app's catcher too.
    let replay = get(&client, "/me", Some(&header)).await;
    assert_eq!(replay.status, Status::Unauthorized);
    assert!(replay.is_stale(), "{replay:?}");
}

// ---------------------------------------------------------------------------
// Custom user types and stores; 503
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn custom_user_type_refusing_a_user_gets_401() {
    let client = client(memory(json!({}))).await;
    let alice = issue(&client, "alice").await;
    let mallory = issue(&client, "mallory").await;

    let mut s = session(&client, "alice", &alice, Algorithm::Sha256).await;
    let (_, reply) = signed_get(&client, &mut s, "/vip").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "vip": "alice" }));

    let mut s = session(&client, "mallory", &mallory, Algorithm::Sha256).await;
    let (_, refused) = signed_get(&client, &mut s, "/vip").await;
    refused.assert_401(false);
    // Mallory's credentials are fine elsewhere: it is the user type that refused.
    let header = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
}

#[rocket::async_test]
async fn custom_user_type_refusal_looks_like_any_other_401() {
    let client = client(memory(json!({}))).await;
    let mallory = issue(&client, "mallory").await;
    let mut s = session(&client, "mallory", &mallory, Algorithm::Sha256).await;
    let refused = get(&client, "/vip", Some(&s.authorization("GET", "/vip"))).await;
    let mut wrong = session(&client, "mallory", "not-the-token", Algorithm::Sha256).await;
    let failed = get(&client, "/vip", Some(&wrong.authorization("GET", "/vip"))).await;
    refused.assert_401(false);
    failed.assert_401(false);
    // A refused request is not a successful authentication: no
    // Authentication-Info (rspauth) on the 401.
    assert_eq!(
        refused.headers.names(),
        failed.headers.names(),
        "{refused:?}"
    );
}

#[rocket::async_test]
async fn custom_credential_store_is_used_instead_of_the_builtin_one() {
    let store = FixedTokens(BTreeMap::from([("carol", "carol's fixed token")]));
    let fairing = DigestAuth::fairing().with_credential_store(store);
    let client = client_with(fairing, memory(json!({}))).await;
    assert!(
        client.rocket().state::<Tokens>().is_none(),
        "built-in Tokens would not be the ones in use"
    );
    let mut s = session(&client, "carol", "carol's fixed token", Algorithm::Sha256).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "carol" }));
    check_authentication_info(&reply, &header, "carol", "carol's fixed token");

    let mut wrong = session(&client, "carol", "other", Algorithm::Sha256).await;
    get(&client, "/me", Some(&wrong.authorization("GET", "/me")))
        .await
        .assert_401(false);
}

#[rocket::async_test]
async fn ha1_only_store_serves_its_algorithm_and_refuses_others_at_ignite() {
    let ha1 = || Md5Ha1Only {
        username: "dave",
        ha1: digest::ha1(Algorithm::Md5, "dave", REALM, "dave's password"),
    };
    let fairing = DigestAuth::fairing().with_credential_store(ha1());
    let client = client_with(fairing, memory(json!({ "algorithms": ["MD5"] }))).await;
    let mut s = session(&client, "dave", "dave's password", Algorithm::Md5).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    check_authentication_info(&reply, &header, "dave", "dave's password");

    // The default config offers SHA-256, which this store cannot serve.
    let rocket = app(
        DigestAuth::fairing().with_credential_store(ha1()),
        memory(json!({})),
    );
    match Client::tracked(rocket).await {
        Ok(_) => panic!("launched offering SHA-256 over MD5-only credentials"),
        Err(e) => assert!(
            matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{e}"
        ),
    }
}

#[rocket::async_test]
async fn credential_store_down_gets_503_never_the_route() {
    let fairing = DigestAuth::fairing().with_credential_store(DownCredentials);
    let client = client_with(fairing, memory(json!({}))).await;
    let mut s = session(&client, "alice", "token", Algorithm::Sha256).await;
    let reply = get(&client, "/me", Some(&s.authorization("GET", "/me"))).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    assert!(!reply.body.contains("alice"));
    // No header: no store access needed, still the challenge.
    get(&client, "/me", None).await.assert_401(false);
}

#[rocket::async_test]
async fn nonce_count_store_down_gets_503_even_with_the_right_digest() {
    let fairing = DigestAuth::fairing().with_nonce_count_store(DownCounts);
    let client = client_with(fairing, memory(json!({}))).await;
    let token = issue(&client, "alice").await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let reply = get(&client, "/me", Some(&s.authorization("GET", "/me"))).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    assert!(reply.headers.one("Authentication-Info").is_none());
}

// ---------------------------------------------------------------------------
// Concurrency: 100 requests in flight on one nonce
// ---------------------------------------------------------------------------

async fn hundred_in_parallel_on_one_nonce_then_each_replayed(client: Client) {
    let token = issue(&client, "alice").await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let headers: Vec<String> = (0..100).map(|_| s.authorization("GET", "/me")).collect();
    let ncs: std::collections::BTreeSet<u32> = headers
        .iter()
        .map(|h| Authorization::parse(h).unwrap().unwrap().qop.unwrap().nc)
        .collect();
    assert_eq!(ncs.len(), 100, "distinct nc");

    let client = Arc::new(client);
    let run_all = |headers: Vec<String>| {
        let tasks: Vec<_> = headers
            .into_iter()
            .map(|header| {
                let client = client.clone();
                rocket::tokio::spawn(async move {
                    let reply = get(&client, "/me", Some(&header)).await;
                    (reply.status, reply.is_stale_or_none())
                })
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.expect("task"));
            }
            out
        }
    };
    let first = run_all(headers.clone()).await;
    assert!(
        first.iter().all(|(status, _)| *status == Status::Ok),
        "{first:?}"
    );
    let replays = run_all(headers).await;
    assert!(
        replays
            .iter()
            .all(|r| *r == (Status::Unauthorized, Some(true))),
        "{replays:?}"
    );
}

#[rocket::tokio::test(flavor = "multi_thread", worker_threads = 2, crate = "rocket::tokio")]
async fn hundred_parallel_requests_on_one_nonce_with_the_memory_store() {
    hundred_in_parallel_on_one_nonce_then_each_replayed(client(memory(json!({}))).await).await;
}

// ---------------------------------------------------------------------------
// 429: brute force per (user, address)
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn too_many_failures_from_one_address_get_429_but_not_elsewhere() {
    let (client, token) = with_alice(json!({ "max_failures": 3, "failure_window": 300 })).await;
    let mut guesser = session(&client, "alice", "guess", Algorithm::Sha256).await;
    for attempt in 1..=3 {
        let reply = attempt_from(&client, 1, &mut guesser).await;
        assert_eq!(reply.status, Status::Unauthorized, "attempt {attempt}");
    }
    let fourth = attempt_from(&client, 1, &mut guesser).await;
    assert_eq!(fourth.status, Status::TooManyRequests, "{fourth:?}");
    let retry_after: u64 = fourth
        .headers
        .one("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=300).contains(&retry_after), "{retry_after}");

    // Even the right token is refused from that address for now...
    let mut real = session(&client, "alice", &token, Algorithm::Sha256).await;
    let reply = attempt_from(&client, 1, &mut real).await;
    assert_eq!(reply.status, Status::TooManyRequests);
    // ...but the same user from another address is not locked out,
    let reply = attempt_from(&client, 2, &mut real).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    // and neither is another user from the attacker's address.
    let bob = issue(&client, "bob").await;
    let mut bob = session(&client, "bob", &bob, Algorithm::Sha256).await;
    let reply = attempt_from(&client, 1, &mut bob).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

#[rocket::async_test]
async fn success_resets_the_failure_count() {
    let (client, token) = with_alice(json!({ "max_failures": 3 })).await;
    let mut guesser = session(&client, "alice", "typo", Algorithm::Sha256).await;
    let mut real = session(&client, "alice", &token, Algorithm::Sha256).await;
    for _ in 0..2 {
        let reply = attempt_from(&client, 3, &mut guesser).await;
        assert_eq!(reply.status, Status::Unauthorized);
    }
    let reply = attempt_from(&client, 3, &mut real).await;
    assert_eq!(reply.status, Status::Ok);
    // Counted from zero again: three more failures are 401s, then 429.
    for n in 1..=3 {
        let reply = attempt_from(&client, 3, &mut guesser).await;
        assert_eq!(
            reply.status,
            Status::Unauthorized,
            "failure {n} after the reset"
        );
    }
    let reply = attempt_from(&client, 3, &mut guesser).await;
    assert_eq!(reply.status, Status::TooManyRequests);
}

// ---------------------------------------------------------------------------
// Tokens: issue, rotate, revoke
// ---------------------------------------------------------------------------

async fn tokens_rotate_and_revoke(client: &Client) {
    let tokens = client.rocket().state::<Tokens>().expect("Tokens");
    let old = tokens.issue("alice").await.unwrap();
    let mut s = session(client, "alice", &old, Algorithm::Sha256).await;
    assert_eq!(
        get(client, "/me", Some(&s.authorization("GET", "/me")))
            .await
            .status,
        Status::Ok
    );

    let new = tokens.issue("alice").await.unwrap();
    assert_ne!(new, old);
    assert!(new.len() >= 40, "at least 160 bits as hex: {new}");
    get(client, "/me", Some(&s.authorization("GET", "/me")))
        .await
        .assert_401(false);
    let mut s = session(client, "alice", &new, Algorithm::Sha256).await;
    let (header, reply) = signed_get(client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    check_authentication_info(&reply, &header, "alice", &new);

    assert!(tokens.revoke("alice").await.unwrap());
    get(client, "/me", Some(&s.authorization("GET", "/me")))
        .await
        .assert_401(false);
    assert!(
        !tokens.revoke("alice").await.unwrap(),
        "nothing left to revoke"
    );
}

#[rocket::async_test]
async fn tokens_issue_rotates_and_revoke_refuses_with_the_memory_store() {
    tokens_rotate_and_revoke(&client(memory(json!({}))).await).await;
}

// ---------------------------------------------------------------------------
// The default store: SQLite in a temporary file
// ---------------------------------------------------------------------------

#[rocket::async_test]
async fn sqlite_store_happy_path_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let client = client(sqlite(&dir, json!({}))).await;
    assert!(dir.path().join("digest_auth.db").exists());
    let token = issue(&client, "alice").await;
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut s = session(&client, "alice", &token, alg).await;
        let (header, reply) = signed_get(&client, &mut s, "/me").await;
        assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
        assert_eq!(reply.json(), json!({ "username": "alice" }));
        check_authentication_info(&reply, &header, "alice", &token);
        get(&client, "/me", Some(&header)).await.assert_401(true);
        let next = s.authorization("GET", "/me");
        assert_eq!(get(&client, "/me", Some(&next)).await.status, Status::Ok);
    }
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    for nc in [9, 2, 5] {
        let header = answer("alice", &token, &challenge, "/me", nc, "c").header();
        assert_eq!(
            get(&client, "/me", Some(&header)).await.status,
            Status::Ok,
            "nc {nc}"
        );
    }
    let header = answer("alice", &token, &challenge, "/me", 2, "c").header();
    get(&client, "/me", Some(&header)).await.assert_401(true);
    // Unknown user and wrong token are 401s on this store too.
    let unknown = answer("nobody", &token, &challenge, "/me", 20, "c").header();
    get(&client, "/me", Some(&unknown)).await.assert_401(false);
}

#[rocket::async_test]
async fn sqlite_store_instances_sharing_the_secret_share_nonces_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let a = client(sqlite(&dir, json!({}))).await;
    let b = client(sqlite(&dir, json!({}))).await;
    let token = issue(&a, "alice").await;
    let challenge = challenge_for(&a, Algorithm::Sha256).await;
    let header = answer("alice", &token, &challenge, "/me", 1, "c").header();
    let reply = get(&b, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "A's nonce on B: {reply:?}");
    get(&a, "/me", Some(&header)).await.assert_401(true);
}

#[rocket::async_test]
async fn sqlite_store_tokens_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    tokens_rotate_and_revoke(&client(sqlite(&dir, json!({}))).await).await;
}

#[rocket::async_test]
async fn sqlite_store_resolves_userhash() {
    let dir = tempfile::tempdir().unwrap();
    userhash_resolves_to_the_real_user(&client(sqlite(&dir, json!({ "userhash": true }))).await)
        .await;
}

#[rocket::tokio::test(flavor = "multi_thread", worker_threads = 2, crate = "rocket::tokio")]
async fn hundred_parallel_requests_on_one_nonce_with_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    hundred_in_parallel_on_one_nonce_then_each_replayed(client(sqlite(&dir, json!({}))).await)
        .await;
}
