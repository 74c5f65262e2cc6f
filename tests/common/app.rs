//! The app most local-client tests run: routes, a rocket on each built-in
//! store, hand-made answers, and the `Authentication-Info` check.
//!
//! ```ignore
//! let Some((client, token)) = Store::Sqlite.with_alice(test_name!(), json!({})).await else {
//!     return; // the store is not reachable here (PostgreSQL), reason printed
//! };
//! let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
//! let (header, reply) = signed_get(&client, &mut s, "/me").await;
//! check_authentication_info(&reply, &header, "alice", &token);
//! ```

use std::net::SocketAddr;
use std::ops::Deref;

use rocket::figment::Figment;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, routes, Build, Request, Rocket, Route};
use rocket_digest_auth::protocol::{
    digest, Answer, AuthenticationInfo, Authorization, ClientChallenge, DigestClient, Qop,
};
use rocket_digest_auth::store::Credential;
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, DigestUser, Refusal, User};

use super::local::{get, issue, send, with_auth, Reply};

pub const REALM: &str = "local client tests";
pub const SECRET: &str = "a nonce secret for the local-client tests, > 32 bytes";

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

/// `/` (public), `/me` and `/maybe` (the username as JSON, `/maybe` with
/// an optional guard), `/vip` (refuses mallory) and `POST /upload`.
pub fn routes() -> Vec<Route> {
    routes![public, me, maybe, vip, upload]
}

/// The unguarded `/` and the guarded `/me`, `/maybe`, for Sentinel tests.
pub fn sentinel_routes() -> [Vec<Route>; 3] {
    [routes![public], routes![public, me], routes![maybe]]
}

/// An app's user type that refuses one account although its digest is right
/// (a disabled account).
pub struct NotMallory {
    name: std::sync::Arc<str>,
}

impl DigestUser for NotMallory {
    async fn from_credential(credential: Credential, _: &Request<'_>) -> Result<Self, Refusal> {
        match &*credential.username {
            "mallory" => Err(Refusal::Unauthenticated),
            _ => Ok(NotMallory {
                name: credential.username,
            }),
        }
    }
}

/// Rocket's defaults only: no Rocket.toml, no ROCKET_* environment.
pub fn base_figment() -> Figment {
    Figment::from(rocket::Config::debug_default()).merge(("log_level", "critical"))
}

/// `[digest_auth]` with the fixed secret and realm, plus `settings`.
fn digest_auth(store: Value, settings: Value) -> Figment {
    base_figment()
        .merge(("digest_auth", store))
        .merge(("digest_auth", json!({ "secret": SECRET, "realm": REALM })))
        .merge(("digest_auth", settings))
}

/// `[digest_auth]` with the memory store, plus `settings`.
pub fn memory(settings: Value) -> Figment {
    digest_auth(json!({ "store": "memory" }), settings)
}

/// `[digest_auth]` with the default (database) store on a SQLite file in `dir`.
pub fn sqlite(dir: &tempfile::TempDir, settings: Value) -> Figment {
    let url = super::sqlite_url(&dir.path().join("digest_auth.db"));
    digest_auth(json!({}), settings).merge(("databases.digest_auth.url", url))
}

pub fn app(fairing: DigestAuth, figment: Figment) -> Rocket<Build> {
    rocket::custom(figment).attach(fairing).mount("/", routes())
}

pub async fn client_with(fairing: DigestAuth, figment: Figment) -> Client {
    match Client::tracked(app(fairing, figment)).await {
        Ok(client) => client,
        Err(e) => panic!("the rocket did not launch: {e}"),
    }
}

pub async fn client(figment: Figment) -> Client {
    client_with(DigestAuth::fairing(), figment).await
}

/// A client of the memory-store app with `settings`, and alice's new token.
pub async fn with_alice(settings: Value) -> (Client, String) {
    let client = client(memory(settings)).await;
    let token = issue(&client, "alice").await;
    (client, token)
}

