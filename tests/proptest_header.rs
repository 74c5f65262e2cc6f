//! Property tests of the `Authorization` header parser and of the whole
//! verification path, on hostile input:
//!
//! - any byte string as a header never panics, its parse output is bounded
//!   by its input, an oversized header is refused at once with `TooLong`;
//! - no generated header ever authenticates through `Verifier::verify`
//!   (a memory store holding a real user, real nonces);
//! - structured, valid-looking headers with random parameters never panic,
//!   and a parameter given twice is refused, never resolved;
//! - a correct answer built with `protocol::Answer` round-trips through the
//!   parser for arbitrary usernames, uris and cnonces (escape handling) and
//!   authenticates, while the same answer with a wrong token does not.
//!
//! The fuzz targets under `fuzz/` run the same ideas for much longer, with
//! the same checks (`tests/shared/`); these keep case counts modest so that
//! the suite stays fast.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "shared/parse_invariants.rs"]
mod parse_invariants;

#[path = "shared/verify_oracle.rs"]
mod verify_oracle;

#[path = "proptest_header/strategies.rs"]
mod strategies;

use parse_invariants::check_parse;
use proptest::prelude::*;
use rocket::tokio::runtime::{Builder, Runtime};
use rocket_digest_auth::protocol::{
    Algorithm, Answer, Authorization, ClientChallenge, ParseError, Qop, MAX_CNONCE_LEN,
    MAX_HEADER_LEN, MAX_PARAMS,
};
use rocket_digest_auth::store::{MemoryStore, StoreOptions};
use rocket_digest_auth::verifier::{Body, RequestParts, Verified, Verifier};
use rocket_digest_auth::{Config, Rejection};
use strategies::{param, param_value, structured_header, KNOWN};
use verify_oracle::{check_verdict, Account};

const REALM: &str = "proptest realm";
const USER: &str = "alice";
const TOKEN: &str = "3f7a9c0e5b1d2f4a6c8e0b1d3f5a7c9e1b3d5f7a";
const OPAQUE: &str = "opaque-0123";

thread_local! {
    static RUNTIME: Runtime = Builder::new_current_thread().enable_all().build().unwrap();
}

/// A verifier over a fresh memory store holding `users` (each with `TOKEN`),
/// and a nonce it just issued. Fresh per case, so failures of earlier cases
/// never trip the brute-force limiter.
fn verifier(users: &[&str]) -> (Verifier, ClientChallenge) {
    let store = Arc::new(MemoryStore::new(StoreOptions::new(REALM)));
    for user in users {
        store.insert_token(user, TOKEN);
    }
    let config = Config::default()
        .with_realm(REALM)
        .with_qop([Qop::Auth, Qop::AuthInt])
        .with_secret("a proptest secret of at least 32 bytes")
        .with_opaque(OPAQUE)
        .with_userhash(true);
    let verifier = Verifier::new(config, store.clone(), store).unwrap();
    let challenge = ClientChallenge::parse(&verifier.challenges(false)[0])
        .unwrap()
        .expect("a Digest challenge");
    (verifier, challenge)
}

/// `user` with `TOKEN`, as [`verifier`] configures it, and its nonce.
fn account<'a>(user: &'a str, challenge: &'a ClientChallenge) -> Account<'a> {
    Account {
        user,
        token: TOKEN,
        realm: REALM,
        opaque: OPAQUE,
        nonce: &challenge.nonce,
    }
}

fn verify(verifier: &Verifier, parts: &RequestParts<'_>) -> Result<Verified, Rejection> {
    RUNTIME.with(|rt| rt.block_on(verifier.verify(parts)))
}

/// Asserts a hostile request is refused with 400 or 401 and never succeeds.
fn assert_refused(result: Result<Verified, Rejection>, header: &str) {
    match result {
        Ok(v) => panic!(
            "authenticated {:?} with header {header:?}",
            v.credential.username
        ),
        Err(rejection) => {
            let status = rejection.status_code();
            assert!(
                status == 400 || status == 401,
                "{status} ({rejection}) for {header:?}"
            );
        }
    }
}

/// A quick check that an operation on hostile input is not slow: the bound
/// is hundreds of times what it takes, but far below a quadratic blow-up.
fn assert_fast(what: &str, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let took = start.elapsed();
    assert!(took < Duration::from_millis(250), "{what} took {took:?}");
}

