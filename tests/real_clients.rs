//! The real example server (`examples/server.rs`) over TCP, driven by clients
//! nobody here wrote: curl `--digest` (SHA-256 and MD5), Python
//! `requests.auth.HTTPDigestAuth` and `httpx.DigestAuth`, plus 100 parallel
//! requests on one nonce from plain sockets.
//!
//! Each test starts the example binary on a free port with its own SQLite
//! database in a temporary directory, configured like a user would: the
//! shipped `Rocket.toml` plus `ROCKET_PORT`, `ROCKET_DATABASES` and
//! `ROCKET_DIGEST_AUTH`. Tokens come from the binary's own `create-token`
//! command. Without curl, python3, requests or httpx the tests that use them
//! are skipped, or fail under `./scripts/test` (see `common::require`).
//!
//! The binary is (re)built by the first test that needs it with the same
//! features and profile as this test, because `cargo test --test real_clients`
//! alone does not build examples.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::http::{self, Request, Response};
use common::require::{missing_programs, missing_python_modules, REAL_CLIENTS};
use rocket_digest_auth::protocol::{Algorithm, Authorization, ClientChallenge, DigestClient};

/// Longest wait for any one request or process.
const TIMEOUT: Duration = Duration::from_secs(20);
const EXPECTED_BODY: &str = r#"{"username":"alice"}"#;

// ---------------------------------------------------------------------------
// The example binary

/// `target/<profile>/examples/server`, built with this test's features.
fn server_binary() -> &'static Path {
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

// ---------------------------------------------------------------------------
// A running server

