//! Redis for tests: the shared server of `DIGEST_AUTH_TEST_REDIS_URL`
//! (default [`DEFAULT_URL`], what `./scripts/test` starts), used only under
//! a key prefix of each test's own; and private servers a test starts on a
//! free port when it must flush, stop or restart one, or needs a cluster.
//!
//! When the shared server cannot be reached, or `redis-server` is not
//! installed for a private one, the test skips (or fails, when
//! `DIGEST_AUTH_REQUIRE_ALL` is set) through [`super::require::REDIS`].

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rocket_digest_auth::protocol::DigestClient;
use rocket_digest_auth::store::{generate_token, RedisOptions, RedisStore};

/// The server CI provides.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379/0";

/// The variable naming the shared test server.
pub const URL_VAR: &str = "DIGEST_AUTH_TEST_REDIS_URL";

/// The shared server's URL.
pub fn shared_url() -> String {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => DEFAULT_URL.to_owned(),
    }
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix(tag: &str) -> String {
    format!("digest_auth_test:{tag}:{}", &generate_token()[..12])
}

/// A store on the shared server under a prefix of its own; `None` when the
/// server is not there (skipped, reason printed).
pub async fn shared_store(tag: &str) -> Option<RedisStore> {
    let url = shared_url();
    let options = RedisOptions::default().with_key_prefix(unique_prefix(tag));
    match RedisStore::connect(&url, options).await {
        Ok(store) => Some(store),
        Err(e) => {
            super::require::REDIS.skip(format!("no usable Redis at {url}: {e}"));
            None
        }
    }
}

/// Whether `redis-server` and `redis-cli` are installed; skips when not.
pub fn tools_available() -> bool {
    super::require::REDIS.available(super::require::missing_programs(&[
        "redis-server",
        "redis-cli",
    ]))
}

/// Runs `redis-cli` against `port` with `args`; its stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `redis-server` of this test, on a port of its own, keeping nothing on
/// disk; stopped (by its PID) on drop.
pub struct PrivateRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    extra: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one with these extra `redis-server` arguments (e.g.
    /// `["--maxmemory-policy", "allkeys-lru"]`); `None` when `redis-server`
    /// is missing (skipped, reason printed).
    pub fn start(extra: &[&str]) -> Option<PrivateRedis> {
        if !tools_available() {
            return None;
        }
        let mut redis = PrivateRedis {
            port: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: None,
        };
        // A free port may be taken before the server binds it: retry.
        for _ in 0..10 {
            redis.port = super::free_port().expect("a free port");
            if redis.launch().is_ok() {
                return Some(redis);
            }
        }
        panic!("no private redis-server started on a free port");
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn launch(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if cli(self.port, &["ping"]) == "PONG" {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("redis-server exited: {status}"));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        Err("redis-server did not answer within 10 s".into())
    }

    /// Stops it (SIGKILL to its PID: nothing is kept), keeping the port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("restarting redis: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three masters (no replicas) this test started; its
/// nodes stop on drop.
pub struct PrivateCluster {
    /// The masters.
    pub nodes: Vec<PrivateRedis>,
}

impl PrivateCluster {
    /// Starts three `--cluster-enabled` servers and joins them with
    /// `redis-cli --cluster create`; `None` when the tools are missing.
    pub fn start() -> Option<PrivateCluster> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            // Relative to the node's own directory.
            nodes.push(PrivateRedis::start(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = PrivateCluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cli(cluster.nodes[0].port, &["cluster", "info"]).contains("cluster_state:ok") {
            assert!(Instant::now() < deadline, "the cluster never became ok");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cluster)
    }

    /// The URL of its first node.
    pub fn url(&self) -> String {
        self.nodes[0].url()
    }
}

/// `redis-server` arguments that keep every write across a kill: an
/// append-only file synced on each write, in the server's own directory.
pub const DURABLE: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

/// The realm of every [`Fleet`].
pub const FLEET_REALM: &str = "redis fleet test";

/// Instances of one app, each a Rocket on a real TCP port, configured as a
/// fleet is: one `secret`, credentials in one SQLite file on disk, nonce
/// counts in one Redis (`counts = "redis"`, `[databases.digest_auth_counts]`).
/// `GET /me` answers the username.
pub struct Fleet {
    /// The instances, stopped on drop.
    pub instances: Vec<super::server::Running>,
    /// Holds the credentials' database.
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// `n` instances whose `[databases.digest_auth_counts]` is `counts` (a
    /// table: `url`, `key_prefix`, `cluster`, ...) and whose
    /// `[digest_auth]` adds `settings` (an object) to the fleet's own.
    pub fn start(n: usize, counts: serde_json::Value, settings: serde_json::Value) -> Fleet {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut digest_auth = serde_json::json!({
            "realm": FLEET_REALM,
            "secret": format!("fleet secret {}", generate_token()),
            "counts": "redis",
        });
        for (key, value) in settings.as_object().expect("settings is an object") {
            digest_auth[key] = value.clone();
        }
        let db = super::sqlite_url(&dir.path().join("credentials.sqlite"));
        // One after the other: the first creates the tables.
        let instances = (0..n)
            .map(|i| {
                let figment = super::server::figment()
                    .merge(("workers", 2))
                    .merge(("digest_auth", &digest_auth))
                    .merge(("databases.digest_auth.url", &db))
                    .merge(("databases.digest_auth_counts", &counts));
                let rocket = rocket::custom(figment)
                    .attach(rocket_digest_auth::DigestAuth::fairing())
                    .mount("/", rocket::routes![super::me]);
                super::server::Running::start(rocket)
                    .unwrap_or_else(|e| panic!("instance {i} did not start: {e}"))
            })
            .collect();
        Fleet {
            instances,
            _dir: dir,
        }
    }

    /// `counts` for a Redis at `url` under a key prefix of this test's own.
    pub fn counts_at(url: &str, tag: &str) -> serde_json::Value {
        serde_json::json!({ "url": url, "key_prefix": unique_prefix(tag) })
    }

    /// A user with a fresh token, issued through the first instance.
    pub fn user(&self, name: &str) -> (String, String) {
        let user = format!("{name}-{}", &generate_token()[..8]);
        let token = super::block_on(self.instances[0].issue(&user));
        (user, token)
    }

    /// `GET /me` on instance `i` over a fresh connection.
    pub fn get(&self, i: usize, authorization: Option<&str>) -> super::http::Response {
        let request = super::http::Request::get("/me")
            .authorization(authorization)
            .end();
        let port = self.instances[i % self.instances.len()].port;
        super::http::send(port, &request, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("GET /me on instance {i}: {e}"))
    }

    /// A session of `user` on a challenge from instance `i`.
    pub fn client(&self, i: usize, user: &str, token: &str) -> DigestClient {
        let reply = self.get(i, None);
        assert_eq!(reply.status, 401, "instance {i}: {reply:?}");
        DigestClient::new(user, token, reply.headers.challenge())
    }

    /// Asserts `reply` from instance `i` let `user` in.
    pub fn assert_ok(reply: &super::http::Response, i: usize, user: &str) {
        assert_eq!(reply.status, 200, "instance {i}: {reply:?}");
        assert_eq!(reply.text(), user, "instance {i}");
    }

    /// Asserts `reply` from instance `i` refused a used count: 401 with
    /// `stale=true` (the digest was right).
    pub fn assert_replay_refused(reply: &super::http::Response, i: usize) {
        assert_eq!(reply.status, 401, "instance {i}: {reply:?}");
        assert!(reply.headers.is_stale(), "instance {i}: {reply:?}");
    }
}
