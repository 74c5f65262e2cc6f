//! Log lines, captured per thread: what Rocket and the fairing print at
//! ignite and liftoff, for tests asserting the messages users read.
//!
//! The capturing logger is installed before Rocket's own (which then stays
//! out), so run the code under test on the test's thread ([`super::block_on`]).
//!
//! ```ignore
//! let (result, lines) = common::logs::capture(|| common::block_on(rocket.ignite()));
//! assert!(lines.iter().any(|l| l.contains("digest_auth.realm")));
//! ```

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        LINES.with(|lines| lines.borrow_mut().push(record.args().to_string()));
    }

    fn flush(&self) {}
}

/// Runs `f`, returning its result and the lines logged on this thread meanwhile.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no logger installed before the capture");
        log::set_max_level(log::LevelFilter::Info);
    });
    LINES.with(|lines| lines.borrow_mut().clear());
    let result = f();
    (result, LINES.with(|lines| lines.take()))
}
