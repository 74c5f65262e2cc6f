//! The one grammar of Digest header values (RFC 7230 `#auth-param`, RFC 7616
//! section 3): `Digest` scheme detection, `name=value` lists with tokens or
//! quoted-strings, and the quoted-string writer. The request parser, the
//! challenge and `Authentication-Info` writers and the client all use it.
//!
//! ```
//! use rocket_digest_auth::protocol::grammar;
//!
//! let rest = grammar::digest_params(r#"Digest realm="a \"b\"", qop=auth"#).unwrap();
//! let params: Vec<_> = grammar::params(rest).map(|p| p.unwrap()).collect();
//! assert_eq!(params[0].0, "realm");
//! assert_eq!(params[0].1, r#"a "b""#);
//! assert_eq!(params[1].1, "auth");
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write};

use super::header::{ParseError, MAX_PARAMS};

/// The parameter list after a `Digest` scheme name (any case), or `None` for
/// another scheme or none.
pub fn digest_params(value: &str) -> Option<&str> {
    let value = value.trim_start_matches([' ', '\t']);
    let scheme_end = value
        .bytes()
        .position(|b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    scheme.eq_ignore_ascii_case("digest").then_some(rest)
}

/// The `name=value` pairs of `s`, in order: names as sent (compare them
/// ignoring case), values unescaped. Values borrow from `s` unless they had
/// escapes. A name given twice (in any case) and more than [`MAX_PARAMS`]
/// parameters are errors, and so is broken syntax; the iterator ends after
/// the first error.
pub fn params(s: &str) -> Params<'_> {
    Params {
        s,
        i: 0,
        count: 0,
        seen_marks: 0,
        rescan: false,
        failed: false,
    }
}

/// The iterator of [`params`]. Parsing a list allocates nothing unless a
/// value had escapes.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    s: &'a str,
    i: usize,
    count: usize,
    /// One bit per (length, first letter in any case) of the names seen:
    /// only a name whose bit is set is compared with the names before it
    /// (read again from the start: rare in real headers).
    seen_marks: u64,
    /// A scan of names already checked, by [`Params::named_before`].
    rescan: bool,
    failed: bool,
}

/// One parameter: the name as sent and the unescaped value.
pub type Param<'a> = (&'a str, Cow<'a, str>);

impl<'a> Iterator for Params<'a> {
    type Item = Result<Param<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.parse_one().transpose();
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

impl<'a> Params<'a> {
    fn parse_one(&mut self) -> Result<Option<Param<'a>>, ParseError> {
        let s = self.s;
        let bytes = s.as_bytes();
        let mut i = self.i;
        let skip_ws = |i: &mut usize| {
            while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\r' | b'\n') {
                *i += 1;
            }
        };
        // Any run of separators between parameters (RFC 7230 #rule allows empty elements).
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b',') {
            i += 1;
        }
        if i == bytes.len() {
            self.i = i;
            return Ok(None);
        }
        let start = i;
        while i < bytes.len() && is_tchar(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(ParseError::Syntax(i));
        }
        let name = &s[start..i];
        skip_ws(&mut i);
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(ParseError::Syntax(i));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < bytes.len() && bytes[i] == b'"' {
            let (value, end) = quoted_string(s, i)?;
            i = end;
            value
        } else {
            let vstart = i;
            while i < bytes.len() && is_tchar(bytes[i]) {
                i += 1;
            }
            if i == vstart {
                return Err(ParseError::Syntax(i));
            }
            Cow::Borrowed(&s[vstart..i])
        };
        skip_ws(&mut i);
        if i < bytes.len() && bytes[i] != b',' {
            return Err(ParseError::Syntax(i));
        }
        let mark = 1u64 << ((name.len() * 7 + usize::from(bytes[start] | 0x20)) % 64);
        if self.seen_marks & mark != 0 && !self.rescan && self.named_before(start, name) {
            return Err(ParseError::Duplicate(name.to_ascii_lowercase()));
        }
        self.seen_marks |= mark;
        if self.count == MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        self.count += 1;
        self.i = i;
        Ok(Some((name, value)))
    }

    /// Whether a parameter before byte `end` of the list is named `name`,
    /// in any case. The list up to `end` parsed without error.
    fn named_before(&self, end: usize, name: &str) -> bool {
        // The names before were each checked already: the scan looks for
        // no duplicates among them (and so never recurses).
        let mut earlier = Params {
            rescan: true,
            ..params(&self.s[..end])
        };
        std::iter::from_fn(|| earlier.parse_one().ok().flatten())
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}

