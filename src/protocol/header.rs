//! Parsing the `Authorization: Digest ...` request header (RFC 7616 section 3.4).
//!
//! The parser is strict where ambiguity would be dangerous (a parameter given
//! twice is refused, not resolved by first- or last-wins) and lenient where
//! real clients differ: any case in the scheme and parameter names, quoted or
//! bare values (`algorithm="MD5"` from Python requests), escaped quotes, extra
//! whitespace, unknown parameters.
//!
//! ```
//! use rocket_digest_auth::protocol::{Authorization, Algorithm, Qop};
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

use super::algorithm::Algorithm;

/// Longest `Authorization` header accepted. Real Digest headers are a few
/// hundred bytes plus the request-target; this bounds parse work and memory.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// Most parameters accepted in one header.
pub const MAX_PARAMS: usize = 32;

/// Longest `cnonce` accepted: it is stored once per request for replay checks.
pub const MAX_CNONCE_LEN: usize = 256;

/// The quality of protection a request claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QopKind {
    /// `auth`: authentication of method and request-target.
    Auth,
    /// `auth-int`: also the hash of the request body.
    AuthInt,
}

impl QopKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }
}

impl FromStr for QopKind {
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

/// The `qop`, `nc` and `cnonce` triple that RFC 2617 and 7616 clients send
/// together (RFC 2069 clients send none of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qop {
    /// The chosen quality of protection.
    pub kind: QopKind,
    /// The nonce count, parsed from its 8 hex digits.
    pub nc: u32,
    /// The `nc` exactly as sent (its case matters for the response hash).
    pub nc_raw: String,
    /// The client nonce.
    pub cnonce: String,
}

/// A parsed `Authorization: Digest` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `username`, or `username*` decoded, or the userhash when [`userhash`](Self::userhash) is set.
    pub username: String,
    /// Whether `username` is a userhash (RFC 7616 3.4.4).
    pub userhash: bool,
    /// `realm`.
    pub realm: String,
    /// `nonce`, the server nonce being answered.
    pub nonce: String,
    /// `uri`, the request-target the client signed.
    pub uri: String,
    /// `response`, lower-cased hex.
    pub response: String,
    /// `algorithm`, MD5 when absent (RFC 7616 3.4).
    pub algorithm: Algorithm,
    /// `opaque`, when sent.
    pub opaque: Option<String>,
    /// `qop`, `nc` and `cnonce`; `None` for an RFC 2069 request.
    pub qop: Option<Qop>,
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

impl Authorization {
    /// Parses a full header value. `Ok(None)` means another scheme (or none):
    /// the caller answers with a challenge, not a 400.
    pub fn parse(header: &str) -> Result<Option<Authorization>, ParseError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(ParseError::TooLong);
        }
        let header = header.trim_start_matches([' ', '\t']);
        let (scheme, rest) = match header.find([' ', '\t']) {
            Some(i) => (&header[..i], &header[i..]),
            None => (header, ""),
        };
        if !scheme.eq_ignore_ascii_case("digest") {
            return Ok(None);
        }
        let params = parse_params(rest)?;
        Self::from_params(params).map(Some)
    }

    fn from_params(params: Vec<Param<'_>>) -> Result<Authorization, ParseError> {
        let mut p = Params(params);
        let username = p.take("username");
        let username_ext = p.take("username*");
        let userhash = match p.take("userhash") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(ParseError::Invalid("userhash")),
        };
        let username = match (username, username_ext) {
            (Some(u), None) => u.into_owned(),
            (None, Some(ext)) if !userhash => decode_ext_value(&ext)?,
            (None, None) => return Err(ParseError::Missing("username")),
            // RFC 7616 3.4.4: never both, and username* never with userhash.
            _ => return Err(ParseError::Invalid("username*")),
        };
        let realm = p.take("realm").ok_or(ParseError::Missing("realm"))?;
        let nonce = p.take("nonce").ok_or(ParseError::Missing("nonce"))?;
        let uri = p.take("uri").ok_or(ParseError::Missing("uri"))?;
        let response = p.take("response").ok_or(ParseError::Missing("response"))?;
        if response.is_empty() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::Invalid("response"));
        }
        let algorithm = match p.take("algorithm") {
            None => Algorithm::Md5,
            Some(a) => a.parse().map_err(|_| ParseError::Invalid("algorithm"))?,
        };
        let opaque = p.take("opaque").map(Cow::into_owned);
        let qop = match (p.take("qop"), p.take("nc"), p.take("cnonce")) {
            (None, None, None) => None,
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
                Some(Qop {
                    kind,
                    nc,
                    nc_raw: nc_raw.into_owned(),
                    cnonce: cnonce.into_owned(),
                })
            }
            (None, _, _) => return Err(ParseError::Missing("qop")),
            (_, None, _) => return Err(ParseError::Missing("nc")),
            (_, _, None) => return Err(ParseError::Missing("cnonce")),
        };
        Ok(Authorization {
            username,
            userhash,
            realm: realm.into_owned(),
            nonce: nonce.into_owned(),
            uri: uri.into_owned(),
            response: response.to_ascii_lowercase(),
            algorithm,
            opaque,
            qop,
        })
    }
}