#[test]
fn a_one_megabyte_header_is_refused_fast_with_too_long() {
    let cases = [
        format!("Digest username=\"{}\"", "a".repeat(1 << 20)),
        format!("Digest username=\"{}", "\\\"".repeat(1 << 19)),
        format!("Digest {}", ",".repeat(1 << 20)),
        "x".repeat(1 << 20),
    ];
    let (verifier, _) = verifier(&[USER]);
    for header in &cases {
        assert_fast("parsing 1 MB", || {
            assert_eq!(Authorization::parse(header), Err(ParseError::TooLong));
        });
        let result = verify(&verifier, &RequestParts::new("GET", "/", Some(header)));
        assert!(
            matches!(result, Err(Rejection::Malformed(ParseError::TooLong))),
            "{result:?}"
        );
        assert_eq!(result.unwrap_err().status_code(), 400);
    }
}

#[test]
fn worst_case_headers_within_the_limit_parse_quickly() {
    let room = MAX_HEADER_LEN - "Digest ".len();
    let cases = [
        // Longest separators run.
        format!("Digest {}", ",".repeat(room)),
        // Longest run of escapes in one quoted value, and unterminated.
        format!("Digest a=\"{}\"", "\\\"".repeat((room - 4) / 2)),
        format!("Digest a=\"{}", "\\\"".repeat((room - 3) / 2)),
        // The most parameters, each as long as fits.
        format!(
            "Digest {}",
            (0..MAX_PARAMS)
                .map(|i| format!("p{i:02}={}", "v".repeat(room / MAX_PARAMS - 6)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        // Far too many short parameters.
        format!(
            "Digest {}",
            (0..room / 8)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        // Multi-byte characters escaped one after another.
        format!("Digest username=\"{}\"", "\\é".repeat((room - 20) / 3)),
    ];
    for header in &cases {
        assert!(header.len() <= MAX_HEADER_LEN, "{}", header.len());
        assert_fast("parsing a worst-case header", || {
            let _ = check_parse(header);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_never_panic_and_stay_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let header = String::from_utf8_lossy(&bytes);
        let _ = check_parse(&header);
        let _ = check_parse(&format!("Digest {header}"));
    }

    #[test]
    fn any_string_never_panics(s in any::<String>(), tail in "[ -~]{0,64}") {
        let _ = check_parse(&s);
        let _ = check_parse(&format!("Digest {s}{tail}"));
        let _ = check_parse(&format!("Digest username=\"{s}"));
    }

    #[test]
    fn structured_headers_never_panic_and_refuse_duplicates((params, header) in structured_header()) {
        let parsed = check_parse(&header);
        let mut names: Vec<String> = params.iter().map(|p| p.name.to_ascii_lowercase()).collect();
        names.sort();
        let duplicated = names.windows(2).any(|w| w[0] == w[1]);
        if duplicated {
            prop_assert!(parsed.is_err(), "a duplicate was resolved: {header:?} -> {parsed:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_headers_never_authenticate(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", ""]),
        target in prop::sample::select(vec!["/", "/me", "/a?b=c"]),
        prefix in prop::sample::select(vec!["", "Digest ", "Digest username=\"alice\", "]),
        unread_body in any::<bool>(),
    ) {
        let (verifier, challenge) = verifier(&[USER]);
        let header = format!("{prefix}{}", String::from_utf8_lossy(&bytes));
        let mut parts = RequestParts::new(method, target, Some(&header));
        parts.client = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        if unread_body {
            parts.body = Body::Unread;
        }
        let result = verify(&verifier, &parts);
        check_verdict(&account(USER, &challenge), &parts, &result, false);
        assert_refused(result, &header);
    }

    #[test]
    fn everything_right_but_the_response_never_authenticates(
        response in "[0-9a-fA-F]{1,64}",
        md5 in any::<bool>(),
        qop in prop::sample::select(vec!["auth", "auth-int"]),
        nc in "[0-9a-fA-F]{8}",
        cnonce in "[a-zA-Z0-9]{1,32}",
        extra in proptest::collection::vec(
            param(
                "[a-z]{1,8}".prop_filter("not a Digest parameter", |n| !KNOWN.contains(&n.as_str())),
                param_value(),
                any::<bool>(),
            ),
            0..4,
        ),
    ) {
        // Real user, realm, opaque and fresh nonce, random unknown extra
        // parameters, and a response nobody without the token can compute.
        let (verifier, challenge) = verifier(&[USER]);
        let mut header = format!(
            "Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{}\", uri=\"/me\", \
             algorithm={}, qop={qop}, nc={nc}, cnonce=\"{cnonce}\", opaque=\"{OPAQUE}\", \
             response=\"{response}\"",
            challenge.nonce,
            if md5 { "MD5" } else { "SHA-256" },
        );
        for p in &extra {
            header.push_str(", ");
            header.push_str(&p.render());
        }
        let result = verify(&verifier, &RequestParts::new("GET", "/me", Some(&header)));
        if Authorization::parse(&header).is_ok() {
            // It reached the response check, and failed there.
            prop_assert!(
                matches!(result, Err(Rejection::Challenge { stale: false })),
                "{:?} for {}", result, header
            );
        }
        assert_refused(result, &header);
    }

    #[test]
    fn a_duplicated_parameter_is_refused_not_resolved(
        which in 0usize..10,
        at in any::<prop::sample::Index>(),
        same_value in any::<bool>(),
        upper in any::<bool>(),
    ) {
        // A correct header, with one of its parameters given a second time,
        // anywhere, with the same or another value, in any case.
        let (verifier, challenge) = verifier(&[USER]);
        let header = Answer {
            username: USER,
            password: TOKEN,
            challenge: &challenge,
            method: "GET",
            uri: "/me",
            qop: Some(Qop::Auth),
            nc: 1,
            cnonce: "0a4f113b",
            body: b"",
            userhash: false,
        }
        .header();
        let rest = header.strip_prefix("Digest ").unwrap();
        let mut params: Vec<String> = rest.split(", ").map(String::from).collect();
        prop_assert_eq!(params.len(), 10, "{}", header);
        let original = params[which].clone();
        let (name, value) = original.split_once('=').unwrap();
        let name = if upper { name.to_ascii_uppercase() } else { name.to_owned() };
        let value = if same_value { value.to_owned() } else { "\"00000002\"".to_owned() };
        params.insert(at.index(params.len() + 1), format!("{name}={value}"));
        let duplicated = format!("Digest {}", params.join(", "));
        prop_assert_eq!(
            Authorization::parse(&duplicated),
            Err(ParseError::Duplicate(name.to_ascii_lowercase()))
        );
        let result = verify(&verifier, &RequestParts::new("GET", "/me", Some(&duplicated)));
        prop_assert!(
            matches!(result, Err(Rejection::Malformed(ParseError::Duplicate(_)))),
            "{:?}", result
        );
        // The original still authenticates: the refusal is about the duplicate.
        prop_assert!(verify(&verifier, &RequestParts::new("GET", "/me", Some(&header))).is_ok());
    }

    #[test]
    fn answers_round_trip_for_arbitrary_usernames_and_uris(
        username in any::<String>(),
        path in any::<String>(),
        cnonce in any::<String>().prop_filter("1 to 256 bytes", |c| !c.is_empty() && c.len() <= MAX_CNONCE_LEN),
        nc in any::<u32>(),
        auth_int in any::<bool>(),
        md5 in any::<bool>(),
        userhash in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let uri = format!("/{path}");
        let (verifier, mut challenge) = verifier(&[&username]);
        challenge.algorithm = if md5 { Algorithm::Md5 } else { Algorithm::Sha256 };
        let qop = if auth_int { Qop::AuthInt } else { Qop::Auth };
        let answer = |password| Answer {
            username: &username,
            password,
            challenge: &challenge,
            method: "POST",
            uri: &uri,
            qop: Some(qop),
            nc,
            cnonce: &cnonce,
            body: &body,
            userhash,
        }
        .header();
        let header = answer(TOKEN);

        let parsed = Authorization::parse(&header).unwrap().expect("a Digest header");
        if !userhash {
            prop_assert_eq!(&parsed.username, &username);
        }
        prop_assert_eq!(parsed.userhash, userhash);
        prop_assert_eq!(&parsed.uri, &uri);
        prop_assert_eq!(&parsed.realm, REALM);
        prop_assert_eq!(&parsed.nonce, &challenge.nonce);
        prop_assert_eq!(parsed.algorithm, challenge.algorithm);
        let q = parsed.qop.expect("qop");
        prop_assert_eq!((q.kind, q.nc, &*q.cnonce), (qop, nc, cnonce.as_str()));

        let mut parts = RequestParts::new("POST", &uri, Some(&header));
        parts.body = Body::Bytes(&body);
        let result = verify(&verifier, &parts);
        check_verdict(&account(&username, &challenge), &parts, &result, true);
        let verified = result.expect("a correct answer authenticates");
        prop_assert_eq!(&*verified.credential.username, username.as_str());

        let wrong = answer("not the token");
        let mut parts = RequestParts::new("POST", &uri, Some(&wrong));
        parts.body = Body::Bytes(&body);
        assert_refused(verify(&verifier, &parts), &wrong);
    }
}