/// The quoted-string starting at the `"` at `s[open]`: its unescaped value
/// (borrowed until the first escape) and the index just past the closing quote.
fn quoted_string(s: &str, open: usize) -> Result<(Cow<'_, str>, usize), ParseError> {
    let bytes = s.as_bytes();
    let start = open + 1;
    let mut i = start;
    let mut owned: Option<String> = None;
    let mut run = i;
    loop {
        // Straight to the next quote or backslash: nothing else ends a run.
        let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
            return Err(ParseError::Syntax(bytes.len()));
        };
        i += at;
        if bytes[i] == b'"' {
            let value = match owned {
                None => Cow::Borrowed(&s[start..i]),
                Some(mut v) => {
                    v.push_str(&s[run..i]);
                    Cow::Owned(v)
                }
            };
            return Ok((value, i + 1));
        }
        let v = owned.get_or_insert_with(String::new);
        v.push_str(&s[run..i]);
        // The escaped character may be multi-byte UTF-8: copy it whole.
        let next = s[i + 1..].chars().next().ok_or(ParseError::Syntax(i))?;
        v.push(next);
        i += 1 + next.len_utf8();
        run = i;
    }
}

/// RFC 7230 `tchar`, plus `/` which some clients leave unquoted in `uri`
/// and in base64 nonces, and `:?@` seen unquoted in `uri`.
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] as a table: one load per byte of a header.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~/:?@";
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
};

/// Appends `s` to `out` as a quoted-string (see [`Quoted`]).
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest.as_bytes()) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..=i]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// `s` as an RFC 7230 quoted-string: in double quotes, with `"` and `\`
/// escaped. Writes runs between escapes whole.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        let mut rest = self.0;
        while let Some(i) = rest.find(['"', '\\']) {
            f.write_str(&rest[..i])?;
            f.write_char('\\')?;
            f.write_str(&rest[i..=i])?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)?;
        f.write_char('"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str) -> Result<Vec<(String, String)>, ParseError> {
        params(s)
            .map(|p| p.map(|(n, v)| (n.to_owned(), v.into_owned())))
            .collect()
    }

    #[test]
    fn quoted_strings_round_trip_through_the_writer() {
        for v in ["", "plain", r#"a "b" \ c"#, "ä\\\"", "\\"] {
            let written = format!("x={}", Quoted(v));
            assert_eq!(all(&written), Ok(vec![("x".into(), v.into())]), "{written}");
        }
    }

    #[test]
    fn values_borrow_unless_escaped() {
        let mut p = params(r#"a=tok, b="quoted", c="esc\"aped""#);
        assert!(matches!(p.next(), Some(Ok((_, Cow::Borrowed("tok"))))));
        assert!(matches!(p.next(), Some(Ok((_, Cow::Borrowed("quoted"))))));
        assert!(matches!(p.next(), Some(Ok((_, Cow::Owned(_))))));
        assert!(p.next().is_none());
    }

    #[test]
    fn duplicates_in_any_case_and_errors_end_the_list() {
        let mut p = params("a=1, A=2, b=3");
        assert!(p.next().unwrap().is_ok());
        assert_eq!(p.next(), Some(Err(ParseError::Duplicate("a".into()))));
        assert_eq!(p.next(), None);
        assert_eq!(all("a=\"x"), Err(ParseError::Syntax(4)));
    }

    #[test]
    fn names_sharing_a_length_and_first_letter_are_not_duplicates() {
        let names = all("username=a, userhash=b, USERNAMe=c");
        assert_eq!(names, Err(ParseError::Duplicate("username".into())));
        let p: Vec<_> = params("username=a, userhash=b, usermask=c").collect();
        assert!(p.iter().all(Result::is_ok), "{p:?}");
    }

    #[test]
    fn names_that_all_share_a_mark_are_compared_once_each() {
        // Every name collides with every earlier one: a rescan that looked
        // for duplicates again would recurse without end (2^32 scans).
        let list: Vec<String> = (0..MAX_PARAMS).map(|i| format!("x{i:02}=v")).collect();
        let header = list.join(", ");
        let parsed: Vec<_> = params(&header).collect();
        assert_eq!(parsed.len(), MAX_PARAMS);
        assert!(parsed.iter().all(Result::is_ok), "{parsed:?}");
        let mut repeated = list.clone();
        repeated.push("X31=w".to_owned());
        assert_eq!(
            all(&repeated.join(", ")),
            Err(ParseError::Duplicate("x31".into()))
        );
    }

    #[test]
    fn digest_scheme_in_any_case() {
        assert_eq!(digest_params("  dIgEsT a=1"), Some(" a=1"));
        assert_eq!(digest_params("Digest"), Some(""));
        assert_eq!(digest_params("Digestive a=1"), None);
        assert_eq!(digest_params("Basic abc"), None);
    }
}
