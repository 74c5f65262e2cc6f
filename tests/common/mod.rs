//! Helpers shared by the integration tests: `mod common;` in a test file.
//! Each test binary uses only some of them.
//!
//! - [`http`]: plain HTTP/1.1 over TCP (raw requests, parsed responses);
//! - [`server`]: a Rocket on a real port, stopped on drop;
//! - [`example`]: the example server binary as a child process;
//! - [`clients`]: real HTTP clients (curl, Python's requests and httpx);
//! - [`local`]: Rocket's local client, tokens and Digest sessions;
//! - [`logs`]: the log lines of ignite and liftoff, captured;
//! - [`app`]: the app of the local-client tests, on each built-in store;
//! - [`instances`]: Rocket instances sharing one database, as behind a
//!   load balancer;
//! - [`proxy`]: a TCP link to a database that a test can cut or stall;
//! - [`guesses`]: requests from chosen addresses, bursts of wrong guesses;
//! - [`headers`]: response headers and the challenges in them;
//! - [`postgres`], [`pg_cluster`]: the test database, a private cluster;
//! - [`mysql`], [`mariadb_server`]: the MySQL/MariaDB test server's
//!   databases, a private MariaDB server;
//! - `redis`: the shared test Redis, private servers and a private cluster;
//! - [`store_checks`]: what the store suites share (token administration,
//!   two instances racing for every count);
//! - [`outage`]: the app under faults, traffic recording every outcome, and
//!   the checks of an outage;
//! - [`require`]: run, skip or fail when a tool or server is missing;
//! - [`fake_clock`]: a wall clock a test moves for a child process.
#![allow(dead_code)]

pub mod app;
pub mod clients;
pub mod example;
#[cfg(target_os = "linux")]
pub mod fake_clock;
pub mod guesses;
pub mod headers;
pub mod http;
pub mod instances;
pub mod local;
pub mod logs;
#[cfg(unix)]
pub mod mariadb_server;
pub mod mysql;
pub mod outage;
#[cfg(unix)]
pub mod pg_cluster;
pub mod postgres;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis;
pub mod require;
pub mod server;
pub mod store_checks;

use std::future::Future;
use std::net::TcpListener;
use std::path::Path;

use rocket::get;
use rocket_digest_auth::{DigestAuthenticated, User};

/// `GET /me`: the authenticated username, as text.
#[get("/me")]
pub fn me(user: DigestAuthenticated<User>) -> String {
    user.username.to_string()
}

/// The URL of a SQLite database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// A port of 127.0.0.1 that was free a moment ago (whoever binds it next
/// may lose a race: retry on "address in use").
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs `future` to completion on a new current-thread runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    rocket::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// Runs `future` on a new multi-threaded runtime with `workers` threads, so
/// that the tasks it spawns really run side by side.
pub fn block_on_multi_thread<F: Future>(workers: usize, future: F) -> F::Output {
    rocket::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The test databases and schemas this test process has already dropped and
/// recreated: each is emptied once per run, by its first user.
#[allow(dead_code)]
pub fn fresh_this_run() -> &'static rocket::tokio::sync::Mutex<std::collections::HashSet<String>> {
    static FRESH: std::sync::OnceLock<
        rocket::tokio::sync::Mutex<std::collections::HashSet<String>>,
    > = std::sync::OnceLock::new();
    FRESH.get_or_init(Default::default)
}
