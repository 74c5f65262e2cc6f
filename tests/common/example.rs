//! The example server (`examples/server.rs`) as a child process on a free
//! port, with its own SQLite database in a temporary directory, configured
//! like a user would: the shipped `Rocket.toml` plus `ROCKET_PORT`,
//! `ROCKET_DATABASES` and `ROCKET_DIGEST_AUTH`. Tokens come from the
//! binary's own `create-token` command.
//!
//! The binary is (re)built by the first test that needs it with the same
//! features and profile as the test, because `cargo test --test FILE` alone
//! does not build examples.
//!
//! ```ignore
//! let server = Server::start(Some(r#"{qop=["auth", "auth-int"]}"#));
//! let token = server.create_token("alice");
//! let reply = server.get("/me", None); // 401 with the challenges
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use rocket_digest_auth::protocol::ClientChallenge;

use super::http::{self, Request, Response};

/// Longest wait for any one request or process.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// `target/<profile>/examples/server`, built with this test's features.
pub fn server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as target/<profile>/deps/real_clients-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("unexpected test binary path {}", exe.display()),
        };
        let mut features = Vec::new();
        if cfg!(feature = "sqlite") {
            features.push("sqlite");
        }
        if cfg!(feature = "postgres") {
            features.push("postgres");
        }
        if cfg!(feature = "mysql") {
            features.push("mysql");
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "--example",
                "server",
                "--no-default-features",
            ])
            .arg("--features")
            .arg(features.join(","))
            .arg("--profile")
            .arg(profile)
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        // Variables cargo sets for the test process: left in, they would make
        // build scripts that watch them (ring's) rebuild and thrash the cache.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key.as_ref())
            {
                cargo.env_remove(key.as_ref());
            }
        }
        let out = cargo.output().expect("running cargo to build the example");
        assert!(
            out.status.success(),
            "`cargo build --example server` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let binary = profile_dir
            .join("examples")
            .join(format!("server{}", std::env::consts::EXE_SUFFIX));
        assert!(binary.is_file(), "{} was not built", binary.display());
        binary
    })
}

/// The example server as a child process; killed on drop, also when the
/// test panics.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    digest_auth: Option<String>,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the example with `ROCKET_DIGEST_AUTH=<digest_auth>` (`None`:
    /// Rocket.toml's `[default.digest_auth]` as shipped) and waits until it
    /// answers `GET /`.
    pub fn start(digest_auth: Option<&str>) -> Server {
        let mut dir = tempfile::tempdir().expect("temporary directory");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = super::free_port().expect("a free port");
            let log = dir.path().join(format!("server-{port}.log"));
            let log_file = File::create(&log).expect("server log file");
            let mut cmd = example_command(dir.path(), port, digest_auth);
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log file"))
                .stderr(log_file)
                .spawn()
                .expect("starting the example server");
            let mut server = Server {
                child,
                port,
                digest_auth: digest_auth.map(str::to_owned),
                dir,
            };
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if let Ok(Some(status)) = server.child.try_wait() {
                    last_log = std::fs::read_to_string(&log).unwrap_or_default();
                    if !last_log.contains("in use") {
                        panic!("the example server exited with {status}:\n{last_log}");
                    }
                    break; // somebody took the port: try another one
                }
                if let Ok(r) = try_get(port, "/", None) {
                    assert_eq!(r.status, 200, "GET / while starting: {r:?}");
                    return server;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("the example server did not answer within {TIMEOUT:?}:\n{log}");
                }
                thread::sleep(Duration::from_millis(50));
            }
            dir = std::mem::replace(
                &mut server.dir,
                tempfile::tempdir().expect("temporary directory"),
            );
        }
        panic!("could not start the example server on a free port:\n{last_log}");
    }

    /// Runs `server create-token <user>` against this server's database and
    /// configuration, returning the last line of stdout.
    pub fn create_token(&self, user: &str) -> String {
        let token = self.create_token_with(user, self.digest_auth.as_deref());
        assert_eq!(token.len(), 40, "a token of 160 bits in hex: {token:?}");
        assert!(
            token.bytes().all(|b| b.is_ascii_hexdigit()),
            "a token of 160 bits in hex: {token:?}"
        );
        token
    }

    /// `create-token` with another `ROCKET_DIGEST_AUTH` but this database.
    pub fn create_token_with(&self, user: &str, digest_auth: Option<&str>) -> String {
        let out = self.create_token_output(user, digest_auth);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "create-token {user} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("create-token printed nothing"))
            .trim()
            .to_owned()
    }

    pub fn create_token_output(&self, user: &str, digest_auth: Option<&str>) -> Output {
        // Same database, port irrelevant: create-token does not listen.
        example_command(self.dir.path(), self.port, digest_auth)
            .args(["create-token", user])
            .stdin(Stdio::null())
            .output()
            .expect("running `server create-token`")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path` over a fresh TCP connection, with an optional
    /// `Authorization` header.
    pub fn get(&self, path: &str, authorization: Option<&str>) -> Response {
        try_get(self.port, path, authorization)
            .unwrap_or_else(|e| panic!("GET {path} on port {}: {e}", self.port))
    }

    /// The server's first challenge on `GET /me`.
    pub fn challenge(&self) -> ClientChallenge {
        let r = self.get("/me", None);
        assert_eq!(r.status, 401, "{r:?}");
        r.headers.challenge()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example binary with the environment a user would set.
pub fn example_command(dir: &Path, port: u16, digest_auth: Option<&str>) -> Command {
    let mut cmd = Command::new(server_binary());
    let db = dir.join("db.sqlite");
    cmd.current_dir(dir)
        .env(
            "ROCKET_CONFIG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("Rocket.toml"),
        )
        .env_remove("ROCKET_PROFILE")
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_CLI_COLORS", "false")
        .env(
            "ROCKET_DATABASES",
            format!(
                "{{digest_auth={{url=\"sqlite://{}?mode=rwc\"}}}}",
                db.display()
            ),
        );
    match digest_auth {
        Some(config) => cmd.env("ROCKET_DIGEST_AUTH", config),
        None => cmd.env_remove("ROCKET_DIGEST_AUTH"),
    };
    cmd
}

/// `GET path` over a fresh TCP connection, with an optional `Authorization`
/// header.
pub fn try_get(port: u16, path: &str, authorization: Option<&str>) -> Result<Response, String> {
    let request = Request::get(path).authorization(authorization).end();
    http::send(port, &request, TIMEOUT)
}
