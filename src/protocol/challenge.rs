//! Building the `WWW-Authenticate` challenge and the `Authentication-Info`
//! header of RFC 7616 sections 3.3 and 3.5.
//!
//! ```
//! use rocket_digest_auth::protocol::{Algorithm, Challenge, Qop};
//!
//! let c = Challenge {
//!     realm: "api",
//!     domain: None,
//!     nonce: "abc",
//!     opaque: None,
//!     algorithm: Algorithm::Sha256,
//!     qop: &[Qop::Auth],
//!     stale: true,
//!     userhash: false,
//! };
//! assert_eq!(
//!     c.to_string(),
//!     r#"Digest realm="api", qop="auth", algorithm=SHA-256, nonce="abc", stale=true, charset=UTF-8"#
//! );
//! ```

use std::fmt::{self, Write};

use super::algorithm::Algorithm;
use super::grammar::{self, Quoted};
use super::header::{ParseError, Qop};

/// One `WWW-Authenticate: Digest` challenge; `Display` renders the header value.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: &'a str,
    /// `domain`: space-separated URIs of the protection space, when configured.
    pub domain: Option<&'a str>,
    /// A fresh server nonce.
    pub nonce: &'a str,
    /// `opaque`, when configured.
    pub opaque: Option<&'a str>,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// The qop values offered; empty offers none (RFC 2069 only).
    pub qop: &'a [Qop],
    /// `stale=true`: the previous nonce was good but expired; retry without re-prompting.
    pub stale: bool,
    /// `userhash=true`: the client may hash the username.
    pub userhash: bool,
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest realm={}", Quoted(self.realm))?;
        if let Some(domain) = self.domain {
            write!(f, ", domain={}", Quoted(domain))?;
        }
        if !self.qop.is_empty() {
            f.write_str(", qop=\"")?;
            for (i, q) in self.qop.iter().enumerate() {
                // No space after the comma: Perl's LWP and GNU wget parse the
                // list only without one (RFC 7616 allows either).
                if i > 0 {
                    f.write_char(',')?;
                }
                f.write_str(q.as_str())?;
            }
            f.write_char('"')?;
        }
        write!(
            f,
            ", algorithm={}, nonce={}",
            self.algorithm,
            Quoted(self.nonce)
        )?;
        if let Some(opaque) = self.opaque {
            write!(f, ", opaque={}", Quoted(opaque))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        f.write_str(", charset=UTF-8")?;
        if self.userhash {
            f.write_str(", userhash=true")?;
        }
        Ok(())
    }
}

/// The `Authentication-Info` header sent with a successful response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationInfo {
    /// `rspauth`: proves the server knows the secret too.
    pub rspauth: String,
    /// `qop`, `nc`, `cnonce` echoed from the request (absent for RFC 2069).
    pub qop: Option<(Qop, String, String)>,
    /// `nextnonce`: a fresh nonce when the current one is near its end.
    pub nextnonce: Option<String>,
}

impl fmt::Display for AuthenticationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header_value())
    }
}

impl AuthenticationInfo {
    /// The header value, written into one buffer (what `Display` writes).
    pub fn header_value(&self) -> String {
        let qop = self
            .qop
            .as_ref()
            .map(|(kind, nc, cnonce)| (*kind, nc.as_str(), cnonce.as_str()));
        AuthenticationInfo::value_of(&self.rspauth, qop, self.nextnonce.as_deref())
    }

    /// The header value of these parts, written into one buffer of the
    /// right size: what the server sends, without building the struct.
    pub(crate) fn value_of(
        rspauth: &str,
        qop: Option<(Qop, &str, &str)>,
        nextnonce: Option<&str>,
    ) -> String {
        // The size without escapes: a client's cnonce could need some, but
        // none seen does.
        let quoted = |s: &str| s.len() + 2;
        let len = "rspauth=".len()
            + quoted(rspauth)
            + qop.map_or(0, |(kind, nc, cnonce)| {
                ", qop=, nc=, cnonce=".len() + kind.as_str().len() + nc.len() + quoted(cnonce)
            })
            + nextnonce.map_or(0, |next| ", nextnonce=".len() + quoted(next));
        let mut out = String::with_capacity(len);
        out.push_str("rspauth=");
        grammar::push_quoted(&mut out, rspauth);
        if let Some((kind, nc, cnonce)) = qop {
            out.push_str(", qop=");
            out.push_str(kind.as_str());
            out.push_str(", nc=");
            out.push_str(nc);
            out.push_str(", cnonce=");
            grammar::push_quoted(&mut out, cnonce);
        }
        if let Some(next) = nextnonce {
            out.push_str(", nextnonce=");
            grammar::push_quoted(&mut out, next);
        }
        out
    }
}

