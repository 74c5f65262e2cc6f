//! The client side: parse a `WWW-Authenticate: Digest` challenge and answer
//! it. Used by the load generator, the tests and the fuzz targets; handy for
//! apps that call Digest-protected services.
//!
//! ```
//! use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
//!
//! let challenge = ClientChallenge::parse(
//!     r#"Digest realm="api", qop="auth", algorithm=SHA-256, nonce="abc""#,
//! ).unwrap().unwrap();
//! let mut client = DigestClient::new("alice", "token", challenge);
//! let first = client.authorization("GET", "/me");
//! assert!(first.contains("nc=00000001"));
//! assert!(client.authorization("GET", "/me").contains("nc=00000002"));
//! ```

use rand::RngCore;

use super::algorithm::Algorithm;
use super::digest;
use super::grammar::{self, Quoted};
use super::header::{ParseError, Qop, QopParams};

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// The offered qop values (empty: RFC 2069).
    pub qop: Vec<Qop>,
    /// `stale=true`.
    pub stale: bool,
    /// `userhash=true`.
    pub userhash: bool,
}

impl ClientChallenge {
    /// Parses one `WWW-Authenticate` value; `Ok(None)` for another scheme.
    pub fn parse(value: &str) -> Result<Option<ClientChallenge>, ParseError> {
        let Some(rest) = grammar::digest_params(value) else {
            return Ok(None);
        };
        let mut realm = None;
        let mut nonce = None;
        let mut challenge = ClientChallenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: Vec::new(),
            stale: false,
            userhash: false,
        };
        for param in grammar::params(rest) {
            let (name, v) = param?;
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v.into_owned()),
                "nonce" => nonce = Some(v.into_owned()),
                "opaque" => challenge.opaque = Some(v.into_owned()),
                "algorithm" => {
                    challenge.algorithm = v.parse().map_err(|_| ParseError::Invalid("algorithm"))?
                }
                "qop" => {
                    challenge.qop = v.split(',').filter_map(|q| q.trim().parse().ok()).collect();
                }
                "stale" => challenge.stale = v.eq_ignore_ascii_case("true"),
                "userhash" => challenge.userhash = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        challenge.realm = realm.ok_or(ParseError::Missing("realm"))?;
        challenge.nonce = nonce.ok_or(ParseError::Missing("nonce"))?;
        Ok(Some(challenge))
    }
}

/// What one answer to a challenge is made of; [`DigestClient`] fills it in.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// The username (plain; hashed here when `userhash`).
    pub username: &'a str,
    /// The secret.
    pub password: &'a str,
    /// The challenge answered.
    pub challenge: &'a ClientChallenge,
    /// The method.
    pub method: &'a str,
    /// The `uri` to sign and send.
    pub uri: &'a str,
    /// The qop to use; `None` answers RFC 2069-style.
    pub qop: Option<Qop>,
    /// The nonce count.
    pub nc: u32,
    /// The client nonce.
    pub cnonce: &'a str,
    /// The body, for `auth-int`.
    pub body: &'a [u8],
    /// Send `username` as `H(username:realm)` with `userhash=true`.
    pub userhash: bool,
}

