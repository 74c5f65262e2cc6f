//! Fuzzes the `Authorization: Digest` header parser.
//!
//! Any byte string (valid UTF-8 as is, anything else through a lossy
//! conversion, as a server would see it) must parse or be refused without a
//! panic, and what comes out must be bounded and well-formed: the parser's
//! output never exceeds its input, the checked fields really are what the
//! parser promises, and a re-serialised header parses back to the same value
//! (escape handling). The checks are `tests/shared/parse_invariants.rs`,
//! which the property tests run too.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/shared/parse_invariants.rs"]
mod parse_invariants;

use parse_invariants::check_parse;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let _ = check_parse(&header);
    // The same bytes behind the scheme, so that the fuzzer does not have to
    // find `Digest ` first.
    if !header.as_bytes().starts_with(b"Digest ") {
        let _ = check_parse(&format!("Digest {header}"));
    }
});