/// A built-in store, for tests written once and run on each (see the
/// `status_table` test file).
#[derive(Debug, Clone, Copy)]
pub enum Store {
    Memory,
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A client of the app, and the database it needs while it runs.
pub struct App {
    client: Client,
    _dir: Option<tempfile::TempDir>,
}

impl Deref for App {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The path of the test it is written in, e.g.
/// `status_table::sqlite::replay_of_the_same_header_gets_401_stale`.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn f() {}
        fn name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        name_of(f)
    }};
}

impl Store {
    /// The app on this store with `settings`, or `None` when the store
    /// cannot be reached here (skipped, see `common::require`). `test` (from
    /// [`test_name!`]) gives each test its own PostgreSQL schema, so that
    /// tests running side by side do not rotate each other's tokens.
    pub async fn launch(self, test: &str, settings: Value) -> Option<App> {
        let _ = test;
        Some(match self {
            Store::Memory => App {
                client: client(memory(settings)).await,
                _dir: None,
            },
            Store::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let client = client(sqlite(&dir, settings)).await;
                assert!(dir.path().join("digest_auth.db").exists());
                App {
                    client,
                    _dir: Some(dir),
                }
            }
            #[cfg(feature = "postgres")]
            Store::Postgres => {
                let url = super::postgres::schema_url(&schema_name(test)).await?;
                let figment =
                    digest_auth(json!({}), settings).merge(("databases.digest_auth.url", url));
                App {
                    client: client(figment).await,
                    _dir: None,
                }
            }
        })
    }

    /// [`launch`](Self::launch), and alice's new token.
    pub async fn with_alice(self, test: &str, settings: Value) -> Option<(App, String)> {
        let app = self.launch(test, settings).await?;
        let token = issue(&app, "alice").await;
        Some((app, token))
    }
}

/// A PostgreSQL schema name for `test`: its path below the test binary,
/// shortened with a hash when too long for an identifier.
#[cfg(feature = "postgres")]
fn schema_name(test: &str) -> String {
    let path: Vec<&str> = test
        .split("::")
        .skip(1)
        .filter(|s| *s != "f" && !s.starts_with('{'))
        .collect();
    let name: String = path
        .join("_")
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    let name = format!("t_{name}");
    if name.len() <= 63 {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}_{hash:016x}", &name[..46])
}

/// `GET uri` answered by session `s` (its next count): the header sent and
/// the reply.
pub async fn signed_get(client: &Client, s: &mut DigestClient, uri: &str) -> (String, Reply) {
    let header = s.authorization("GET", uri);
    let reply = get(client, uri, Some(&header)).await;
    (header, reply)
}

/// `GET /me` from the address 192.0.2.`last`, answered by session `s`.
pub async fn attempt_from(client: &Client, last: u8, s: &mut DigestClient) -> Reply {
    let remote = SocketAddr::from(([192, 0, 2, last], 40000));
    let header = s.authorization("GET", "/me");
    send(with_auth(client.get("/me"), Some(&header)).remote(remote)).await
}

/// A hand-crafted `qop=auth` GET answer.
pub fn answer<'a>(
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
pub fn rfc2069_answer(token: &str, challenge: &ClientChallenge, uri: &str) -> String {
    Answer {
        qop: None,
        ..answer("alice", token, challenge, uri, 1, "c")
    }
    .header()
}

/// alice's answer for `GET /me` with `username` replaced by its userhash.
pub fn userhash_answer(token: &str, challenge: &ClientChallenge) -> String {
    Answer {
        userhash: true,
        ..answer("alice", token, challenge, "/me", 1, "c")
    }
    .header()
}

/// Checks `Authentication-Info` against the request header `sent`:
/// `rspauth` recomputed (A2 with an empty method), `qop`, `nc` and `cnonce`
/// echoed. Returns it.
pub fn check_authentication_info(
    reply: &Reply,
    sent: &str,
    username: &str,
    token: &str,
) -> AuthenticationInfo {
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
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
