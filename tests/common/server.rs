//! A Rocket serving on a real TCP port of 127.0.0.1, on its own thread and
//! runtime, stopped on drop.
//!
//! ```ignore
//! let figment = common::server::figment().merge(("digest_auth", json!({ .. })));
//! let rocket = rocket::custom(figment).attach(DigestAuth::fairing()).mount("/", routes![common::me]);
//! let server = Running::start(rocket)?;
//! // requests to 127.0.0.1:{server.port}
//! ```

use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::figment::Figment;
use rocket::tokio::runtime::Handle;
use rocket::{Build, Rocket, Shutdown};
use rocket_digest_auth::Tokens;

/// Rocket's defaults (no Rocket.toml, no `ROCKET_*` variables) for a test
/// server: 127.0.0.1 on a port the OS picks, no log, no Ctrl-C handler,
/// stopping within a second or two when told.
pub fn figment() -> Figment {
    Figment::from(rocket::Config::default())
        .merge(("address", "127.0.0.1"))
        .merge(("port", 0))
        .merge(("log_level", "off"))
        .merge(("shutdown.ctrlc", false))
        .merge(("shutdown.grace", 1))
        .merge(("shutdown.mercy", 1))
}

/// A launched Rocket; shut down (and its thread joined) on drop.
pub struct Running {
    /// The port it listens on.
    pub port: u16,
    shutdown: Shutdown,
    runtime: Handle,
    tokens: Option<Tokens>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Running {
    /// Launches `rocket` on a thread of its own, in a multi-threaded runtime
    /// with its configured number of `workers`, and waits for liftoff (the
    /// listener is bound then). An error if it does not launch.
    pub fn start(rocket: Rocket<Build>) -> Result<Running, String> {
        let workers: usize = rocket
            .figment()
            .extract_inner("workers")
            .map_err(|e| format!("workers: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let rocket = rocket.attach(AdHoc::on_liftoff("report the port", move |rocket| {
            Box::pin(async move {
                let _ = tx.send((
                    rocket.config().port,
                    rocket.shutdown(),
                    Handle::current(),
                    rocket.state::<Tokens>().cloned(),
                ));
            })
        }));
        let thread = std::thread::Builder::new()
            .name("test server".into())
            .spawn(move || {
                rocket::tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("a tokio runtime: {e}"))?
                    .block_on(rocket.launch())
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("a thread: {e}"))?;
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((port, shutdown, runtime, tokens)) => Ok(Running {
                port,
                shutdown,
                runtime,
                tokens,
                thread: Some(thread),
            }),
            // The rocket (and the sender with it) is gone: it did not launch.
            Err(RecvTimeoutError::Disconnected) => Err(match thread.join() {
                Ok(Err(e)) => e,
                Ok(Ok(())) => "the server stopped before liftoff".into(),
                Err(_) => "the server thread panicked".into(),
            }),
            Err(RecvTimeoutError::Timeout) => Err("no liftoff within 60 s".into()),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Creates (or rotates) `username`'s token through the managed `Tokens`,
    /// on the server's own runtime (its store lives there).
    pub async fn issue(&self, username: &str) -> String {
        let tokens = self
            .tokens
            .clone()
            .expect("the built-in store manages Tokens");
        let username = username.to_owned();
        self.runtime
            .spawn(async move { tokens.issue(&username).await })
            .await
            .expect("the issuing task")
            .expect("issuing a token")
    }

    /// Shuts the server down and returns how its `launch` ended.
    pub fn stop(mut self) -> Result<(), String> {
        self.shutdown.clone().notify();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the server thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