impl Answer<'_> {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        let c = self.challenge;
        let ha1 = digest::ha1(c.algorithm, self.username, &c.realm, self.password);
        self.header_with_ha1(&ha1)
    }

    /// As [`header`](Self::header), with `H(username:realm:password)`
    /// already computed (a session on one challenge computes it once).
    fn header_with_ha1(&self, ha1: &str) -> String {
        let c = self.challenge;
        let alg = c.algorithm;
        let qop = self
            .qop
            .map(|kind| QopParams::counted(kind, self.nc, self.cnonce));
        let ha1 = digest::session_ha1(alg, ha1, &c.nonce, Some(self.cnonce));
        let body_hash = (self.qop == Some(Qop::AuthInt)).then(|| alg.hash_digest(self.body));
        let response = digest::response(
            alg,
            &ha1,
            &c.nonce,
            self.method,
            self.uri,
            qop.as_ref(),
            body_hash.as_deref().unwrap_or(""),
        );
        let username = if self.userhash {
            digest::userhash(alg, self.username, &c.realm)
        } else {
            self.username.to_owned()
        };
        // Written into one buffer; `fmt::Write` for a String cannot fail.
        use std::fmt::Write;
        let mut h = String::with_capacity(256);
        let _ = write!(
            h,
            "Digest username={}, realm={}, nonce={}, uri={}, algorithm={}, response=\"{}\"",
            Quoted(&username),
            Quoted(&c.realm),
            Quoted(&c.nonce),
            Quoted(self.uri),
            alg,
            response
        );
        if let Some(q) = &qop {
            let _ = write!(
                h,
                ", qop={}, nc={}, cnonce={}",
                q.kind.as_str(),
                q.nc_raw,
                Quoted(&q.cnonce)
            );
        }
        if let Some(o) = &c.opaque {
            let _ = write!(h, ", opaque={}", Quoted(o));
        }
        if self.userhash {
            h.push_str(", userhash=true");
        }
        h
    }
}

/// A client session on one nonce: counts `nc` up and picks a fresh cnonce
/// per request, as browsers and curl do.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    challenge: ClientChallenge,
    /// HA1 for the challenge's algorithm and realm: the same for every nonce.
    ha1: String,
    nc: u32,
}

impl DigestClient {
    /// A session answering `challenge`.
    pub fn new(username: &str, password: &str, challenge: ClientChallenge) -> DigestClient {
        let ha1 = digest::ha1(challenge.algorithm, username, &challenge.realm, password);
        DigestClient {
            username: username.into(),
            password: password.into(),
            challenge,
            ha1,
            nc: 0,
        }
    }

    /// The challenge being answered.
    pub fn challenge(&self) -> &ClientChallenge {
        &self.challenge
    }

    /// Switches to a new nonce (from `nextnonce` or a `stale=true`
    /// challenge), restarting the count.
    pub fn set_nonce(&mut self, nonce: &str) {
        self.challenge.nonce = nonce.into();
        self.nc = 0;
    }

    /// The next `Authorization` header for `method` and `uri`, with
    /// `qop=auth` when offered.
    pub fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nc = self.nc.wrapping_add(1);
        let mut cnonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut cnonce);
        let cnonce = hex::encode(cnonce);
        let qop = self.challenge.qop.contains(&Qop::Auth).then_some(Qop::Auth);
        Answer {
            username: &self.username,
            password: &self.password,
            challenge: &self.challenge,
            method,
            uri,
            qop,
            nc: self.nc,
            cnonce: &cnonce,
            body: b"",
            userhash: false,
        }
        .header_with_ha1(&self.ha1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Authorization;

    #[test]
    fn parses_a_challenge_with_a_qop_list() {
        let c = ClientChallenge::parse(
            r#"Digest realm="r", qop="auth, auth-int", algorithm=MD5-sess, nonce="n", opaque="o", stale=TRUE, userhash=true"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.qop, [Qop::Auth, Qop::AuthInt]);
        assert_eq!(c.algorithm, Algorithm::Md5Sess);
        assert!(c.stale && c.userhash);
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert_eq!(ClientChallenge::parse("Basic realm=\"r\""), Ok(None));
    }

    #[test]
    fn answers_parse_back_on_the_server_side() {
        let c = ClientChallenge::parse(r#"Digest realm="r", qop="auth", nonce="n""#)
            .unwrap()
            .unwrap();
        let mut client = DigestClient::new("Mu\"fasa", "pw", c);
        let header = client.authorization("GET", "/a?b");
        let a = Authorization::parse(&header).unwrap().unwrap();
        assert_eq!(a.username, "Mu\"fasa");
        assert_eq!(a.uri, "/a?b");
        assert_eq!(a.qop.unwrap().nc, 1);
    }
}
