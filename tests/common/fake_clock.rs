//! A wall clock a test can move, for a child process: an `LD_PRELOAD` shim
//! over `clock_gettime(CLOCK_REALTIME)`, `gettimeofday` and `time` (Rust's
//! `SystemTime` and chrono use the first, SQLite's `unixepoch()` the second),
//! built with `cc` by the first test that needs it. Each process reads its
//! offset in seconds from a file of its own on every call, so a test can
//! step the clock forward and back while the process runs. Monotonic clocks
//! (timers, intervals) are left alone.
//!
//! ```ignore
//! let clock = FakeClock::new()?;          // offset 0
//! clock.apply(&mut command);              // before spawning
//! clock.set(100);                         // 100 s ahead from now on
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset(void) {
    const char *path = getenv("FAKE_CLOCK_OFFSET_FILE");
    if (!path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return strtoll(buf, 0, 10);
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int r = real(id, ts);
    if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += offset();
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    static int (*real)(struct timeval *, void *);
    if (!real) real = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
    int r = real(tv, tz);
    if (r == 0 && tv) tv->tv_sec += offset();
    return r;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
"#;

/// The shim, built once per test binary; an error when `cc` cannot build it.
fn shim() -> Result<&'static Path, String> {
    static SHIM_PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SHIM_PATH
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fake_clock");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let source = dir.join("fake_clock.c");
            std::fs::write(&source, SHIM).map_err(|e| e.to_string())?;
            // Per process: test binaries running at once must not share the output.
            let lib = dir.join(format!("libfake_clock-{}.so", std::process::id()));
            let out = Command::new("cc")
                .args(["-shared", "-fPIC", "-O2", "-o"])
                .arg(&lib)
                .arg(&source)
                .arg("-ldl")
                .output()
                .map_err(|e| format!("running cc: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "cc failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(lib)
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// One process's clock offset.
pub struct FakeClock {
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeClock {
    /// A clock at offset 0, or why the shim cannot be built.
    pub fn new() -> Result<FakeClock, String> {
        shim()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let clock = FakeClock {
            file: dir.path().join("offset"),
            _dir: dir,
        };
        clock.set(0);
        Ok(clock)
    }

    /// From now on, the process's wall clock runs `seconds` ahead (behind
    /// when negative) of the real one.
    pub fn set(&self, seconds: i64) {
        // Written aside and renamed, so the process never reads half a number.
        let aside = self.file.with_extension("new");
        std::fs::write(&aside, seconds.to_string()).expect("writing the clock offset");
        std::fs::rename(&aside, &self.file).expect("moving the clock offset in place");
    }

    /// Makes `command` run on this clock.
    pub fn apply(&self, command: &mut Command) {
        let shim = shim().expect("the shim was built by FakeClock::new");
        command
            .env("LD_PRELOAD", shim)
            .env("FAKE_CLOCK_OFFSET_FILE", &self.file);
    }
}