struct Params<'a>(Vec<Param<'a>>);

impl<'a> Params<'a> {
    fn take(&mut self, name: &str) -> Option<Cow<'a, str>> {
        let i = self.0.iter().position(|(n, _)| n == name)?;
        Some(self.0.swap_remove(i).1)
    }
}

/// One `name=value` of a header: the lower-cased name and the unescaped value.
pub(crate) type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Splits `name=value, name="quoted \"value\""` into lower-cased names and
/// unescaped values, refusing duplicates. Both borrow from `s` unless they
/// had to change (upper-case names, escaped values): a request's header is
/// parsed without a copy per parameter.
pub(crate) fn parse_params(s: &str) -> Result<Vec<Param<'_>>, ParseError> {
    let bytes = s.as_bytes();
    let mut out: Vec<Param<'_>> = Vec::with_capacity(12);
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        // Any run of separators between parameters (RFC 7230 #rule allows empty elements).
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b',') {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && is_tchar(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(ParseError::Syntax(i));
        }
        let name = &s[start..i];
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        skip_ws(&mut i);
        if i == bytes.len() || bytes[i] != b'=' {
            return Err(ParseError::Syntax(i));
        }
        i += 1;
        skip_ws(&mut i);
        let value = if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            let vstart = i;
            // Stays borrowed until the first escape.
            let mut v: Option<String> = None;
            let mut run = i;
            loop {
                match bytes.get(i) {
                    None => return Err(ParseError::Syntax(i)),
                    Some(b'"') => {
                        let value = match v.take() {
                            None => Cow::Borrowed(&s[vstart..i]),
                            Some(mut v) => {
                                v.push_str(&s[run..i]);
                                Cow::Owned(v)
                            }
                        };
                        i += 1;
                        break value;
                    }
                    Some(b'\\') => {
                        let v = v.get_or_insert_with(String::new);
                        v.push_str(&s[run..i]);
                        // The escaped character may be multi-byte UTF-8: copy it whole.
                        let next = s[i + 1..].chars().next().ok_or(ParseError::Syntax(i))?;
                        v.push(next);
                        i += 1 + next.len_utf8();
                        run = i;
                    }
                    Some(_) => i += 1,
                }
            }
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
        if out.iter().any(|(n, _)| *n == name) {
            return Err(ParseError::Duplicate(name.into_owned()));
        }
        if out.len() == MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        out.push((name, value));
    }
    Ok(out)
}

/// RFC 7230 `tchar`, plus `/` which some clients leave unquoted in `uri`
/// and in base64 nonces.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:?@".contains(&b)
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

    fn parse(h: &str) -> Result<Authorization, ParseError> {
        Authorization::parse(h).map(|o| o.expect("digest"))
    }

    const BASE: &str = r#"username="Mufasa", realm="r", nonce="n", uri="/a", response="ABCDEF01""#;

    #[test]
    fn other_schemes_are_not_digest() {
        assert_eq!(Authorization::parse("Basic QWxhZGRpbjpvcGVu"), Ok(None));
        assert_eq!(Authorization::parse(""), Ok(None));
        assert_eq!(Authorization::parse("Digestive x=1"), Ok(None));
    }

    #[test]
    fn tolerates_case_quotes_and_whitespace() {
        let a = parse(&format!(
            "dIgEsT  {BASE} ,  ALGORITHM=\"sha-256\",QOP=\"auth\" ,NC=0000000A, cnonce=abc, extra=\"ignored\""
        ))
        .unwrap();
        assert_eq!(a.algorithm, Algorithm::Sha256);
        assert_eq!(a.response, "abcdef01");
        let q = a.qop.unwrap();
        assert_eq!(
            (q.kind, q.nc, q.nc_raw.as_str()),
            (QopKind::Auth, 10, "0000000A")
        );
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
}
