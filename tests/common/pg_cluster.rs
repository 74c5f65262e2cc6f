//! A private PostgreSQL cluster for tests that stop and start the server.
//!
//! The shared server on 5432 is used by other tests, so a test that takes
//! PostgreSQL down runs its own: `initdb` into a temporary directory, then
//! `pg_ctl start`/`stop` on a free port. As root, the PostgreSQL tools refuse
//! to run, so they run as the `postgres` user (`runuser -u postgres --`) in a
//! directory owned by it.
//!
//! Setting up needs the PostgreSQL server binaries (`initdb`, `pg_ctl`, found
//! on `PATH` or under `/usr/lib/postgresql/*/bin`). When they are missing the
//! caller decides: [`super::postgres::required`] says whether the run demands
//! PostgreSQL.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running (or stopped) private cluster; stopped and deleted on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PgCluster {
    /// Creates a cluster (trust authentication, user `postgres`) and starts it
    /// on a free port of 127.0.0.1.
    pub fn start() -> Result<PgCluster, String> {
        let bin = find_bin_dir().ok_or(
            "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin",
        )?;
        let as_postgres_user = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("digest-auth-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_postgres_user {
            let uid = id_of("-u")?;
            let gid = id_of("-g")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to postgres: {e}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let mut cluster = PgCluster {
            dir,
            data,
            bin,
            port: 0,
            as_postgres_user,
        };
        let data = cluster
            .data
            .to_str()
            .ok_or("non-UTF-8 temp path")?
            .to_owned();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        // A free port can be taken between the probe and the start: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            cluster.port = super::free_port().map_err(|e| format!("finding a free port: {e}"))?;
            match cluster.start_server() {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) -> Result<(), String> {
        let data = self.data.to_str().ok_or("non-UTF-8 temp path")?;
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-l",
                log.to_str().ok_or("non-UTF-8 temp path")?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// Stops the server (`-m fast`: open sessions are terminated, as when an
    /// administrator or a failover stops it) and waits until it is down.
    pub fn stop_server(&self) -> Result<(), String> {
        let data = self.data.to_str().ok_or("non-UTF-8 temp path")?;
        self.run(
            "pg_ctl",
            &["-D", data, "-m", "fast", "-w", "-t", "60", "stop"],
        )
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("running {program}: {e}"))?;
        check(program, &output)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(data) = self.data.to_str() {
            let _ = self
                .command("pg_ctl")
                .args(["-D", data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn check(program: &str, output: &Output) -> Result<(), String> {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn id_of(flag: &str) -> Result<u32, String> {
    let output = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .map_err(|e| format!("id {flag} postgres: {e}"))?;
    check("id", &output).map_err(|e| format!("running as root needs a `postgres` user: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id {flag} postgres: {e}"))
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|d| has_tools(d)) {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_tools(d))
        .collect();
    versions.sort();
    versions.pop()
}
