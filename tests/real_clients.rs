//! The real example server (`examples/server.rs`) over TCP, driven by clients
//! nobody here wrote: curl `--digest` (SHA-256 and MD5), Python
//! `requests.auth.HTTPDigestAuth` and `httpx.DigestAuth`, Perl's LWP and GNU
//! wget (MD5 only), plus 100 parallel requests on one nonce from plain
//! sockets.
//!
//! The server runs as its own process (`common::example`). Without curl,
//! python3, requests, httpx, LWP or wget the tests that use them are
//! skipped, or fail under `./scripts/test` (see `common::require`).

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;

use common::clients::{
    clients_available, curl_digest, lwp_and_wget_available, perl_lwp, python_client, wget_digest,
    EXPECTED_BODY,
};
use common::example::{Server, TIMEOUT};
use common::http::{self, Request};
use rocket_digest_auth::protocol::{Algorithm, Authorization, ClientChallenge, DigestClient, Qop};

#[test]
fn curl_digest_sha256_with_the_shipped_config() {
    if !clients_available() {
        return;
    }
    let server = Server::start(None);
    let index = server.get("/", None);
    assert_eq!(index.status, 200);
    assert!(index.text().contains("/me"), "{index:?}");

    // The shipped config offers SHA-256 first, then MD5, on one nonce.
    let r = server.get("/me", None);
    assert_eq!(r.status, 401);
    let challenges = r.headers.challenges();
    let algorithms: Vec<Algorithm> = challenges.iter().map(|c| c.algorithm).collect();
    assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5]);
    assert_eq!(challenges[0].realm, "rocket_digest_auth example");

    let token = server.create_token("alice");
    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Sha256, "curl answers the first");
    assert_eq!(&*sent.username, "alice");

    let wrong = curl_digest(&server.url("/me"), "alice", &"0".repeat(40));
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(
        wrong.authorization.is_some(),
        "curl did answer the challenge"
    );
    let nobody = curl_digest(&server.url("/me"), "nobody", &token);
    assert_eq!(nobody.status, 401, "{nobody:?}");
}

#[test]
fn curl_digest_md5_when_only_md5_is_configured() {
    if !clients_available() {
        return;
    }
    let server = Server::start(Some(r#"{algorithms=["MD5"]}"#));
    let challenge = server.challenge();
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    let token = server.create_token("alice");

    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Md5);
    assert_eq!(sent.response.len(), 32, "an MD5 digest: {sent:?}");

    let wrong = curl_digest(&server.url("/me"), "alice", &token.to_uppercase());
    assert_eq!(wrong.status, 401, "tokens are case-sensitive: {wrong:?}");
}

#[test]
fn create_token_rotates_and_the_old_token_stops_working() {
    if !clients_available() {
        return;
    }
    let server = Server::start(None);
    let first = server.create_token("alice");
    assert_eq!(curl_digest(&server.url("/me"), "alice", &first).status, 200);

    // Rotated by another process while the server runs: the server's
    // credential cache sees it within `credential_recheck_ms` (100 ms).
    let second = server.create_token("alice");
    assert_ne!(first, second);
    std::thread::sleep(std::time::Duration::from_millis(250));
    let old = curl_digest(&server.url("/me"), "alice", &first);
    assert_eq!(old.status, 401, "the rotated-out token: {old:?}");
    let new = curl_digest(&server.url("/me"), "alice", &second);
    assert_eq!((new.status, new.body.as_str()), (200, EXPECTED_BODY));

    // Another user's token is independent of alice's.
    let bob = server.create_token("bob");
    let r = curl_digest(&server.url("/me"), "bob", &bob);
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"username":"bob"}"#));
    assert_eq!(
        curl_digest(&server.url("/me"), "alice", &second).status,
        200
    );
}

