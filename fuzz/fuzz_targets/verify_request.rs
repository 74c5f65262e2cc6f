//! Fuzzes the whole verification of a request: `Verifier::verify` over a
//! `MemoryStore` holding one real user, with an arbitrary method,
//! request-target, body and `Authorization` header.
//!
//! The oracle is `tests/shared/verify_oracle.rs`, which the property tests
//! use too, written independently of the crate: whenever the verifier says
//! `Ok`, the header must be a correct answer for the real user, realm,
//! opaque, nonce, method, request-target and body. Random bytes never are; neither is a
//! correct answer with one thing changed. The other way round, an untouched
//! correct answer built with `protocol::Answer` must be accepted.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rocket::tokio::runtime::{Builder, Runtime};
use rocket_digest_auth::protocol::{
    Algorithm, Answer, ClientChallenge, Qop, MAX_CNONCE_LEN, MAX_HEADER_LEN,
};
use rocket_digest_auth::store::{MemoryStore, StoreOptions};
use rocket_digest_auth::verifier::{Body, RequestParts, Verifier};
use rocket_digest_auth::Config;

#[path = "../../tests/shared/verify_oracle.rs"]
mod verify_oracle;

use verify_oracle::{check_verdict, Account};

const REALM: &str = "fuzz realm";
const USER: &str = "alice";
const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";
const OPAQUE: &str = "opaque-value";

#[derive(Arbitrary, Debug)]
enum Who<'a> {
    Alice,
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
enum BodyInput<'a> {
    Empty,
    Unread,
    Bytes(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum HeaderInput<'a> {
    /// Any bytes at all (lossily decoded, as a server would see them).
    Raw(&'a [u8]),
    /// Real username, realm, opaque, nonce and uri, then fuzzed bytes.
    Template(&'a [u8]),
    /// An answer built with `protocol::Answer` from fuzzed choices, and
    /// optionally with fuzzed bytes spliced in.
    Answer {
        who: Who<'a>,
        right_token: bool,
        algorithm: u8,
        /// None: RFC 2069; Some(false): auth; Some(true): auth-int.
        qop: Option<bool>,
        nc: u32,
        cnonce: &'a str,
        uri: Option<&'a str>,
        userhash: bool,
        splice: Option<(u16, &'a [u8])>,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a str,
    target: &'a str,
    body: BodyInput<'a>,
    client: Option<[u8; 4]>,
    header: HeaderInput<'a>,
}

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| Builder::new_current_thread().enable_all().build().unwrap())
}

fn config() -> Config {
    Config::default()
        .with_realm(REALM)
        .with_qop([Qop::Auth, Qop::AuthInt])
        .with_allow_rfc2069(true)
        .with_secret("fuzzing secret, at least 32 bytes long")
        .with_opaque(OPAQUE)
        .with_userhash(true)
}

fuzz_target!(|input: Input<'_>| {
    // A fresh verifier per input: no state leaks between runs, so any
    // finding reproduces from its input alone.
    let store = Arc::new(MemoryStore::new(StoreOptions::new(REALM)));
    store.insert_token(USER, TOKEN);
    let verifier = Verifier::new(config(), store.clone(), store).unwrap();
    let challenge = ClientChallenge::parse(&verifier.challenges(false)[0])
        .unwrap()
        .unwrap();
    let body = match input.body {
        BodyInput::Empty => Body::Empty,
        BodyInput::Unread => Body::Unread,
        BodyInput::Bytes(b) => Body::Bytes(b),
    };

    let mut must_succeed = false;
    let header = match &input.header {
        HeaderInput::Raw(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        HeaderInput::Template(bytes) => format!(
            "Digest username=\"{USER}\", realm=\"{REALM}\", opaque=\"{OPAQUE}\", nonce=\"{}\", uri=\"{}\", {}",
            challenge.nonce,
            input.target.replace('\\', "\\\\").replace('"', "\\\""),
            String::from_utf8_lossy(bytes)
        ),
        HeaderInput::Answer {
            who,
            right_token,
            algorithm,
            qop,
            nc,
            cnonce,
            uri,
            userhash,
            splice,
        } => {
            let username = match who {
                Who::Alice => USER,
                Who::Other(name) => name,
            };
            let mut challenge = challenge.clone();
            challenge.algorithm = Algorithm::ALL[*algorithm as usize % Algorithm::ALL.len()];
            let qop = qop.map(|int| if int { Qop::AuthInt } else { Qop::Auth });
            let body_bytes: &[u8] = match body {
                Body::Bytes(b) => b,
                _ => b"",
            };
            let header = Answer {
                username,
                password: if *right_token { TOKEN } else { "not the token" },
                challenge: &challenge,
                method: input.method,
                uri: uri.unwrap_or(input.target),
                qop,
                nc: *nc,
                cnonce,
                body: body_bytes,
                userhash: *userhash,
            }
            .header();
            must_succeed = matches!(who, Who::Alice)
                && *right_token
                && matches!(challenge.algorithm, Algorithm::Md5 | Algorithm::Sha256)
                && (qop.is_none() || (!cnonce.is_empty() && cnonce.len() <= MAX_CNONCE_LEN))
                && !(qop == Some(Qop::AuthInt) && body == Body::Unread)
                // Without a Host, an absolute-form uri names no known authority.
                && uri.unwrap_or(input.target) == input.target
                && header.len() <= MAX_HEADER_LEN
                && splice.is_none();
            match splice {
                None => header,
                Some((at, bytes)) => {
                    let mut raw = header.into_bytes();
                    let at = *at as usize % (raw.len() + 1);
                    raw.splice(at..at, bytes.iter().copied());
                    String::from_utf8_lossy(&raw).into_owned()
                }
            }
        }
    };

    let parts = RequestParts {
        method: input.method,
        target: input.target,
        host: None,
        authorization: Some(&header),
        client: input.client.map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        body,
    };
    let result = runtime().block_on(verifier.verify(&parts));
    let account = Account {
        user: USER,
        token: TOKEN,
        realm: REALM,
        opaque: OPAQUE,
        nonce: &challenge.nonce,
    };
    check_verdict(&account, &parts, &result, must_succeed);
});
