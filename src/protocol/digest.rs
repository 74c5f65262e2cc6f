//! The hashes of RFC 7616 section 3.4: HA1, HA2, `response` and `rspauth`.
//!
//! ```
//! use rocket_digest_auth::protocol::{digest, Algorithm};
//!
//! // RFC 2617 section 3.5.
//! let ha1 = digest::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
//! assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
//! ```

use std::borrow::Cow;

use super::algorithm::{Algorithm, HashFunction, Hasher, HexDigest};
use super::header::{Qop, QopParams};

/// `H(username ":" realm ":" secret)`: the password-equivalent a server may
/// store. The one place this formula is written.
pub fn ha1(hash: impl Into<HashFunction>, username: &str, realm: &str, secret: &str) -> String {
    ha1_digest(hash, username, realm, secret)
        .as_str()
        .to_owned()
}

/// [`ha1`] on the stack.
pub fn ha1_digest(
    hash: impl Into<HashFunction>,
    username: &str,
    realm: &str,
    secret: &str,
) -> HexDigest {
    hash.into().hex_digest(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        secret.as_bytes(),
    ])
}

/// `H(username ":" realm)`, what a client sends as `username` with
/// `userhash=true`. The one place this formula is written.
pub fn userhash(hash: impl Into<HashFunction>, username: &str, realm: &str) -> String {
    hash.into()
        .hex(&[username.as_bytes(), b":", realm.as_bytes()])
}

/// The HA1 that enters the response: for `-sess` algorithms
/// `H(HA1 ":" nonce ":" cnonce)`, otherwise `ha1` unchanged (borrowed).
pub fn session_ha1<'h>(
    alg: Algorithm,
    ha1: &'h str,
    nonce: &str,
    cnonce: Option<&str>,
) -> Cow<'h, str> {
    match (alg.is_session(), cnonce) {
        (true, Some(cnonce)) => Cow::Owned(alg.hash_function().hex(&[
            ha1.as_bytes(),
            b":",
            nonce.as_bytes(),
            b":",
            cnonce.as_bytes(),
        ])),
        _ => Cow::Borrowed(ha1),
    }
}

/// The request's `response` for the given effective HA1 (see
/// [`session_ha1`]). `body_hash` is `H(entity-body)` and is used only for
/// `auth-int`.
pub fn response(
    alg: Algorithm,
    effective_ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<&QopParams<'_>>,
    body_hash: &str,
) -> HexDigest {
    KeyedDigest::new(alg, effective_ha1, nonce, qop).response(method, uri, body_hash)
}

/// The `rspauth` of `Authentication-Info`: the response with an empty
/// method. Under `auth-int` its A2 would cover the response body, which is
/// not known when the header is made, so it is computed as for `auth` (the
/// `qop` echoed is still the request's).
pub fn rspauth(
    alg: Algorithm,
    effective_ha1: &str,
    nonce: &str,
    uri: &str,
    qop: Option<&QopParams<'_>>,
) -> HexDigest {
    KeyedDigest::new(alg, effective_ha1, nonce, qop).rspauth(uri)
}

/// An HA1 and the hash state after hashing it, kept together: every
/// response under this HA1 starts from the state.
#[derive(Clone)]
pub(crate) struct HashedHa1 {
    hex: HexDigest,
    absorbed: Hasher,
}

impl HashedHa1 {
    pub(crate) fn new(hash: HashFunction, hex: HexDigest) -> HashedHa1 {
        let mut absorbed = Hasher::new(hash);
        absorbed.update(hex.as_bytes());
        HashedHa1 { hex, absorbed }
    }

    /// The HA1 in hex.
    pub(crate) fn hex(&self) -> &HexDigest {
        &self.hex
    }
}

/// `KD(HA1, nonce ":" nc ":" cnonce ":" qop ":" HA2)`, or RFC 2069's
/// `KD(HA1, nonce ":" HA2)` without a qop, with everything before the qop
/// hashed once: the request's `response` and the `rspauth` share it.
///
/// ```
/// use rocket_digest_auth::protocol::{digest, Algorithm, Qop, QopParams};
///
/// // RFC 2617 section 3.5.
/// let qop = QopParams::counted(Qop::Auth, 1, "0a4f113b");
/// let kd = digest::KeyedDigest::new(Algorithm::Md5, "939e7578ed9e3c518a452acee763bce9",
///     "dcd98b7102dd2f0e8b11d0f600bfb0c093", Some(&qop));
/// assert_eq!(kd.response("GET", "/dir/index.html", ""), "6629fae49393a05397450978507c4ef1");
/// assert_eq!(kd.rspauth("/dir/index.html"), "376602cfd2f4e8e5e78b948a85263e85");
/// ```
#[derive(Clone)]
pub struct KeyedDigest {
    hash: HashFunction,
    kind: Option<Qop>,
    prefix: Hasher,
}