#[test]
fn python_requests_http_digest_auth() {
    if !clients_available() {
        return;
    }
    // requests merges the two challenges and answers the LAST one: MD5.
    let server = Server::start(None);
    let token = server.create_token("alice");
    let results = python_client(&["requests", &server.url("/me"), "alice", &token]);
    let [(r, answered)] = results.as_slice() else {
        panic!("{results:?}")
    };
    let sent = r.assert_alice();
    assert_eq!(*answered, 1);
    assert_eq!(sent.algorithm, Algorithm::Md5, "{r:?}");

    let wrong = python_client(&["requests", &server.url("/me"), "alice", "wrong"]);
    assert_eq!(wrong[0].0.status, 401, "{wrong:?}");

    // Offered SHA-256 only, requests uses it.
    let server = Server::start(Some(r#"{algorithms=["SHA-256"]}"#));
    let token = server.create_token("alice");
    let results = python_client(&["requests", &server.url("/me"), "alice", &token]);
    assert_eq!(results.len(), 1);
    let r = &results[0].0;
    let sent = r.assert_alice();
    assert_eq!(sent.algorithm, Algorithm::Sha256, "{r:?}");
}

#[test]
fn perl_lwp_and_wget_with_auth_and_auth_int_offered() {
    if !lwp_and_wget_available() {
        return;
    }
    // Both are MD5-only. LWP reads the qop list only as `auth,auth-int`
    // (without a space; with one it signs the list itself and sends no qop).
    let server = Server::start(Some(r#"{algorithms=["MD5"], qop=["auth", "auth-int"]}"#));
    let token = server.create_token("alice");
    let realm = server.challenge().realm;
    let sent = perl_lwp(&server.url("/me"), &realm, "alice", &token).assert_alice();
    assert_eq!(
        sent.qop.map(|q| q.kind),
        Some(Qop::Auth),
        "LWP answers auth"
    );
    let wrong = perl_lwp(&server.url("/me"), &realm, "alice", "wrong");
    assert_eq!(wrong.status, 401, "{wrong:?}");

    // wget 1.21 answers qop only when offered exactly `auth`; offered both,
    // it sends an RFC 2069 answer, which needs allow_rfc2069.
    let r = wget_digest(&server.url("/me"), "alice", &token);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.authorization.map(|a| a.contains("qop=")), Some(false));
    let server = Server::start(Some(
        r#"{algorithms=["MD5"], qop=["auth", "auth-int"], allow_rfc2069=true}"#,
    ));
    let token = server.create_token("alice");
    let sent = wget_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert!(sent.qop.is_none(), "{sent:?}");
    let server = Server::start(Some(r#"{algorithms=["MD5"], qop=["auth"]}"#));
    let token = server.create_token("alice");
    let sent = wget_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(
        sent.qop.map(|q| q.kind),
        Some(Qop::Auth),
        "wget answers auth"
    );
    let wrong = wget_digest(&server.url("/me"), "alice", "wrong");
    assert_eq!(wrong.status, 401, "{wrong:?}");
}

#[test]
fn httpx_digest_auth_counts_up_on_one_nonce() {
    if !clients_available() {
        return;
    }
    const REQUESTS: usize = 8;
    let server = Server::start(None);
    let token = server.create_token("alice");
    let results = python_client(&[
        "httpx",
        &server.url("/me"),
        "alice",
        &token,
        &REQUESTS.to_string(),
    ]);
    assert_eq!(results.len(), REQUESTS, "{results:?}");
    let sent: Vec<Authorization> = results.iter().map(|(r, _)| r.assert_alice()).collect();
    // Only the first request met a challenge; the others reused its nonce
    // with the count going up: 00000001, 00000002, ...
    let answered: Vec<u64> = results.iter().map(|(_, n)| *n).collect();
    assert_eq!(answered[0], 1, "{results:?}");
    assert!(answered[1..].iter().all(|&n| n == 0), "{results:?}");
    let nonces: BTreeSet<&str> = sent.iter().map(|a| &*a.nonce).collect();
    assert_eq!(nonces.len(), 1, "one nonce for all: {sent:?}");
    let counts: Vec<u32> = sent.iter().map(|a| a.qop.as_ref().unwrap().nc).collect();
    assert_eq!(counts, (1..=REQUESTS as u32).collect::<Vec<_>>());
}

/// Sends every header from its own thread and connection, all released at
/// once, and returns the statuses in the same order.
fn parallel_get(port: u16, headers: &[String]) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(headers.len()));
    let threads: Vec<_> = headers
        .iter()
        .cloned()
        .map(|header| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let request = Request::get("/me").authorization(Some(&header)).end();
                let stream = http::connect(port, TIMEOUT);
                barrier.wait();
                let r = http::exchange(stream.expect("connecting"), &request).expect("a response");
                if r.status == 200 {
                    assert_eq!(r.text(), EXPECTED_BODY);
                }
                r.status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request thread"))
        .collect()
}

#[test]
fn hundred_parallel_requests_on_one_nonce_then_replays_fail() {
    let server = Server::start(None);
    let token = server.create_token("alice");

    // One challenge, 100 answers with nc 1..=100, sent all at once, so they
    // reach the server in no particular order.
    let mut client = DigestClient::new("alice", &token, server.challenge());
    let headers: Vec<String> = (0..100)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    let statuses = parallel_get(server.port, &headers);
    let refused: Vec<(usize, u16)> = statuses
        .iter()
        .enumerate()
        .filter(|(_, &s)| s != 200)
        .map(|(i, &s)| (i + 1, s))
        .collect();
    assert!(refused.is_empty(), "(nc, status) refused: {refused:?}");

    // Each exact header once more, again all at once: every one is refused
    // with a new challenge.
    let statuses = parallel_get(server.port, &headers);
    assert!(statuses.iter().all(|&s| s == 401), "replays: {statuses:?}");
    let replay = server.get("/me", Some(&headers[41]));
    assert_eq!(replay.status, 401);
    assert!(
        ClientChallenge::parse(replay.headers.all("www-authenticate")[0])
            .unwrap()
            .is_some(),
        "{replay:?}"
    );

    // The same header raced against itself: exactly one copy gets through.
    let mut client = DigestClient::new("alice", &token, server.challenge());
    let unique: Vec<String> = (0..25)
        .map(|_| client.authorization("GET", "/me"))
        .collect();
    let doubled: Vec<String> = unique.iter().chain(&unique).cloned().collect();
    let statuses = parallel_get(server.port, &doubled);
    for (i, header) in unique.iter().enumerate() {
        let pair = (statuses[i], statuses[i + unique.len()]);
        assert!(
            pair == (200, 401) || pair == (401, 200),
            "nc {} sent twice at once got {pair:?}: {header}",
            i + 1
        );
    }
}

#[test]
fn create_token_and_server_both_read_rocket_digest_auth() {
    if !clients_available() {
        return;
    }
    // A custom realm with HA1-only storage: create-token must hash the token
    // under the realm from ROCKET_DIGEST_AUTH, or the server cannot check it.
    let config = r#"{realm="clients@example.test", token_storage="ha1", userhash=true}"#;
    let server = Server::start(Some(config));
    let challenge = server.challenge();
    assert_eq!(challenge.realm, "clients@example.test");
    assert!(challenge.userhash, "{challenge:?}");

    let token = server.create_token("alice");
    let sent = curl_digest(&server.url("/me"), "alice", &token).assert_alice();
    assert_eq!(sent.realm, "clients@example.test");

    // The same command with another realm in the environment stores HA1
    // values for that realm, which this server cannot use.
    let other = server.create_token_with(
        "alice",
        Some(r#"{realm="another realm", token_storage="ha1"}"#),
    );
    assert_eq!(other.len(), 40, "{other:?}");
    let r = curl_digest(&server.url("/me"), "alice", &other);
    assert_eq!(r.status, 401, "HA1 made for another realm: {r:?}");

    // An invalid value stops create-token with a message naming the key.
    let out = server.create_token_output("alice", Some("{nonce_lifetime=0}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("nonce_lifetime") || stdout.contains("nonce_lifetime"),
        "{stderr}\n{stdout}"
    );
}
