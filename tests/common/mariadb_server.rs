//! A private MariaDB server for tests that stop and start the server.
//!
//! The shared server on 3306 is used by other tests, so a test that takes
//! MariaDB down runs its own: `mariadb-install-db` into a temporary
//! directory, then `mariadbd` on a free port of 127.0.0.1 with grant tables
//! off (anyone connects as anyone), stopped by its PID (SIGTERM: a shutdown
//! that closes every session, as an administrator's or a failover's) and
//! started again on the same port and data. As root, `mariadbd` runs as the
//! `mysql` user in a directory owned by it.
//!
//! Needs `mariadb-install-db` and `mariadbd` (Debian: `mariadb-server`), on
//! `PATH` or in `/usr/sbin`. When they are missing the caller decides:
//! [`super::require::MYSQL`] says whether the run demands MySQL.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private server (running or stopped); stopped and deleted on drop.
pub struct MariaDbServer {
    dir: tempfile::TempDir,
    server: PathBuf,
    port: u16,
    as_mysql_user: bool,
    child: Option<Child>,
}

impl MariaDbServer {
    /// Creates a data directory and starts a server on a free port.
    pub fn start() -> Result<MariaDbServer, String> {
        let install = find("mariadb-install-db").ok_or("no `mariadb-install-db`")?;
        let server = find("mariadbd").ok_or("no `mariadbd`")?;
        let as_mysql_user = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let dir = tempfile::Builder::new()
            .prefix("digest-auth-mariadb-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        // A temporary directory of its own: a server starting clears the
        // `#sql*` files of its tmpdir, which would take those of another
        // private server bootstrapping at the same time in /tmp.
        let tmpdir = dir.path().join("tmp");
        std::fs::create_dir(&tmpdir).map_err(|e| format!("{}: {e}", tmpdir.display()))?;
        if as_mysql_user {
            let (uid, gid) = (id_of("-u")?, id_of("-g")?);
            for owned in [dir.path(), &tmpdir] {
                std::os::unix::fs::chown(owned, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {} to mysql: {e}", owned.display()))?;
            }
        }
        let mut command = Command::new(install);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .arg("--auth-root-authentication-method=normal");
        if as_mysql_user {
            command.arg("--user=mysql");
        }
        let output = command
            .output()
            .map_err(|e| format!("running mariadb-install-db: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mariadb-install-db failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let mut server = MariaDbServer {
            dir,
            server,
            port: 0,
            as_mysql_user,
            child: None,
        };
        // A free port can be taken between the probe and the start: retry.
        let mut last_error = String::new();
        for _ in 0..3 {
            server.port = super::free_port().map_err(|e| format!("finding a free port: {e}"))?;
            match server.start_server() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `mysql://root@127.0.0.1:<port>/test` (the database the install makes).
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/test", self.port)
    }

    /// The PID of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server and waits (up to 60 s) until it accepts connections.
    pub fn start_server(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        let dir = self.dir.path();
        let mut command = Command::new(&self.server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=32M",
                "--innodb-flush-log-at-trx-commit=2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.as_mysql_user {
            command.arg("--user=mysql");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting mariadbd: {e}"))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("mariadbd exited ({status}): {}", self.log()));
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop_server()?;
        Err(format!(
            "mariadbd did not listen within 60 s: {}",
            self.log()
        ))
    }

    /// Stops the server by its PID (SIGTERM) and waits until it has exited.
    pub fn stop_server(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .map_err(|e| format!("kill {}: {e}", child.id()))?;
        if !status.success() {
            let _ = child.kill();
        }
        child
            .wait()
            .map(drop)
            .map_err(|e| format!("waiting for mariadbd: {e}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|p| is_file(p))
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|m| m.is_file())
}

fn id_of(flag: &str) -> Result<u32, String> {
    let output = Command::new("id")
        .args([flag, "mysql"])
        .output()
        .map_err(|e| format!("id {flag} mysql: {e}"))?;
    if !output.status.success() {
        return Err("running as root needs a `mysql` user".into());
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id {flag} mysql: {e}"))
}
