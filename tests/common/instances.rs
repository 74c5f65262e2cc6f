//! Instances behind a load balancer: Rocket servers on real ports sharing
//! one database and `secret`, the users an admin creates in it, and what a
//! right answer and a replay look like. Used by `tests/multi_instance.rs`.

#![cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]

use std::time::Duration;

use rocket::serde::json::json;
use rocket::{get, routes, State};
use rocket_digest_auth::protocol::ClientChallenge;
use rocket_digest_auth::store::{generate_token, SqlStore, StoreOptions, TokenAdmin};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, User};

use super::block_on;
use super::http::{self, Request, Response};
use super::server::Running;

/// One realm for every instance and run on a database: the store keeps
/// userhash values for one realm per database.
pub const REALM: &str = "multi-instance test";

// ---------------------------------------------------------------- servers

pub struct InstanceName(&'static str);

#[get("/me")]
pub fn me(user: DigestAuthenticated<User>, name: &State<InstanceName>) -> String {
    format!("{} {}", name.0, user.username)
}

/// The database the instances of a test share.
#[derive(Clone)]
pub struct Db {
    pub url: String,
    /// `nc_lease` of every instance and of the admin's store (`None`: the
    /// backend's default); recorded per database.
    pub nc_lease: Option<u32>,
}

impl Db {
    /// This database with the same `nc_lease`, at `url` (a proxy to it, an
    /// empty one).
    pub fn at(&self, url: &str) -> Db {
        Db {
            url: url.to_owned(),
            nc_lease: self.nc_lease,
        }
    }
}

/// What an instance is started with.
#[derive(Clone)]
pub struct Setup {
    pub database_url: String,
    pub nc_lease: Option<u32>,
    pub secret: String,
    /// Seconds to wait for a database connection (rocket_db_pools'
    /// `connect_timeout`, also the pool's acquire timeout).
    pub connect_timeout: u64,
}

impl Setup {
    pub fn new(db: &Db, secret: &str) -> Setup {
        Setup {
            database_url: db.url.clone(),
            nc_lease: db.nc_lease,
            secret: secret.to_owned(),
            connect_timeout: 5,
        }
    }
}

/// Rocket's log level for the instances: `ROCKET_LOG_LEVEL`, else quiet.
pub fn log_level() -> String {
    std::env::var("ROCKET_LOG_LEVEL").unwrap_or_else(|_| "off".into())
}

/// A Rocket server on its own runtime and thread, on a port of its own.
pub struct Instance {
    pub name: &'static str,
    pub server: Running,
}

impl Instance {
    pub fn launch(name: &'static str, setup: &Setup) -> Instance {
        Instance::try_launch(name, setup).unwrap_or_else(|e| {
            panic!("instance {name} did not start: {e} (ROCKET_LOG_LEVEL=normal shows why)")
        })
    }

    /// Starts an instance as the fairing and a real listener would run it,
    /// configured the way Rocket.toml / `ROCKET_*` variables would.
    pub fn try_launch(name: &'static str, setup: &Setup) -> Result<Instance, String> {
        let figment = super::server::figment()
            .merge(("workers", 2))
            .merge(("log_level", log_level()))
            .merge((
                "digest_auth",
                json!({ "realm": REALM, "secret": setup.secret }),
            ))
            .merge((
                "digest_auth.nc_lease",
                setup.nc_lease.map_or(json!(null), |n| json!(n)),
            ))
            .merge(("databases.digest_auth.url", &setup.database_url))
            .merge(("databases.digest_auth.max_connections", 4))
            .merge((
                "databases.digest_auth.connect_timeout",
                setup.connect_timeout,
            ));
        let rocket = rocket::custom(figment)
            .attach(DigestAuth::fairing())
            .manage(InstanceName(name))
            .mount("/", routes![me]);
        Ok(Instance {
            name,
            server: Running::start(rocket)?,
        })
    }

    /// One `GET /me` on a fresh connection.
    pub fn get(&self, authorization: Option<&str>) -> Response {
        let request = Request::get("/me").authorization(authorization).end();
        http::send(self.server.port, &request, Duration::from_secs(60)).expect("an HTTP exchange")
    }

    /// A fresh challenge (the first `WWW-Authenticate`, SHA-256).
    pub fn challenge(&self) -> ClientChallenge {
        let reply = self.get(None);
        assert_eq!(reply.status, 401, "{}: {reply:?}", self.name);
        reply.headers.challenge()
    }
}

// ------------------------------------------------------------------ setup

/// A user of this run with a fresh token, created the way an admin would
/// (`server create-token`): through the database, not through an instance.
pub fn create_user(db: &Db, tag: &str) -> (String, String) {
    let user = format!("{tag}-{}", &generate_token()[..12]);
    let options = StoreOptions {
        nc_lease: db.nc_lease,
        ..StoreOptions::new(REALM)
    };
    let token = block_on(async {
        let store = SqlStore::connect_url(&db.url, options)
            .await
            .expect("admin connection");
        let token = store.issue_token(&user).await.expect("issue a token");
        store.close().await;
        token
    });
    (user, token)
}

pub fn secret() -> String {
    format!("shared-secret-{}", generate_token())
}

pub fn assert_ok(reply: &Response, instance: &Instance, user: &str) {
    assert_eq!(reply.status, 200, "{}: {reply:?}", instance.name);
    assert_eq!(reply.text(), format!("{} {user}", instance.name));
    assert_eq!(reply.headers.all("authentication-info").len(), 1);
}

pub fn assert_replay_refused(reply: &Response, instance: &Instance) {
    assert_eq!(reply.status, 401, "{}: {reply:?}", instance.name);
    // The digest was right, only the count was used: stale=true.
    assert!(reply.headers.is_stale(), "{}: {reply:?}", instance.name);
}
