//! Parsing the `Authorization: Digest ...` request header (RFC 7616 section 3.4).
//!
//! The parser is strict where ambiguity would be dangerous (a parameter given
//! twice is refused, not resolved by first- or last-wins) and lenient where
//! real clients differ: any case in the scheme and parameter names, quoted or
//! bare values (`algorithm="MD5"` from Python requests), escaped quotes, extra
//! whitespace, unknown parameters.
//!
//! ```
//! use rocket_digest_auth::protocol::{Authorization, Algorithm};
//!
//! let auth = Authorization::parse(
//!     r#"Digest username="Mufasa", realm="testrealm@host.com",
//!        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html",
//!        qop=auth, nc=00000001, cnonce="0a4f113b",
//!        response="6629fae49393a05397450978507c4ef1""#,
//! ).unwrap().expect("a Digest header");
//! assert_eq!(auth.username, "Mufasa");
//! assert_eq!(auth.algorithm, Algorithm::Md5);
//! assert_eq!(auth.qop.map(|q| q.nc), Some(1));
//! ```

use std::borrow::Cow;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::algorithm::Algorithm;
use super::grammar;

/// Longest `Authorization` header accepted. Real Digest headers are a few
/// hundred bytes plus the request-target; this bounds parse work and memory.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Most parameters accepted in one header.
pub const MAX_PARAMS: usize = 32;

/// Longest `cnonce` accepted: it is stored once per request for replay checks.
pub const MAX_CNONCE_LEN: usize = 256;

/// A quality of protection: what a request's `qop` claims, what a challenge
/// offers and what the `qop` configuration key lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Qop {
    /// `auth`: authentication of method and request-target.
    #[serde(rename = "auth")]
    Auth,
    /// `auth-int`: also the hash of the request body.
    #[serde(rename = "auth-int")]
    AuthInt,
}

impl Qop {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }
}

impl FromStr for Qop {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.eq_ignore_ascii_case("auth") {
            Ok(Self::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Ok(Self::AuthInt)
        } else {
            Err(ParseError::Invalid("qop"))
        }
    }
}

/// The `qop`, `nc` and `cnonce` that RFC 2617 and 7616 clients send together
/// (RFC 2069 clients send none of them): what a request's parse yields and
/// what [`digest::response`](super::digest::response) hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopParams<'a> {
    /// The chosen quality of protection.
    pub kind: Qop,
    /// The nonce count, parsed from its 8 hex digits.
    pub nc: u32,
    /// The `nc` exactly as sent (its case matters for the response hash).
    pub nc_raw: Cow<'a, str>,
    /// The client nonce.
    pub cnonce: Cow<'a, str>,
}

impl<'a> QopParams<'a> {
    /// What a client sends for count `nc`: `nc` as 8 lower-case hex digits.
    pub fn counted(kind: Qop, nc: u32, cnonce: &'a str) -> QopParams<'a> {
        QopParams {
            kind,
            nc,
            nc_raw: Cow::Owned(format!("{nc:08x}")),
            cnonce: Cow::Borrowed(cnonce),
        }
    }

    /// The same parameters, owning their text.
    pub fn into_owned(self) -> QopParams<'static> {
        QopParams {
            kind: self.kind,
            nc: self.nc,
            nc_raw: Cow::Owned(self.nc_raw.into_owned()),
            cnonce: Cow::Owned(self.cnonce.into_owned()),
        }
    }
}

