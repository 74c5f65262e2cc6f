//! Tests that need something from outside the crate (a tool, a Python
//! library, a database server): run, skip, or fail.
//!
//! Each such need is a [`Group`]. When what a group needs is missing, its
//! tests fail if `DIGEST_AUTH_REQUIRE_ALL` is set (`./scripts/test` sets it,
//! so nothing is skipped silently there), and otherwise return early: the
//! test binary then says once, on stderr, which group it skipped and why.
//!
//! ```ignore
//! #[test]
//! fn with_htdigest() {
//!     if !common::require::HTDIGEST.available(common::require::missing_programs(&["htdigest"])) {
//!         return;
//!     }
//!     // ...
//! }
//! ```

use std::fmt::Display;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;

/// The variable that makes every group mandatory.
pub const REQUIRE_ALL_VAR: &str = "DIGEST_AUTH_REQUIRE_ALL";

/// Tests that need the same thing from outside.
pub struct Group {
    /// What the tests are, as in "skipped: PostgreSQL tests (...)".
    name: &'static str,
    /// How to get what they need.
    how: &'static str,
    /// A variable that makes this group alone mandatory.
    require_var: Option<&'static str>,
    skipped: Once,
}

/// Tests against the PostgreSQL server (`DIGEST_AUTH_TEST_POSTGRES_URL`).
pub static POSTGRES: Group = Group::new(
    "PostgreSQL tests",
    "run ./scripts/test, or set DIGEST_AUTH_TEST_POSTGRES_URL to a database",
    Some("DIGEST_AUTH_REQUIRE_POSTGRES"),
);

/// Tests against the Redis server (`DIGEST_AUTH_TEST_REDIS_URL`).
pub static REDIS: Group = Group::new(
    "Redis tests",
    "run ./scripts/test, or set DIGEST_AUTH_TEST_REDIS_URL to a server",
    None,
);

/// Tests against the MySQL or MariaDB server (`DIGEST_AUTH_TEST_MYSQL_URL`).
pub static MYSQL: Group = Group::new(
    "MySQL tests",
    "run ./scripts/test, or set DIGEST_AUTH_TEST_MYSQL_URL to a database",
    None,
);

/// Tests using Apache's `htdigest` tool.
pub static HTDIGEST: Group = Group::new(
    "htdigest tests",
    "run ./scripts/test, or apt-get install apache2-utils curl",
    None,
);

/// Tests driving real HTTP clients: curl, Python requests and httpx, Perl's
/// LWP and wget.
pub static REAL_CLIENTS: Group = Group::new(
    "real-client tests",
    "run ./scripts/test, or apt-get install curl libwww-perl wget; python3 -m pip install requests httpx",
    None,
);

/// Whether `var` is set to anything but empty or `0`.
fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

impl Group {
    const fn new(
        name: &'static str,
        how: &'static str,
        require_var: Option<&'static str>,
    ) -> Group {
        Group {
            name,
            how,
            require_var,
            skipped: Once::new(),
        }
    }

    /// Whether a missing need fails these tests rather than skipping them.
    pub fn required(&self) -> bool {
        set(REQUIRE_ALL_VAR) || self.require_var.is_some_and(set)
    }

    /// Whether the tests can run, given what is missing (`None`: nothing);
    /// when something is, [`skip`](Self::skip)s them.
    pub fn available(&self, missing: Option<String>) -> bool {
        match missing {
            None => true,
            Some(missing) => {
                self.skip(missing);
                false
            }
        }
    }

    /// `missing` stops these tests: panics if the group is
    /// [required](Self::required), else prints (once per test binary) that
    /// the group is skipped, and the caller returns.
    pub fn skip(&self, missing: impl Display) {
        if self.required() {
            let var = match self.require_var {
                Some(var) if set(var) => var,
                _ => REQUIRE_ALL_VAR,
            };
            panic!(
                "{} are mandatory ({var} is set) but {missing}: {}",
                self.name, self.how
            );
        }
        self.skipped.call_once(|| {
            // Straight to the process's stderr: the test harness captures
            // `eprintln!` of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {} ({missing}): {}",
                self.name,
                self.how
            );
        });
    }
}

/// `None` when every program is on `PATH`, else which are not.
pub fn missing_programs(programs: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path =
        |program: &&str| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)));
    let missing: Vec<&str> = programs.iter().filter(|p| !on_path(p)).copied().collect();
    match missing.as_slice() {
        [] => None,
        [one] => Some(format!("`{one}` is not installed")),
        _ => Some(format!("`{}` are not installed", missing.join("`, `"))),
    }
}

/// `None` when `python3` can import every module, else what is missing.
pub fn missing_python_modules(modules: &[&str]) -> Option<String> {
    let missing: Vec<&str> = modules
        .iter()
        .filter(|module| {
            !Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .copied()
        .collect();
    match missing.as_slice() {
        [] => None,
        _ => Some(format!("python3 cannot import {}", missing.join(", "))),
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}
