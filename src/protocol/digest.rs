//! The hashes of RFC 7616 section 3.4: HA1, HA2, `response` and `rspauth`.
//!
//! ```
//! use rocket_digest_auth::protocol::{digest, Algorithm};
//!
//! // RFC 2617 section 3.5.
//! let ha1 = digest::ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
//! assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
//! ```

use super::algorithm::Algorithm;
use super::header::QopKind;

/// `H(username ":" realm ":" secret)`: the password-equivalent a server may store.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, secret: &str) -> String {
    alg.hash_function().hex(&[
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        secret.as_bytes(),
    ])
}

/// The HA1 that enters the response: for `-sess` algorithms
/// `H(HA1 ":" nonce ":" cnonce)`, otherwise `ha1` unchanged.
pub fn session_ha1(alg: Algorithm, ha1: &str, nonce: &str, cnonce: Option<&str>) -> String {
    match (alg.is_session(), cnonce) {
        (true, Some(cnonce)) => alg.hash_function().hex(&[
            ha1.as_bytes(),
            b":",
            nonce.as_bytes(),
            b":",
            cnonce.as_bytes(),
        ]),
        _ => ha1.to_owned(),
    }
}

/// `H(username ":" realm)`, what a client sends as `username` with `userhash=true`.
pub fn userhash(alg: Algorithm, username: &str, realm: &str) -> String {
    alg.hash_function()
        .hex(&[username.as_bytes(), b":", realm.as_bytes()])
}

/// What the request's `qop`, `nc` and `cnonce` contribute to the response.
#[derive(Debug, Clone, Copy)]
pub struct QopParams<'a> {
    /// `auth` or `auth-int`.
    pub kind: QopKind,
    /// `nc` exactly as the client sent it.
    pub nc: &'a str,
    /// `cnonce`.
    pub cnonce: &'a str,
}

/// The response (or, with an empty `method`, the `rspauth`) for the given
/// effective HA1 (see [`session_ha1`]). `body_hash` is `H(entity-body)` and is
/// used only for `auth-int`.
pub fn response(
    alg: Algorithm,
    effective_ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<QopParams<'_>>,
    body_hash: &str,
) -> String {
    let h = alg.hash_function();
    let ha2 = match qop {
        Some(QopParams {
            kind: QopKind::AuthInt,
            ..
        }) => h.hex(&[
            method.as_bytes(),
            b":",
            uri.as_bytes(),
            b":",
            body_hash.as_bytes(),
        ]),
        _ => h.hex(&[method.as_bytes(), b":", uri.as_bytes()]),
    };
    match qop {
        Some(q) => h.hex(&[
            effective_ha1.as_bytes(),
            b":",
            nonce.as_bytes(),
            b":",
            q.nc.as_bytes(),
            b":",
            q.cnonce.as_bytes(),
            b":",
            q.kind.as_str().as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
        // RFC 2069.
        None => h.hex(&[
            effective_ha1.as_bytes(),
            b":",
            nonce.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]),
    }
}

#[cfg(test)]
mod tests {
    //! The checked vectors of `digest-facts.md`.
    use super::*;

    fn auth<'a>(nc: &'a str, cnonce: &'a str) -> Option<QopParams<'a>> {
        Some(QopParams {
            kind: QopKind::Auth,
            nc,
            cnonce,
        })
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
        assert_eq!(
            response(alg, &ha1, nonce, "GET", "/dir/index.html", q, ""),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(
            response(alg, &ha1, nonce, "", "/dir/index.html", q, ""),
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
            assert_eq!(
                response(alg, &ha1, nonce, "GET", "/dir/index.html", q, ""),
                want_response
            );
            assert_eq!(
                response(alg, &ha1, nonce, "", "/dir/index.html", q, ""),
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
        let q = Some(QopParams {
            kind: QopKind::AuthInt,
            nc: "00000001",
            cnonce: "c",
        });
        let empty = alg.hash(b"");
        let a = response(alg, "h", "n", "POST", "/", q, &empty);
        let b = response(alg, "h", "n", "POST", "/", q, &alg.hash(b"x"));
        assert_ne!(a, b);
        let ha2 = alg.hash(format!("POST:/:{empty}").as_bytes());
        assert_eq!(
            a,
            alg.hash(format!("h:n:00000001:c:auth-int:{ha2}").as_bytes())
        );
    }
}
