//! Building the `WWW-Authenticate` challenge and the `Authentication-Info`
//! header of RFC 7616 sections 3.3 and 3.5.
//!
//! ```
//! use rocket_digest_auth::protocol::{Algorithm, Challenge, QopKind};
//!
//! let c = Challenge {
//!     realm: "api",
//!     domain: None,
//!     nonce: "abc",
//!     opaque: None,
//!     algorithm: Algorithm::Sha256,
//!     qop: &[QopKind::Auth],
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
use super::header::QopKind;

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
    pub qop: &'a [QopKind],
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
                if i > 0 {
                    f.write_str(", ")?;
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
    pub qop: Option<(QopKind, String, String)>,
    /// `nextnonce`: a fresh nonce when the current one is near its end.
    pub nextnonce: Option<String>,
}

impl fmt::Display for AuthenticationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rspauth={}", Quoted(&self.rspauth))?;
        if let Some((kind, nc, cnonce)) = &self.qop {
            write!(
                f,
                ", qop={}, nc={nc}, cnonce={}",
                kind.as_str(),
                Quoted(cnonce)
            )?;
        }
        if let Some(next) = &self.nextnonce {
            write!(f, ", nextnonce={}", Quoted(next))?;
        }
        Ok(())
    }
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
    use crate::protocol::Authorization;

    #[test]
    fn renders_every_parameter_and_escapes() {
        let c = Challenge {
            realm: r#"a "quoted" \ realm"#,
            domain: Some("/api /admin"),
            nonce: "n",
            opaque: Some("o"),
            algorithm: Algorithm::Md5Sess,
            qop: &[QopKind::Auth, QopKind::AuthInt],
            stale: false,
            userhash: true,
        };
        assert_eq!(
            c.to_string(),
            r#"Digest realm="a \"quoted\" \\ realm", domain="/api /admin", qop="auth, auth-int", algorithm=MD5-sess, nonce="n", opaque="o", charset=UTF-8, userhash=true"#
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
            qop: &[QopKind::Auth],
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
            qop: Some((QopKind::Auth, "00000001".into(), "c\"n".into())),
            nextnonce: Some("next".into()),
        };
        assert_eq!(
            info.to_string(),
            r#"rspauth="abc", qop=auth, nc=00000001, cnonce="c\"n", nextnonce="next""#
        );
    }
}
