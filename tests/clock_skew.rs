//! Replay protection when wall clocks lie: example-server processes whose
//! `CLOCK_REALTIME` is shifted by an `LD_PRELOAD` shim
//! (`common::fake_clock`), on one PostgreSQL database (two instances five
//! minutes apart) and on SQLite (one instance whose clock steps 100 s
//! forward for a few seconds and back, as an NTP step does). Each instance
//! runs its cleanup every second on short-lived nonces, so a cleanup by a
//! clock that runs ahead deletes the records of nonces another clock (or the
//! same one, later) still calls fresh. A header used once must never be
//! accepted again, at any instance, whatever the cleanups deleted.
//!
//! Linux only (the shim); PostgreSQL tests need `--features postgres` and
//! the database of `DIGEST_AUTH_TEST_POSTGRES_URL` (see
//! `tests/common/postgres.rs`).
#![cfg(target_os = "linux")]

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::fake_clock::FakeClock;
use common::http::{self, Request, Response};
use rocket_digest_auth::protocol::DigestClient;
use rocket_digest_auth::store::generate_token;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Short nonces and a cleanup every second, so the test takes seconds.
fn digest_auth(secret: &str, nc_lease: Option<u32>) -> String {
    let lease = nc_lease.map_or(String::new(), |n| format!(", nc_lease={n}"));
    format!(
        "{{realm=\"clock skew test\", secret=\"{secret}\", nonce_lifetime=30, \
         nextnonce_within=10, cleanup_interval=1{lease}}}"
    )
}

/// The example binary on `database_url` with `ROCKET_DIGEST_AUTH=config`.
fn example(dir: &Path, port: u16, database_url: &str, config: &str) -> Command {
    let mut cmd = common::example::example_command(dir, port, Some(config));
    cmd.env(
        "ROCKET_DATABASES",
        format!("{{digest_auth={{url=\"{database_url}\"}}}}"),
    )
    .stdin(Stdio::null());
    cmd
}

