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

/// Installs the capturing logger. Every test of a binary that captures
/// logs calls this (or [`rocket`], [`capture`]) before it builds a Rocket,
/// whose own logger would otherwise come first.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("the capture comes before Rocket's logger");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// `rocket::custom(figment)`, built after the capturing logger is installed
/// (Rocket installs its own logger when none is).
pub fn rocket(figment: rocket::figment::Figment) -> rocket::Rocket<rocket::Build> {
    install();
    rocket::custom(figment)
}

/// Runs `f`, returning its result and the lines logged on this thread meanwhile.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    install();
    LINES.with(|lines| lines.borrow_mut().clear());
    let result = f();
    (result, LINES.with(|lines| lines.take()))
}

/// The lines the fairing logged as `rocket` failed to ignite; panics if it ignited.
pub fn ignite_errors(rocket: rocket::Rocket<rocket::Build>) -> Vec<String> {
    // Looking at a rocket::Error marks it handled (it panics on drop otherwise).
    let (ignited, lines) =
        capture(|| super::block_on(rocket.ignite()).map_err(|e| e.kind().to_string()));
    assert!(ignited.is_err(), "the rocket ignited");
    lines
        .into_iter()
        .filter(|l| l.starts_with("Digest authentication failed to start"))
        .collect()
}