impl AuthenticationInfo {
    /// Parses an `Authentication-Info` value, as a client checks it:
    /// `rspauth` is required, `qop`, `nc` and `cnonce` come together or not
    /// at all; other parameters are ignored.
    pub fn parse(value: &str) -> Result<AuthenticationInfo, ParseError> {
        let (mut rspauth, mut qop, mut nc, mut cnonce, mut nextnonce) =
            (None, None, None, None, None);
        for param in grammar::params(value) {
            let (name, value) = param?;
            let slot = match name.to_ascii_lowercase().as_str() {
                "rspauth" => &mut rspauth,
                "qop" => &mut qop,
                "nc" => &mut nc,
                "cnonce" => &mut cnonce,
                "nextnonce" => &mut nextnonce,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        let qop = match (qop, nc, cnonce) {
            (None, None, None) => None,
            (Some(q), Some(nc), Some(cnonce)) => Some((q.parse()?, nc, cnonce)),
            (None, _, _) => return Err(ParseError::Missing("qop")),
            (_, None, _) => return Err(ParseError::Missing("nc")),
            (_, _, None) => return Err(ParseError::Missing("cnonce")),
        };
        Ok(AuthenticationInfo {
            rspauth: rspauth.ok_or(ParseError::Missing("rspauth"))?,
            qop,
            nextnonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Authorization;

    #[test]
    fn renders_every_parameter_and_escapes() {
        let c = Challenge {
            realm: r#"a "quoted" \ realm"#,
            domain: Some("/api /admin"),
            nonce: "n",
            opaque: Some("o"),
            algorithm: Algorithm::Md5Sess,
            qop: &[Qop::Auth, Qop::AuthInt],
            stale: false,
            userhash: true,
        };
        assert_eq!(
            c.to_string(),
            r#"Digest realm="a \"quoted\" \\ realm", domain="/api /admin", qop="auth,auth-int", algorithm=MD5-sess, nonce="n", opaque="o", charset=UTF-8, userhash=true"#
        );
    }

    #[test]
    fn the_realm_round_trips_through_our_own_parser() {
        let realm = r#"we"ird\realm"#;
        let c = Challenge {
            realm,
            domain: None,
            nonce: "n",
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: &[Qop::Auth],
            stale: false,
            userhash: false,
        };
        // A client echoes realm back the same way; reuse the challenge's quoting.
        let value = c
            .to_string()
            .replacen("Digest ", "Digest username=u, uri=/, response=00, ", 1);
        let value = value.replace(", charset=UTF-8", "");
        let value = value.replace(", qop=\"auth\"", "");
        let parsed = Authorization::parse(&value).unwrap().unwrap();
        assert_eq!(parsed.realm, realm);
    }

    #[test]
    fn authentication_info() {
        let info = AuthenticationInfo {
            rspauth: "abc".into(),
            qop: Some((Qop::Auth, "00000001".into(), "c\"n".into())),
            nextnonce: Some("next".into()),
        };
        assert_eq!(
            info.to_string(),
            r#"rspauth="abc", qop=auth, nc=00000001, cnonce="c\"n", nextnonce="next""#
        );
        assert_eq!(AuthenticationInfo::parse(&info.to_string()), Ok(info));
        let bare = AuthenticationInfo::parse(r#"rspauth="x", other=1"#).unwrap();
        assert_eq!((bare.qop, bare.nextnonce), (None, None));
        assert_eq!(
            AuthenticationInfo::parse("qop=auth, nc=00000001, cnonce=c"),
            Err(ParseError::Missing("rspauth"))
        );
        assert_eq!(
            AuthenticationInfo::parse("rspauth=x, nc=00000001"),
            Err(ParseError::Missing("qop"))
        );
    }
}
