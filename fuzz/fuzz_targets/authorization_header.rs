//! Fuzzes the `Authorization: Digest` header parser.
//!
//! Any byte string (valid UTF-8 as is, anything else through a lossy
//! conversion, as a server would see it) must parse or be refused without a
//! panic, and what comes out must be bounded and well-formed: the parser's
//! output never exceeds its input, the checked fields really are what the
//! parser promises, and a re-serialised header parses back to the same value
//! (escape handling).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rocket_digest_auth::protocol::{Authorization, ParseError, MAX_CNONCE_LEN, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    check(&header);
    // The same bytes behind the scheme, so that the fuzzer does not have to
    // find `Digest ` first.
    if !header.as_bytes().starts_with(b"Digest ") {
        check(&format!("Digest {header}"));
    }
});

fn check(header: &str) {
    let parsed = Authorization::parse(header);
    if header.len() > MAX_HEADER_LEN {
        assert_eq!(parsed, Err(ParseError::TooLong));
        return;
    }
    let Ok(Some(auth)) = parsed else { return };

    // Bounded: unescaping and percent-decoding only ever shrink.
    let out_len = auth.username.len()
        + auth.realm.len()
        + auth.nonce.len()
        + auth.uri.len()
        + auth.response.len()
        + auth.opaque.as_ref().map_or(0, |o| o.len())
        + auth
            .qop
            .as_ref()
            .map_or(0, |q| q.nc_raw.len() + q.cnonce.len());
    assert!(out_len <= header.len(), "{out_len} > {}", header.len());

    // What the parser promises about the checked fields.
    assert!(!auth.response.is_empty());
    assert!(auth
        .response
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if let Some(q) = &auth.qop {
        assert_eq!(q.nc_raw.len(), 8);
        assert_eq!(u32::from_str_radix(&q.nc_raw, 16), Ok(q.nc));
        assert!(!q.cnonce.is_empty() && q.cnonce.len() <= MAX_CNONCE_LEN);
    }

    // A canonical re-serialisation parses back to the same value.
    let canonical = canonical(&auth);
    if canonical.len() <= MAX_HEADER_LEN {
        assert_eq!(
            Authorization::parse(&canonical),
            Ok(Some(auth.clone())),
            "canonical form: {canonical:?}"
        );
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn canonical(a: &Authorization) -> String {
    let mut h = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
        quote(&a.username),
        quote(&a.realm),
        quote(&a.nonce),
        quote(&a.uri),
        quote(&a.response),
        a.algorithm,
    );
    if let Some(q) = &a.qop {
        h.push_str(&format!(
            ", qop={}, nc={}, cnonce={}",
            q.kind.as_str(),
            q.nc_raw,
            quote(&q.cnonce)
        ));
    }
    if let Some(o) = &a.opaque {
        h.push_str(&format!(", opaque={}", quote(o)));
    }
    if a.userhash {
        h.push_str(", userhash=true");
    }
    h
}