impl std::fmt::Debug for KeyedDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedDigest")
            .field("hash", &self.hash)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl KeyedDigest {
    /// Hashes `HA1 ":" nonce ":"` and, with a qop, `nc ":" cnonce ":"`.
    pub fn new(
        alg: Algorithm,
        effective_ha1: &str,
        nonce: &str,
        qop: Option<&QopParams<'_>>,
    ) -> KeyedDigest {
        let mut prefix = Hasher::new(alg.hash_function());
        prefix.update(effective_ha1.as_bytes());
        KeyedDigest::continued(prefix, nonce, qop)
    }

    /// As [`new`](Self::new) for a non-`-sess` algorithm, from the state
    /// after HA1 (for SHA-256 HA1 is one whole block, not hashed again).
    pub(crate) fn after_ha1(
        ha1: &HashedHa1,
        nonce: &str,
        qop: Option<&QopParams<'_>>,
    ) -> KeyedDigest {
        KeyedDigest::continued(ha1.absorbed.clone(), nonce, qop)
    }

    /// The prefix after HA1: `":" nonce ":"` and the qop's part.
    fn continued(mut prefix: Hasher, nonce: &str, qop: Option<&QopParams<'_>>) -> KeyedDigest {
        let hash = prefix.function();
        match qop {
            Some(q) => prefix.update_all(&[
                b":",
                nonce.as_bytes(),
                b":",
                q.nc_raw.as_bytes(),
                b":",
                q.cnonce.as_bytes(),
                b":",
            ]),
            None => prefix.update_all(&[b":", nonce.as_bytes(), b":"]),
        }
        KeyedDigest {
            hash,
            kind: qop.map(|q| q.kind),
            prefix,
        }
    }

    /// The request's `response` (see [`response`]).
    pub fn response(&self, method: &str, uri: &str, body_hash: &str) -> HexDigest {
        let ha2 = match self.kind {
            Some(Qop::AuthInt) => self.hash.hex_digest(&[
                method.as_bytes(),
                b":",
                uri.as_bytes(),
                b":",
                body_hash.as_bytes(),
            ]),
            _ => self
                .hash
                .hex_digest(&[method.as_bytes(), b":", uri.as_bytes()]),
        };
        self.finish(self.kind, &ha2)
    }

    /// The `rspauth` (see [`rspauth`]).
    pub fn rspauth(&self, uri: &str) -> HexDigest {
        let ha2 = self.hash.hex_digest(&[b":", uri.as_bytes()]);
        self.finish(self.kind.map(|_| Qop::Auth), &ha2)
    }

    fn finish(&self, kind: Option<Qop>, ha2: &HexDigest) -> HexDigest {
        let mut h = self.prefix.clone();
        match kind {
            Some(kind) => h.update_all(&[kind.as_str().as_bytes(), b":", ha2.as_bytes()]),
            None => h.update(ha2.as_bytes()),
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    //! The checked vectors of `digest-facts.md`.
    use super::*;

    fn auth<'a>(nc: &'a str, cnonce: &'a str) -> QopParams<'a> {
        QopParams {
            kind: Qop::Auth,
            nc: u32::from_str_radix(nc, 16).unwrap(),
            nc_raw: Cow::Borrowed(nc),
            cnonce: Cow::Borrowed(cnonce),
        }
    }

    #[test]
    fn rfc2617_section_3_5() {
        let alg = Algorithm::Md5;
        let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
        let ha1 = ha1(alg, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(
            alg.hash(b"GET:/dir/index.html"),
            "39aff3a2bab6126f332b942af96d3366"
        );
        let q = auth("00000001", "0a4f113b");
        let q = Some(&q);
        assert_eq!(
            response(alg, &ha1, nonce, "GET", "/dir/index.html", q, ""),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(
            rspauth(alg, &ha1, nonce, "/dir/index.html", q),
            "376602cfd2f4e8e5e78b948a85263e85"
        );
    }

    #[test]
    fn rfc2069_form() {
        let alg = Algorithm::Md5;
        let ha1 = ha1(alg, "Mufasa", "testrealm@host.com", "CircleOfLife");
        let nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
        assert_eq!(
            response(alg, &ha1, nonce, "GET", "/dir/index.html", None, ""),
            "1949323746fe6a43ef61f9606e7febea"
        );
    }

    #[test]
    fn rfc7616_section_3_9_1() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let cases = [
            (
                Algorithm::Md5,
                "3d78807defe7de2157e2b0b6573a855f",
                "39aff3a2bab6126f332b942af96d3366",
                "8ca523f5e9506fed4657c9700eebdbec",
                "9b712497bc9f91499fbcca1dfc5f09a5",
            ),
            (
                Algorithm::Sha256,
                "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232",
                "9a3fdae9a622fe8de177c24fa9c070f2b181ec85e15dcbdc32e10c82ad450b04",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
                "86d3b25618d41854ca5039a5d7e53ff6355d5134a9b1fb088a78ac3c462195a0",
            ),
        ];
        for (alg, want_ha1, want_ha2, want_response, want_rspauth) in cases {
            let ha1 = ha1(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            assert_eq!(ha1, want_ha1);
            assert_eq!(alg.hash(b"GET:/dir/index.html"), want_ha2);
            let q = auth("00000001", cnonce);
            let q = Some(&q);
            assert_eq!(
                response(alg, &ha1, nonce, "GET", "/dir/index.html", q, ""),
                want_response
            );
            assert_eq!(
                rspauth(alg, &ha1, nonce, "/dir/index.html", q),
                want_rspauth
            );
        }
    }

    #[test]
    fn rfc7616_section_3_9_2_corrected_sha512_256() {
        let alg = Algorithm::Sha512_256;
        let user = "J\u{e4}s\u{f8}n Doe";
        assert_eq!(user.as_bytes(), b"J\xc3\xa4s\xc3\xb8n Doe");
        let realm = "api@example.org";
        assert_eq!(
            userhash(alg, user, realm),
            "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
        );
        let ha1 = ha1(alg, user, realm, "Secret, or not?");
        assert_eq!(
            ha1,
            "2d3d9f12c9f3d30011259dc5fecee005ae24de40e3e1f61806d03e65f1e6024f"
        );
        assert_eq!(
            alg.hash(b"GET:/doe.json"),
            "1734b070bafdeb53ae52f93659427bb4bc545e2ef4d5e74ba247dad4861b4634"
        );
        let q = auth("00000001", "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v");
        let q = Some(&q);
        assert_eq!(
            response(
                alg,
                &ha1,
                "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
                "GET",
                "/doe.json",
                q,
                ""
            ),
            "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5"
        );
    }

    #[test]
    fn the_state_after_ha1_keys_the_same_digests() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let q = auth("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
        for alg in [Algorithm::Md5, Algorithm::Sha256, Algorithm::Sha512_256] {
            let hex = ha1_digest(alg, "Mufasa", "http-auth@example.org", "Circle of Life");
            let hashed = HashedHa1::new(alg.hash_function(), hex);
            assert_eq!(*hashed.hex(), hex);
            for qop in [Some(&q), None] {
                let fresh = KeyedDigest::new(alg, &hex, nonce, qop);
                let kept = KeyedDigest::after_ha1(&hashed, nonce, qop);
                let (method, uri) = ("GET", "/dir/index.html");
                assert_eq!(
                    kept.response(method, uri, ""),
                    fresh.response(method, uri, "")
                );
                assert_eq!(kept.rspauth(uri), fresh.rspauth(uri));
            }
        }
    }

    #[test]
    fn sess_variant_rehashes_ha1_with_the_nonces() {
        let alg = Algorithm::Md5Sess;
        let ha1 = "939e7578ed9e3c518a452acee763bce9";
        assert_eq!(
            session_ha1(alg, ha1, "n", Some("c")),
            Algorithm::Md5.hash(b"939e7578ed9e3c518a452acee763bce9:n:c")
        );
        assert_eq!(session_ha1(Algorithm::Md5, ha1, "n", Some("c")), ha1);
    }

    #[test]
    fn auth_int_covers_the_body_hash() {
        let alg = Algorithm::Sha256;
        let q = QopParams::counted(Qop::AuthInt, 1, "c");
        let q = Some(&q);
        let empty = alg.hash(b"");
        let a = response(alg, "h", "n", "POST", "/", q, &empty);
        let b = response(alg, "h", "n", "POST", "/", q, &alg.hash(b"x"));
        assert_ne!(a, b);
        // rspauth is computed as for auth, whatever the request's qop.
        let as_auth = QopParams::counted(Qop::Auth, 1, "c");
        assert_eq!(
            rspauth(alg, "h", "n", "/", q),
            response(alg, "h", "n", "", "/", Some(&as_auth), "")
        );
        let ha2 = alg.hash(format!("POST:/:{empty}").as_bytes());
        assert_eq!(
            a,
            alg.hash(format!("h:n:00000001:c:auth-int:{ha2}").as_bytes())
        );
    }
}
