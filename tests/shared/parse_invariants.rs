//! What the `Authorization` parser promises for any input, checked the same
//! way by the property tests (`tests/proptest_header.rs`, `#[path]`-included)
//! and by the fuzz target (`fuzz/fuzz_targets/authorization_header.rs`), so
//! that a finding of one is a failure of the other.

use rocket_digest_auth::protocol::{Authorization, ParseError, MAX_CNONCE_LEN, MAX_HEADER_LEN};

/// Parses `header`, panics unless the result keeps the parser's promises,
/// and returns it:
/// - an oversized header is refused with `TooLong`;
/// - the output is bounded by the input (unescaping and percent-decoding
///   only shrink);
/// - `response` is lower-case hex, `nc` is eight hex digits, `cnonce` is
///   1 to `MAX_CNONCE_LEN` bytes;
/// - a canonical re-serialisation parses back to the same value (escapes).
pub fn check_parse(header: &str) -> Result<Option<Authorization<'_>>, ParseError> {
    let parsed = Authorization::parse(header);
    if header.len() > MAX_HEADER_LEN {
        assert_eq!(parsed, Err(ParseError::TooLong));
        return parsed;
    }
    let Ok(Some(auth)) = &parsed else {
        return parsed;
    };

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

    let canonical = canonical(auth);
    if canonical.len() <= MAX_HEADER_LEN {
        assert_eq!(
            Authorization::parse(&canonical).as_ref(),
            Ok(&Some(auth.clone())),
            "canonical form: {canonical:?}"
        );
    }
    parsed
}

/// `s` as a quoted-string: in double quotes, `"` and `\` escaped.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `a` written back with every value quoted and in a fixed order.
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