/// The example server as a child process; killed on drop, also when the
/// test panics.
struct Server {
    child: Child,
    port: u16,
    digest_auth: Option<String>,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the example with `ROCKET_DIGEST_AUTH=<digest_auth>` (`None`:
    /// Rocket.toml's `[default.digest_auth]` as shipped) and waits until it
    /// answers `GET /`.
    fn start(digest_auth: Option<&str>) -> Server {
        let mut dir = tempfile::tempdir().expect("temporary directory");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = common::free_port().expect("a free port");
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
    fn create_token(&self, user: &str) -> String {
        let token = self.create_token_with(user, self.digest_auth.as_deref());
        assert_eq!(token.len(), 40, "a token of 160 bits in hex: {token:?}");
        assert!(
            token.bytes().all(|b| b.is_ascii_hexdigit()),
            "a token of 160 bits in hex: {token:?}"
        );
        token
    }

    /// `create-token` with another `ROCKET_DIGEST_AUTH` but this database.
    fn create_token_with(&self, user: &str, digest_auth: Option<&str>) -> String {
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

    fn create_token_output(&self, user: &str, digest_auth: Option<&str>) -> Output {
        // Same database, port irrelevant: create-token does not listen.
        example_command(self.dir.path(), self.port, digest_auth)
            .args(["create-token", user])
            .stdin(Stdio::null())
            .output()
            .expect("running `server create-token`")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET path` over a fresh TCP connection, with an optional
    /// `Authorization` header.
    fn get(&self, path: &str, authorization: Option<&str>) -> Response {
        try_get(self.port, path, authorization)
            .unwrap_or_else(|e| panic!("GET {path} on port {}: {e}", self.port))
    }

    /// The server's first challenge on `GET /me`.
    fn challenge(&self) -> ClientChallenge {
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
fn example_command(dir: &Path, port: u16, digest_auth: Option<&str>) -> Command {
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
fn try_get(port: u16, path: &str, authorization: Option<&str>) -> Result<Response, String> {
    let request = Request::get(path).authorization(authorization).end();
    http::send(port, &request, TIMEOUT)
}

// ---------------------------------------------------------------------------
// Real clients

/// Runs a tool that CI installs; a missing one fails with how to get it.
fn run_tool(program: &str, args: &[&str], install: &str) -> Output {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; these tests need it ({install})")
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// What a real client got, and the `Authorization` header it sent last.
#[derive(Debug)]
struct ClientResult {
    status: u16,
    body: String,
    authorization: Option<String>,
}

impl ClientResult {
    /// Asserts the request succeeded as alice; returns what the client sent.
    fn assert_alice(&self) -> Authorization<'static> {
        assert_eq!(
            (self.status, self.body.as_str()),
            (200, EXPECTED_BODY),
            "{self:?}"
        );
        parse_authorization(self.authorization.as_deref())
    }
}

fn curl_digest(url: &str, user: &str, token: &str) -> ClientResult {
    let credentials = format!("{user}:{token}");
    let out = run_tool(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            "20",
            "--digest",
            "--user",
            &credentials,
            "--write-out",
            "\n%{http_code}",
            url,
        ],
        "apt-get install curl",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {stderr}");
    let (body, status) = stdout.rsplit_once('\n').expect("curl's --write-out line");
    let authorization = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> Authorization: "))
        .next_back()
        .map(|a| a.trim().to_owned());
    ClientResult {
        status: status.trim().parse().expect("curl's status code"),
        body: body.to_owned(),
        authorization,
    }
}

/// The requests made by a Python library, as `tests/clients/digest_clients.py`
/// reports them, with how many challenges each answered.
fn python_client(args: &[&str]) -> Vec<(ClientResult, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/digest_clients.py");
    let script = script.to_str().expect("UTF-8 path");
    let mut full = vec![script];
    full.extend_from_slice(args);
    let out = run_tool(
        "python3",
        &full,
        "apt-get install python3; python3 -m pip install requests httpx",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python3 {} failed ({}): {}\n{stdout}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let result = ClientResult {
                status: v["status"].as_u64().expect("status") as u16,
                body: v["body"].as_str().expect("body").to_owned(),
                authorization: v["authorization"].as_str().map(str::to_owned),
            };
            let answered = v["challenges_answered"].as_u64().expect("history");
            (result, answered)
        })
        .collect()
}

/// Whether curl and Python's requests and httpx are all here.
fn clients_available() -> bool {
    REAL_CLIENTS.available(
        missing_programs(&["curl", "python3"])
            .or_else(|| missing_python_modules(&["requests", "httpx"])),
    )
}

fn parse_authorization(header: Option<&str>) -> Authorization<'static> {
    let header = header.expect("the client sent an Authorization header");
    Authorization::parse(header)
        .unwrap_or_else(|e| panic!("{header:?}: {e:?}"))
        .expect("a Digest Authorization header")
        .into_owned()
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn curl_digest_sha256_with_the_shipped_config() {
    if !clients_available() {
        return;
    }
    let server = Server::start(None);
    let index = server.get("/", None);
    assert_eq!(index.status, 200);
    assert!(index.text().contains("/me"), "{index:?}");

    // The shipped config offers SHA-256 first, then MD5, on one nonce.
    let r = server.get("/me", None);
    assert_eq!(r.status, 401);
    let challenges = r.headers.challenges();
    let algorithms: Vec<Algorithm> = challenges.iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(challenges[0].realm, "rocket_digest_auth example");

    let token = server.create_token("alice");
    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Sha256, "curl answers the first");
    assert_eq!(sent.username, "alice");

    let wrong = curl_digest(&server.url("/me"), "alice", &"0".repeat(40));
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(
        wrong.authorization.is_some(),
        "curl did answer the challenge"
    );
    let nobody = curl_digest(&server.url("/me"), "nobody", &token);
    assert_eq!(nobody.status, 401, "{nobody:?}");
}

#[test]
fn curl_digest_md5_when_only_md5_is_configured() {
    if !clients_available() {
        return;
    }
    let server = Server::start(Some(r#"{algorithms=["MD5"]}"#));
    let challenge = server.challenge();
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    let token = server.create_token("alice");

    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Md5);
    assert_eq!(sent.response.len(), 32, "an MD5 digest: {sent:?}");

    let wrong = curl_digest(&server.url("/me"), "alice", &token.to_uppercase());
    assert_eq!(wrong.status, 401, "tokens are case-sensitive: {wrong:?}");
}

#[test]
fn create_token_rotates_and_the_old_token_stops_working() {
    if !clients_available() {
        return;
    }
    let server = Server::start(None);
    let first = server.create_token("alice");
    assert_eq!(curl_digest(&server.url("/me"), "alice", &first).status, 200);

    // Rotated by another process while the server runs: the server's
    // credential cache sees it within `credential_recheck_ms` (100 ms).
    let second = server.create_token("alice");
    assert_ne!(first, second);
    std::thread::sleep(std::time::Duration::from_millis(250));
    let old = curl_digest(&server.url("/me"), "alice", &first);
    assert_eq!(old.status, 401, "the rotated-out token: {old:?}");
    let new = curl_digest(&server.url("/me"), "alice", &second);
    assert_eq!((new.status, new.body.as_str()), (200, EXPECTED_BODY));

    // Another user's token is independent of alice's.
    let bob = server.create_token("bob");
    let r = curl_digest(&server.url("/me"), "bob", &bob);
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"username":"bob"}"#));
    assert_eq!(
        curl_digest(&server.url("/me"), "alice", &second).status,
        200
    );
}

#[test]
fn python_requests_http_digest_auth() {
    if !clients_available() {
        return;
    }
    // requests merges the two challenges and answers the LAST one: MD5.
    let server = Server::start(None);
    let token = server.create_token("alice");
    let results = python_client(&["requests", &server.url("/me"), "alice", &token]);
    let [(r, answered)] = results.as_slice() else {
        panic!("{results:?}")
    };
    let sent = r.assert_alice();
    assert_eq!(*answered, 1);
    assert_eq!(sent.algorithm, Algorithm::Md5, "{r:?}");

    let wrong = python_client(&["requests", &server.url("/me"), "alice", "wrong"]);
    assert_eq!(wrong[0].0.status, 401, "{wrong:?}");

    // Offered SHA-256 only, requests uses it.
    let server = Server::start(Some(r#"{algorithms=["SHA-256"]}"#));
    let token = server.create_token("alice");
    let results = python_client(&["requests", &server.url("/me"), "alice", &token]);
    assert_eq!(results.len(), 1);
    let r = &results[0].0;
    let sent = r.assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Sha256, "{r:?}");
}

#[test]
fn httpx_digest_auth_counts_up_on_one_nonce() {
    if !clients_available() {
        return;
    }
    const REQUESTS: usize = 8;
    let server = Server::start(None);
    let token = server.create_token("alice");
    let results = python_client(&[
        "httpx",
        &server.url("/me"),
        "alice",
        &token,
        &REQUESTS.to_string(),
    ]);
    assert_eq!(results.len(), REQUESTS, "{results:?}");
    let sent: Vec<Authorization> = results.iter().map(|(r, _)| r.assert_alice()).collect();
    // Only the first request met a challenge; the others reused its nonce
    // with the count going up: 00000001, 00000002, ...
    let answered: Vec<u64> = results.iter().map(|(_, n)| *n).collect();
    assert_eq!(answered[0], 1, "{results:?}");
    assert!(answered[1..].iter().all(|&n| n == 0), "{results:?}");
    let nonces: BTreeSet<&str> = sent.iter().map(|a| &*a.nonce).collect();
    assert_eq!(nonces.len(), 1, "one nonce for all: {sent:?}");
    let counts: Vec<u32> = sent.iter().map(|a| a.qop.as_ref().unwrap().nc).collect();
    assert_eq!(counts, (1..=REQUESTS as u32).collect::<Vec<_>>());
}

/// Sends every header from its own thread and connection, all released at
/// once, and returns the statuses in the same order.
fn parallel_get(port: u16, headers: &[String]) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(headers.len()));
    let threads: Vec<_> = headers
        .iter()
        .cloned()
        .map(|header| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let request = Request::get("/me").authorization(Some(&header)).end();
                let stream = http::connect(port, TIMEOUT);
                barrier.wait();
                let r = http::exchange(stream.expect("connecting"), &request).expect("a response");
                if r.status == 200 {
                    assert_eq!(r.text(), EXPECTED_BODY);
                }
                r.status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

#[test]
fn hundred_parallel_requests_on_one_nonce_then_replays_fail() {
    let server = Server::start(None);
    let token = server.create_token("alice");

    // One challenge, 100 answers with nc 1..=100, sent all at once, so they
    // reach the server in no particular order.
    let mut client = DigestClient::new("alice", &token, server.challenge());
    let headers: Vec<String> = (0..100)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    let statuses = parallel_get(server.port, &headers);
    let refused: Vec<(usize, u16)> = statuses
        .iter()
        .enumerate()
        .filter(|(_, &s)| s != 200)
        .map(|(i, &s)| (i + 1, s))
        .collect();
    assert!(refused.is_empty(), "(nc, status) refused: {refused:?}");

    // Each exact header once more, again all at once: every one is refused
    // with a new challenge.
    let statuses = parallel_get(server.port, &headers);
    assert!(statuses.iter().all(|&s| s == 401), "replays: {statuses:?}");
    let replay = server.get("/me", Some(&headers[41]));
    assert_eq!(replay.status, 401);
    assert!(
        ClientChallenge::parse(replay.headers.all("www-authenticate")[0])
            .unwrap()
            .is_some(),
        "{replay:?}"
    );

    // The same header raced against itself: exactly one copy gets through.
    let mut client = DigestClient::new("alice", &token, server.challenge());
    let unique: Vec<String> = (0..25)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    let doubled: Vec<String> = unique.iter().chain(&unique).cloned().collect();
    let statuses = parallel_get(server.port, &doubled);
    for (i, header) in unique.iter().enumerate() {
        let pair = (statuses[i], statuses[i + unique.len()]);
        assert!(
            pair == (200, 401) || pair == (401, 200),
            "nc {} sent twice at once got {pair:?}: {header}",
            i + 1
        );
    }
}

#[test]
fn create_token_and_server_both_read_rocket_digest_auth() {
    if !clients_available() {
        return;
    }
    // A custom realm with HA1-only storage: create-token must hash the token
    // under the realm from ROCKET_DIGEST_AUTH, or the server cannot check it.
    let config = r#"{realm="clients@example.test", token_storage="ha1", userhash=true}"#;
    let server = Server::start(Some(config));
    let challenge = server.challenge();
    assert_eq!(challenge.realm, "clients@example.test");
    assert!(challenge.userhash, "{challenge:?}");

    let token = server.create_token("alice");
    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.realm, "clients@example.test");

    // The same command with another realm in the environment stores HA1
    // values for that realm, which this server cannot use.
    let other = server.create_token_with(
        "alice",
        Some(r#"{realm="another realm", token_storage="ha1"}"#),
    );
    assert_eq!(other.len(), 40, "{other:?}");
    let r = curl_digest(&server.url("/me"), "alice", &other);
    assert_eq!(r.status, 401, "HA1 made for another realm: {r:?}");

    // An invalid value stops create-token with a message naming the key.
    let out = server.create_token_output("alice", Some("{nonce_lifetime=0}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("nonce_lifetime") || stdout.contains("nonce_lifetime"),
        "{stderr}\n{stdout}"
    );
}