/// `create-token user` against the database: the token.
fn create_token(dir: &Path, database_url: &str, config: &str, user: &str) -> String {
    let out = example(dir, 0, database_url, config)
        .args(["create-token", user])
        .output()
        .expect("running `server create-token`");
    assert!(
        out.status.success(),
        "create-token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

/// An example server running on a fake clock; killed on drop.
struct Instance {
    name: &'static str,
    child: Child,
    port: u16,
    log: std::path::PathBuf,
    clock: FakeClock,
}

impl Instance {
    fn start(name: &'static str, dir: &Path, database_url: &str, config: &str) -> Instance {
        let clock = FakeClock::new().unwrap_or_else(|e| panic!("the clock shim: {e}"));
        for _attempt in 0..3 {
            let port = common::free_port().expect("a free port");
            let log = dir.join(format!("{name}-{port}.log"));
            let log_file = File::create(&log).expect("a log file");
            let mut cmd = example(dir, port, database_url, config);
            clock.apply(&mut cmd);
            let mut child = cmd
                .stdout(log_file.try_clone().expect("log file"))
                .stderr(log_file)
                .spawn()
                .expect("starting the example server");
            let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
            let deadline = Instant::now() + TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = read_log();
                    assert!(
                        log.contains("in use"),
                        "{name} exited with {status}:\n{log}"
                    );
                    break; // the port was taken meanwhile: try another
                }
                if let Ok(r) = get(port, "/", None) {
                    assert_eq!(r.status, 200, "GET / on {name}: {r:?}");
                    return Instance {
                        name,
                        child,
                        port,
                        log,
                        clock,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{name} did not answer within {TIMEOUT:?}:\n{}", read_log());
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("{name}: no free port in three tries");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn me(&self, authorization: Option<&str>) -> Response {
        get(self.port, "/me", authorization)
            .unwrap_or_else(|e| panic!("GET /me on {}: {e}\n{}", self.name, self.log_text()))
    }

    /// A client for `user` answering a fresh challenge of this instance.
    fn client(&self, user: &str, token: &str) -> DigestClient {
        let r = self.me(None);
        assert_eq!(r.status, 401, "{}: {r:?}", self.name);
        DigestClient::new(user, token, r.headers.challenge())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str, authorization: Option<&str>) -> Result<Response, String> {
    let request = Request::get(path).authorization(authorization).end();
    http::send(port, &request, TIMEOUT)
}

/// Sends `header` to each instance `rounds` times, a little over a cleanup
/// interval apart; every answer must be 401 (never 5xx). Returns how many
/// were accepted (200).
fn replays(instances: &[&Instance], header: &str, rounds: usize) -> usize {
    let mut accepted = 0;
    for _ in 0..rounds {
        thread::sleep(Duration::from_millis(1100));
        for instance in instances {
            let r = instance.me(Some(header));
            match r.status {
                200 => accepted += 1,
                401 => {}
                other => panic!("a replay at {} got {other}: {r:?}", instance.name),
            }
        }
    }
    accepted
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    /// Two instances on one database (schema `schema`), B's clock `b`
    /// seconds off A's and A's `a` seconds off the database's; a header used
    /// at A, then replayed at A and B for 6 s while both clean up every
    /// second. Returns A's first answer and how many replays were accepted.
    fn used_at_a_then_replayed(schema: &str, a: i64, b: i64) -> Option<(u16, usize)> {
        let url = common::postgres::schema_url_blocking(schema)?;
        let dir = tempfile::tempdir().unwrap();
        let config = digest_auth(&generate_token(), None);
        let user = format!("alice-{}", &generate_token()[..8]);
        let token = create_token(dir.path(), &url, &config, &user);
        let first = Instance::start("A", dir.path(), &url, &config);
        let second = Instance::start("B", dir.path(), &url, &config);
        first.clock.set(a);
        second.clock.set(a + b);

        let header = first.client(&user, &token).authorization("GET", "/me");
        let reply = first.me(Some(&header));
        let used = reply.status;
        if used == 401 {
            let challenges = reply.headers.challenges();
            assert!(
                !challenges.is_empty() && challenges.iter().all(|c| c.stale),
                "a refused first use must say stale=true: {reply:?}"
            );
        }
        let accepted = replays(&[&first, &second], &header, 6);
        println!(
            "A at {a:+} s, B at {:+} s from the database: first use {used}, \
             replays accepted {accepted} of 12",
            a + b
        );
        Some((used, accepted))
    }

    /// B runs five minutes ahead of A (and of the database): B's cleanup
    /// deletes what A still calls fresh. A's nonce works once, then never
    /// again, at A or B.
    #[test]
    fn a_header_used_once_is_never_accepted_again_when_b_runs_five_minutes_ahead() {
        let Some((used, accepted)) =
            used_at_a_then_replayed("digest_auth_test_clock_skew_ahead", 0, 300)
        else {
            return;
        };
        assert_eq!(used, 200, "A agrees with the database: its nonce works");
        assert_eq!(accepted, 0, "replays accepted after B's cleanups");
    }

    /// A runs five minutes behind B (and the database). Nothing is accepted
    /// twice; A's short nonces are already expired by the database's clock,
    /// so A's clients get `stale=true`: it fails closed.
    #[test]
    fn a_header_used_once_is_never_accepted_again_when_a_runs_five_minutes_behind() {
        let Some((used, accepted)) =
            used_at_a_then_replayed("digest_auth_test_clock_skew_behind", -300, 300)
        else {
            return;
        };
        assert!(matches!(used, 200 | 401), "first use at A: {used}");
        assert_eq!(accepted, 0, "replays accepted after B's cleanups");
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;

    /// One instance on SQLite (leased with `nc_lease`, or row by row with
    /// 0): a header used once, the clock 100 s ahead for 3 s (its cleanups
    /// run by that clock), then back; the header replayed 3 times. Returns
    /// how many replays were accepted.
    fn clock_stepped_forward_and_back(nc_lease: Option<u32>) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let url = common::sqlite_url(&dir.path().join("db.sqlite"));
        let config = digest_auth(&generate_token(), nc_lease);
        let token = create_token(dir.path(), &url, &config, "alice");
        let server = Instance::start("server", dir.path(), &url, &config);

        let header = server.client("alice", &token).authorization("GET", "/me");
        assert_eq!(server.me(Some(&header)).status, 200, "first use");
        server.clock.set(100);
        thread::sleep(Duration::from_secs(3));
        server.clock.set(0);
        let accepted = replays(&[&server], &header, 3);
        // The step leaves the server usable: a fresh nonce works.
        let fresh = server.client("alice", &token).authorization("GET", "/me");
        assert_eq!(
            server.me(Some(&fresh)).status,
            200,
            "a fresh nonce after the step"
        );
        println!("nc_lease {nc_lease:?}: replays accepted after the step {accepted} of 3");
        accepted
    }

    #[test]
    fn a_clock_stepped_forward_and_back_never_lets_a_replay_in_with_leases() {
        assert_eq!(clock_stepped_forward_and_back(None), 0);
    }

    #[test]
    fn a_clock_stepped_forward_and_back_never_lets_a_replay_in_row_by_row() {
        assert_eq!(clock_stepped_forward_and_back(Some(0)), 0);
    }
}