/// A parsed `Authorization: Digest` header. Its text borrows from the header
/// value; it is owned only where the header had to be changed (escapes in a
/// quoted-string, a `username*`, upper-case hex in `response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// `username`, or `username*` decoded, or the userhash when [`userhash`](Self::userhash) is set.
    pub username: Cow<'a, str>,
    /// Whether `username` is a userhash (RFC 7616 3.4.4).
    pub userhash: bool,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`, the server nonce being answered.
    pub nonce: Cow<'a, str>,
    /// `uri`, the request-target the client signed.
    pub uri: Cow<'a, str>,
    /// `response`, lower-cased hex.
    pub response: Cow<'a, str>,
    /// `algorithm`, MD5 when absent (RFC 7616 3.4).
    pub algorithm: Algorithm,
    /// `opaque`, when sent.
    pub opaque: Option<Cow<'a, str>>,
    /// `qop`, `nc` and `cnonce`; `None` for an RFC 2069 request.
    pub qop: Option<QopParams<'a>>,
}

/// Why a header could not be parsed. Every variant is the client's fault: a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The header is longer than [`MAX_HEADER_LEN`].
    #[error("Authorization header longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// The header's syntax is broken (unterminated quote, missing `=`, ...).
    #[error("malformed Digest parameters near byte {0}")]
    Syntax(usize),
    /// More than [`MAX_PARAMS`] parameters.
    #[error("too many Digest parameters")]
    TooManyParams,
    /// A parameter appears twice.
    #[error("Digest parameter `{0}` given more than once")]
    Duplicate(String),
    /// A required parameter is absent.
    #[error("Digest parameter `{0}` is missing")]
    Missing(&'static str),
    /// A parameter's value is not valid for it.
    #[error("Digest parameter `{0}` is invalid")]
    Invalid(&'static str),
}

/// The parameters a request header may carry, in the order of `FIELDS`.
const FIELDS: [&str; 12] = [
    "username",
    "username*",
    "userhash",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "opaque",
    "qop",
    "nc",
    "cnonce",
];

/// The index in `FIELDS` of a parameter name in any case: its length picks
/// the one or two candidates compared.
fn field_index(name: &str) -> Option<usize> {
    let candidates: &[usize] = match name.len() {
        2 => &[10],
        3 => &[5, 9],
        5 => &[3, 4],
        6 => &[11, 8],
        8 => &[0, 6, 2],
        9 => &[1, 7],
        _ => &[],
    };
    // A name is `tchar`s and the fields are lower-case letters and `*`:
    // among those, setting 0x20 changes only upper-case letters, so the
    // comparison is exact (and cheaper than `eq_ignore_ascii_case`).
    let folded_eq = |field: &str| field.bytes().zip(name.bytes()).all(|(f, b)| b | 0x20 == f);
    candidates.iter().copied().find(|&i| folded_eq(FIELDS[i]))
}

impl<'a> Authorization<'a> {
    /// Parses a full header value. `Ok(None)` means another scheme (or none):
    /// the caller answers with a challenge, not a 400.
    pub fn parse(header: &'a str) -> Result<Option<Authorization<'a>>, ParseError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let Some(rest) = grammar::digest_params(header) else {
            return Ok(None);
        };
        // Every parameter is read (so syntax errors and duplicates anywhere
        // are refused) before any is interpreted.
        let mut fields: [Option<Cow<'a, str>>; FIELDS.len()] = Default::default();
        for param in grammar::params(rest) {
            let (name, value) = param?;
            if let Some(i) = field_index(name) {
                fields[i] = Some(value);
            }
        }
        let [username, username_ext, userhash, realm, nonce, uri, response, algorithm, opaque, qop, nc, cnonce] =
            fields;
        let userhash = match userhash {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(ParseError::Invalid("userhash")),
        };
        let username = match (username, username_ext) {
            (Some(u), None) => u,
            (None, Some(ext)) if !userhash => Cow::Owned(decode_ext_value(&ext)?),
            (None, None) => return Err(ParseError::Missing("username")),
            // RFC 7616 3.4.4: never both, and username* never with userhash.
            _ => return Err(ParseError::Invalid("username*")),
        };
        let realm = realm.ok_or(ParseError::Missing("realm"))?;
        let nonce = nonce.ok_or(ParseError::Missing("nonce"))?;
        let uri = uri.ok_or(ParseError::Missing("uri"))?;
        let mut response = response.ok_or(ParseError::Missing("response"))?;
        let (mut hex, mut upper) = (!response.is_empty(), false);
        for b in response.bytes() {
            hex &= b.is_ascii_hexdigit();
            upper |= b.is_ascii_uppercase();
        }
        if !hex {
            return Err(ParseError::Invalid("response"));
        }
        if upper {
            response.to_mut().make_ascii_lowercase();
        }
        let algorithm = match algorithm {
            None => Algorithm::Md5,
            Some(a) => a.parse().map_err(|_| ParseError::Invalid("algorithm"))?,
        };
        let qop = match (qop, nc, cnonce) {
            // A cnonce alone is an RFC 2069 answer: Java's client sends one
            // when offered only auth-int, with the response computed without
            // it. It is answered like any RFC 2069 answer (a challenge unless
            // `allow_rfc2069`), not as a malformed header.
            (None, None, _) => None,
            (Some(kind), Some(nc_raw), Some(cnonce)) => {
                let kind = kind.parse()?;
                // RFC 7616: nc is exactly 8 hex digits; either case is seen in the wild.
                if nc_raw.len() != 8 || !nc_raw.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ParseError::Invalid("nc"));
                }
                let nc = u32::from_str_radix(&nc_raw, 16).map_err(|_| ParseError::Invalid("nc"))?;
                if cnonce.is_empty() || cnonce.len() > MAX_CNONCE_LEN {
                    return Err(ParseError::Invalid("cnonce"));
                }
                Some(QopParams {
                    kind,
                    nc,
                    nc_raw,
                    cnonce,
                })
            }
            (None, _, _) => return Err(ParseError::Missing("qop")),
            (_, None, _) => return Err(ParseError::Missing("nc")),
            (_, _, None) => return Err(ParseError::Missing("cnonce")),
        };
        Ok(Some(Authorization {
            username,
            userhash,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            opaque,
            qop,
        }))
    }

    /// The same header, owning its text (to keep it past the header value).
    pub fn into_owned(self) -> Authorization<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Authorization {
            username: own(self.username),
            userhash: self.userhash,
            realm: own(self.realm),
            nonce: own(self.nonce),
            uri: own(self.uri),
            response: own(self.response),
            algorithm: self.algorithm,
            opaque: self.opaque.map(own),
            qop: self.qop.map(QopParams::into_owned),
        }
    }
}

/// Decodes an RFC 5987/8187 `ext-value`: `UTF-8'lang'percent-encoded`.
fn decode_ext_value(v: &str) -> Result<String, ParseError> {
    let invalid = ParseError::Invalid("username*");
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next().ok_or(invalid.clone())?;
    let _lang = parts.next().ok_or(invalid.clone())?;
    let encoded = parts.next().ok_or(invalid.clone())?;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(encoded).collect();
    if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).map_err(|_| invalid)
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        Ok(bytes.into_iter().map(char::from).collect())
    } else {
        Err(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(h: &str) -> Result<Authorization<'_>, ParseError> {
        Authorization::parse(h).map(|o| o.expect("digest"))
    }

    const BASE: &str = r#"username="Mufasa", realm="r", nonce="n", uri="/a", response="ABCDEF01""#;

    #[test]
    fn every_field_name_is_found_in_any_case_and_no_other() {
        for (i, field) in FIELDS.iter().enumerate() {
            assert_eq!(field_index(field), Some(i), "{field}");
            assert_eq!(field_index(&field.to_ascii_uppercase()), Some(i), "{field}");
        }
        for other in [
            "",
            "x",
            "ncc",
            "usernam",
            "nonce*",
            "stale",
            "domain",
            "userhashes",
        ] {
            assert_eq!(field_index(other), None, "{other}");
        }
    }

    #[test]
    fn other_schemes_are_not_digest() {
        assert_eq!(Authorization::parse("Basic QWxhZGRpbjpvcGVu"), Ok(None));
        assert_eq!(Authorization::parse(""), Ok(None));
        assert_eq!(Authorization::parse("Digestive x=1"), Ok(None));
    }

    #[test]
    fn tolerates_case_quotes_and_whitespace() {
        let header = format!(
            "dIgEsT  {BASE} ,  ALGORITHM=\"sha-256\",QOP=\"auth\" ,NC=0000000A, cnonce=abc, extra=\"ignored\""
        );
        let a = parse(&header).unwrap();
        assert_eq!(a.algorithm, Algorithm::Sha256);
        assert_eq!(a.response, "abcdef01");
        let q = a.qop.unwrap();
        assert_eq!((q.kind, q.nc, &*q.nc_raw), (Qop::Auth, 10, "0000000A"));
        assert_eq!(q.cnonce, "abc");
    }

    #[test]
    fn unescapes_quoted_strings() {
        let a =
            parse(r#"Digest username="Mu\"fa\\sa", realm="r", nonce="n", uri="/a", response="00""#)
                .unwrap();
        assert_eq!(a.username, r#"Mu"fa\sa"#);
    }

    #[test]
    fn decodes_username_star() {
        let a = parse(
            r#"Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", uri="/a", response="00""#,
        )
        .unwrap();
        assert_eq!(a.username, "Jäsøn Doe");
    }

    #[test]
    fn refuses_duplicates_and_broken_syntax() {
        assert_eq!(
            parse(&format!("Digest {BASE}, response=\"00\"")),
            Err(ParseError::Duplicate("response".into()))
        );
        assert_eq!(
            parse(&format!(
                "Digest {BASE}, qop=auth, nc=00000001, NC=00000002, cnonce=x"
            )),
            Err(ParseError::Duplicate("nc".into()))
        );
        assert!(matches!(
            parse("Digest username=\"abc"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            parse("Digest username"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse("Digest =x"), Err(ParseError::Syntax(_))));
        assert!(matches!(
            parse("Digest a=\"x\"y"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn validates_nc_and_qop_group() {
        for nc in ["0", "-1", "0x10", "123456789", "0000000g", ""] {
            let h = format!("Digest {BASE}, qop=auth, nc=\"{nc}\", cnonce=x");
            assert_eq!(parse(&h), Err(ParseError::Invalid("nc")), "{nc}");
        }
        let h = format!("Digest {BASE}, qop=auth, nc=ffffffff, cnonce=x");
        assert_eq!(parse(&h).unwrap().qop.unwrap().nc, u32::MAX);
        assert_eq!(
            parse(&format!("Digest {BASE}, qop=auth, cnonce=x")),
            Err(ParseError::Missing("nc"))
        );
        assert_eq!(
            parse(&format!("Digest {BASE}, nc=00000001, cnonce=x")),
            Err(ParseError::Missing("qop"))
        );
        assert_eq!(
            parse(&format!(
                "Digest {BASE}, qop=auth-conf, nc=00000001, cnonce=x"
            )),
            Err(ParseError::Invalid("qop"))
        );
        assert_eq!(parse(&format!("Digest {BASE}")).unwrap().qop, None);
        let stray_cnonce = format!("Digest {BASE}, cnonce=\"0a4f113b\"");
        assert_eq!(parse(&stray_cnonce).unwrap().qop, None);
    }

    #[test]
    fn requires_the_core_parameters() {
        assert_eq!(
            parse(r#"Digest realm="r", nonce="n", uri="/a", response="00""#),
            Err(ParseError::Missing("username"))
        );
        assert_eq!(
            parse(r#"Digest username="u", realm="r", nonce="n", uri="/a""#),
            Err(ParseError::Missing("response"))
        );
        assert_eq!(
            parse(r#"Digest username="u", realm="r", nonce="n", uri="/a", response="zz""#),
            Err(ParseError::Invalid("response"))
        );
    }

    #[test]
    fn bounds_size_and_parameter_count() {
        let huge = format!("Digest username=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(Authorization::parse(&huge), Err(ParseError::TooLong));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            Authorization::parse(&format!("Digest {}", many.join(","))),
            Err(ParseError::TooManyParams)
        );
    }

    /// Counts this thread's allocations, to show that a clean header parses
    /// without any.
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            pub static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
        }

        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                ALLOCATIONS.with(|n| n.set(n.get() + 1));
                // SAFETY: forwarded unchanged to the system allocator.
                unsafe { System.alloc(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: `ptr` came from `alloc` above, i.e. from `System`.
                unsafe { System.dealloc(ptr, layout) }
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;
    }

    fn allocations_of(f: impl FnOnce()) -> usize {
        let before = counting::ALLOCATIONS.with(|n| n.get());
        f();
        counting::ALLOCATIONS.with(|n| n.get()) - before
    }

    #[test]
    fn a_clean_header_parses_without_allocating() {
        let clean = format!(
            "Digest {BASE}, algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\", opaque=\"o\""
        );
        let n = allocations_of(|| {
            let a = parse(&clean).unwrap();
            assert!(matches!(a.username, Cow::Borrowed("Mufasa")));
            std::hint::black_box(a);
        });
        // BASE's response has upper-case hex: lower-casing it is the one copy.
        assert_eq!(n, 1);
        let lower = clean.replace("ABCDEF01", "abcdef01");
        assert_eq!(allocations_of(|| drop(parse(&lower).unwrap())), 0);
        let escaped = lower.replace("\"Mufasa\"", r#""Mu\\fasa""#);
        assert_eq!(allocations_of(|| drop(parse(&escaped).unwrap())), 1);
    }
}
