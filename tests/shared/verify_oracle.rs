//! What `Verifier::verify` may answer, checked the same way by the property
//! tests (`tests/proptest_header.rs`, `#[path]`-included) and by the fuzz
//! target (`fuzz/fuzz_targets/verify_request.rs`).
//!
//! The oracle is written here independently of the crate (MD5 and SHA-256
//! straight from `md-5` and `sha2`): a request the verifier lets through
//! must be a correct answer for the one real account, computed from scratch.

use md5::Md5;
use rocket_digest_auth::protocol::{Algorithm, Authorization, Qop};
use rocket_digest_auth::verifier::{Body, RequestParts, Verified};
use rocket_digest_auth::Rejection;
use sha2::{Digest, Sha256};

/// The one account of the memory store under test, and what its verifier
/// offers.
pub struct Account<'a> {
    pub user: &'a str,
    pub token: &'a str,
    pub realm: &'a str,
    pub opaque: &'a str,
    /// The nonce the verifier issued.
    pub nonce: &'a str,
}

/// Panics unless `result`, the verdict on `parts`, is allowed: a success
/// only for a correct answer (see [`check_correct`]), never "unavailable"
/// (a memory store cannot fail) or "too many attempts" (one attempt), and
/// a refusal only when the request was not known to be correct
/// (`must_succeed`).
pub fn check_verdict(
    account: &Account<'_>,
    parts: &RequestParts<'_>,
    result: &Result<Verified, Rejection>,
    must_succeed: bool,
) {
    let header = parts.authorization.unwrap_or_default();
    match result {
        Ok(verified) => check_correct(account, header, parts, verified),
        Err(Rejection::Unavailable(e)) => panic!("the memory store cannot fail: {e}"),
        Err(Rejection::TooManyAttempts { .. }) => panic!("one attempt cannot be too many"),
        Err(rejection) => assert!(
            !must_succeed,
            "a correct answer was refused ({rejection:?}): {header:?}"
        ),
    }
}

/// Panics unless `header` is a correct answer for `account` and `parts`.
pub fn check_correct(
    account: &Account<'_>,
    header: &str,
    parts: &RequestParts<'_>,
    verified: &Verified,
) {
    let fail = |why: &str| -> ! { panic!("authenticated an incorrect answer ({why}): {header:?}") };
    let Ok(Some(a)) = Authorization::parse(header) else {
        fail("not a Digest header")
    };
    let Account {
        user,
        token,
        realm,
        opaque,
        nonce,
    } = *account;
    assert_eq!(&*verified.credential.username, user);
    if a.realm != realm || a.opaque.as_deref() != Some(opaque) || a.nonce != nonce {
        fail("realm, opaque or nonce");
    }
    let h: fn(&[u8]) -> String = match a.algorithm {
        Algorithm::Md5 => |d| hex::encode(Md5::digest(d)),
        Algorithm::Sha256 => |d| hex::encode(Sha256::digest(d)),
        _ => fail("an algorithm that was not offered"),
    };
    let expected_user = if a.userhash {
        h(format!("{user}:{realm}").as_bytes())
    } else {
        user.to_owned()
    };
    if a.username != expected_user {
        fail("username");
    }
    if reduce_absolute_form(&a.uri) != parts.target {
        fail("uri");
    }
    if reduce_absolute_form(&a.uri) != a.uri && parts.host.is_none() {
        fail("an absolute-form uri without a Host");
    }
    let ha1 = h(format!("{user}:{realm}:{token}").as_bytes());
    let ha2 = match (&a.qop, parts.body) {
        (Some(q), Body::Unread) if q.kind == Qop::AuthInt => fail("auth-int, body unread"),
        (Some(q), body) if q.kind == Qop::AuthInt => {
            let bytes: &[u8] = match body {
                Body::Bytes(b) => b,
                _ => b"",
            };
            h(format!("{}:{}:{}", parts.method, a.uri, h(bytes)).as_bytes())
        }
        _ => h(format!("{}:{}", parts.method, a.uri).as_bytes()),
    };
    let response = match &a.qop {
        None => h(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
        Some(q) => h(format!(
            "{ha1}:{nonce}:{}:{}:{}:{ha2}",
            q.nc_raw,
            q.cnonce,
            q.kind.as_str()
        )
        .as_bytes()),
    };
    if a.response != response {
        fail("response");
    }
}

/// `http://host/path?q` -> `/path?q`, `http://host` -> `/` (RFC 7230
/// absolute-form).
pub fn reduce_absolute_form(uri: &str) -> &str {
    let has = |prefix: &str| {
        uri.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let rest = if has("https://") {
        &uri[8..]
    } else if has("http://") {
        &uri[7..]
    } else {
        return uri;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
        _ => "/",
    }
}
