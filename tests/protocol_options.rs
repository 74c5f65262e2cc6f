//! Protocol options and details beyond the status table, on the memory
//! store unless a store is the point: which challenges a configuration
//! writes, every algorithm, `nextnonce`, `auth-int` without a body, quirks
//! of real clients, prefixed `uri`s, query strings, nonces
//! from another secret or process, RFC 2069, `username*` and `userhash`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::app::{
    answer, check_authentication_info, client, memory, rfc2069_answer, signed_get, sqlite,
    userhash_answer, with_alice, REALM, SECRET,
};
use common::headers::params;
use common::local::{challenge_for, get, issue, send, session};
use rocket::http::{Header, Status};
use rocket::serde::json::json;
use rocket_digest_auth::protocol::{
    Algorithm, Answer, AuthenticationInfo, Authorization, ClientChallenge, DigestClient, Qop,
};
use rocket_digest_auth::store::{MemoryStore, StoreOptions};
use rocket_digest_auth::verifier::{RequestParts, Verifier};
use rocket_digest_auth::{Config, Rejection};

/// A verifier over a memory store with `alice`'s token, for tests that set
/// the clock themselves.
fn verifier_with_alice(config: Config) -> (Verifier, String) {
    let store = Arc::new(MemoryStore::new(StoreOptions::new(&config.realm)));
    let token = "alice's token, chosen by the test";
    store.insert_token("alice", token);
    (
        Verifier::new(config, store.clone(), store).unwrap(),
        token.to_owned(),
    )
}

/// Challenges minted in one known unix second: `(challenges, second)`.
fn challenges_at_known_second(verifier: &Verifier) -> (Vec<String>, i64) {
    loop {
        let before = chrono::Utc::now().timestamp();
        let challenges = verifier.challenges(false);
        if chrono::Utc::now().timestamp() == before {
            return (challenges, before);
        }
    }
}

#[rocket::async_test]
async fn challenge_carries_opaque_userhash_and_domain_when_configured() {
    let client = client(memory(json!({
        "opaque": "opaque-value",
        "userhash": true,
        "domain": ["/me", "/maybe"],
        "algorithms": ["SHA-512-256", "MD5-sess"],
    })))
    .await;
    let reply = get(&client, "/me", None).await;
    reply.assert_401(false);
    let values = reply.headers.all("WWW-Authenticate");
    assert_eq!(values.len(), 2);
    for (value, algorithm) in values.iter().zip(["SHA-512-256", "MD5-sess"]) {
        let p = params(value);
        assert_eq!(p["algorithm"], algorithm);
        assert_eq!(p["opaque"], "opaque-value");
        assert_eq!(p["userhash"], "true");
        assert_eq!(p["domain"], "/me /maybe");
        assert_eq!(p["charset"], "UTF-8");
        assert_eq!(p["realm"], REALM);
        assert_eq!(p["qop"], "auth");
    }
}

#[rocket::async_test]
async fn success_with_each_of_the_six_algorithms_verifies_rspauth() {
    let all = Algorithm::ALL.map(Algorithm::as_str);
    let (client, token) = with_alice(json!({ "algorithms": all })).await;
    let reply = get(&client, "/me", None).await;
    let challenges = reply.headers.challenges();
    let offered: Vec<Algorithm> = challenges.iter().map(|c| c.algorithm).collect();
    assert_eq!(offered, Algorithm::ALL, "in the configured order");
    for challenge in challenges {
        let alg = challenge.algorithm;
        let mut session = DigestClient::new("alice", &token, challenge);
        for _ in 0..2 {
            let (header, reply) = signed_get(&client, &mut session, "/me").await;
            assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
            assert_eq!(reply.json(), json!({ "username": "alice" }));
            let info = check_authentication_info(&reply, &header, "alice", &token);
            assert!(info.nextnonce.is_none(), "{alg}: fresh nonce");
        }
    }
}

#[rocket::async_test]
async fn nextnonce_is_sent_when_the_nonce_nears_its_end_and_works() {
    // 10 s nonces, nextnonce in the last 9 s: after one second it is due.
    let (client, token) = with_alice(json!({ "nonce_lifetime": 10, "nextnonce_within": 9 })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    let info = check_authentication_info(&reply, &header, "alice", &token);
    let next = info.nextnonce.as_ref().expect("nextnonce near the end");
    assert_ne!(next, &s.challenge().nonce);
    s.set_nonce(next);
    let (_, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(
        reply.status,
        Status::Ok,
        "the nextnonce is accepted: {reply:?}"
    );
}

#[rocket::async_test]
async fn nextnonce_appears_exactly_nextnonce_within_seconds_before_expiry() {
    let config = Config::default()
        .with_secret(SECRET)
        .with_nonce_lifetime(300)
        .with_nextnonce_within(60);
    let (verifier, token) = verifier_with_alice(config);
    let (challenges, t0) = challenges_at_known_second(&verifier);
    let challenge = ClientChallenge::parse(&challenges[0]).unwrap().unwrap();
    let mut s = DigestClient::new("alice", &token, challenge);

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    let verified = verifier.verify_at(&parts, t0 + 239).await.unwrap();
    let info = AuthenticationInfo::parse(&verified.authentication_info).unwrap();
    assert_eq!(info.nextnonce, None, "61 s left");

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    let verified = verifier.verify_at(&parts, t0 + 240).await.unwrap();
    let info = AuthenticationInfo::parse(&verified.authentication_info).unwrap();
    let next = info.nextnonce.expect("60 s left");

    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    assert!(matches!(
        verifier.verify_at(&parts, t0 + 300).await,
        Err(Rejection::Challenge { stale: true })
    ));

    s.set_nonce(&next);
    let h = s.authorization("GET", "/me");
    let parts = RequestParts::new("GET", "/me", Some(&h));
    assert!(verifier.verify_at(&parts, t0 + 300).await.is_ok());
}

#[rocket::async_test]
async fn auth_int_without_a_body_succeeds_and_with_an_unread_body_is_400() {
    let (client, token) = with_alice(json!({ "qop": ["auth", "auth-int"] })).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    assert_eq!(challenge.qop, [Qop::Auth, Qop::AuthInt]);

    let header = Answer {
        qop: Some(Qop::AuthInt),
        ..answer("alice", &token, &challenge, "/me", 1, "c1")
    }
    .header();
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert!(reply
        .headers
        .one("Authentication-Info")
        .unwrap()
        .contains("qop=auth-int"));

    // A request guard cannot read the body: auth-int over a body is refused.
    let header = Answer {
        qop: Some(Qop::AuthInt),
        method: "POST",
        body: b"payload",
        ..answer("alice", &token, &challenge, "/upload", 2, "c1")
    }
    .header();
    let request = client
        .post("/upload")
        .header(Header::new("Authorization", header))
        .header(Header::new("Content-Length", "7"))
        .body("payload");
    let reply = send(request).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
}

#[rocket::async_test]
async fn real_client_quirks_are_tolerated() {
    let client = client(memory(json!({}))).await;
    // A username with a quote and a backslash travels escaped.
    let name = r#"o"brien\x"#;
    let token = issue(&client, name).await;
    let challenge = challenge_for(&client, Algorithm::Md5).await;
    // nc=0000000a: lower-case hex, and a count that does not start at 1.
    let header = answer(name, &token, &challenge, "/me", 10, "f2/wE4q74E6zIJ").header();
    assert!(header.contains("nc=0000000a") && header.contains(r#"o\"brien\\x"#));
    let variants = [
        // Python requests quotes token values.
        header
            .replace("algorithm=MD5", "algorithm=\"MD5\"")
            .replace("qop=auth", "qop=\"auth\""),
        // Any case in the scheme and parameter names, extra whitespace,
        // an unknown parameter.
        header
            .replacen("Digest ", "DIGEST   ", 1)
            .replace("username=", "UserName = ")
            .replace(", uri=", " ,\t Uri=")
            + ", x-unknown=\"ignored\"",
    ];
    // Each variant is sent as its own request (nc 1, 2, ...), with the
    // response our client computes for that count.
    let original = Authorization::parse(&header)
        .unwrap()
        .unwrap()
        .response
        .into_owned();
    for (i, variant) in variants.iter().enumerate() {
        let nc = i as u32 + 1;
        let same = answer(name, &token, &challenge, "/me", nc, "f2/wE4q74E6zIJ").header();
        let response = Authorization::parse(&same)
            .unwrap()
            .unwrap()
            .response
            .into_owned();
        let variant = variant
            .replace("nc=0000000a", &format!("nc={nc:08x}"))
            .replace(&original, &response);
        let reply = get(&client, "/me", Some(&variant)).await;
        assert_eq!(reply.status, Status::Ok, "{variant}: {reply:?}");
        assert_eq!(reply.json(), json!({ "username": name }));
    }
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    check_authentication_info(&reply, &header, name, &token);
}

#[rocket::async_test]
async fn query_strings_are_compared_as_received() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = s.authorization("GET", "/me?a=%20b");
    let reply = get(&client, "/me?a=%20b", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "alice" }));
    for decoded_or_other in ["/me?a=+b", "/me?a=%20B", "/me"] {
        let header = s.authorization("GET", decoded_or_other);
        let reply = get(&client, "/me?a=%20b", Some(&header)).await;
        assert_eq!(
            reply.status,
            Status::BadRequest,
            "{decoded_or_other}: {reply:?}"
        );
    }
}

#[rocket::async_test]
async fn uri_prefix_accepts_the_prefixed_uri_of_a_rewriting_proxy() {
    let (client, token) = with_alice(json!({ "uri_prefix": "/app" })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    // Absolute-form uris (which must name the Host): tests/signed_binding.rs.
    for signed in ["/app/me", "/me"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::Ok, "{signed}: {reply:?}");
        check_authentication_info(&reply, &header, "alice", &token);
    }
    for signed in ["/other/me", "/appme", "/app"] {
        let header = s.authorization("GET", signed);
        let reply = get(&client, "/me", Some(&header)).await;
        assert_eq!(reply.status, Status::BadRequest, "{signed}: {reply:?}");
    }
}

#[rocket::async_test]
async fn nonce_from_another_secret_gets_401_without_stale() {
    let other = client(memory(
        json!({ "secret": "another secret, also at least 32 bytes" }),
    ))
    .await;
    let (client, token) = with_alice(json!({})).await;
    let foreign = challenge_for(&other, Algorithm::Sha256).await;
    let header = answer("alice", &token, &foreign, "/me", 1, "c").header();
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

#[rocket::async_test]
async fn memory_store_nonce_from_an_earlier_process_gets_stale_not_replay() {
    // Same secret, another process (a restart): the memory store's replay
    // records are gone, so its nonces must not be accepted, but a client that
    // knows the secret retries without prompting.
    let before_restart = client(memory(json!({}))).await;
    let (client, token) = with_alice(json!({})).await;
    let old = challenge_for(&before_restart, Algorithm::Sha256).await;
    let header = answer("alice", &token, &old, "/me", 1, "c").header();
    let reply = get(&client, "/me", Some(&header)).await;
    reply.assert_401(true);
}

#[rocket::async_test]
async fn rfc2069_request_without_qop_is_refused_by_default() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let header = rfc2069_answer(&token, &challenge, "/me");
    assert!(!header.contains("qop=") && !header.contains("nc="));
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

#[rocket::async_test]
async fn username_star_rfc5987_resolves_to_the_real_user() {
    let client = client(memory(json!({}))).await;
    let name = "Jäsøn Doe";
    let token = issue(&client, name).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let plain = answer(name, &token, &challenge, "/me", 1, "c").header();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let header = plain.replacen(
        &format!("username=\"{name}\""),
        &format!("username*=UTF-8''{encoded}"),
        1,
    );
    assert!(
        header.is_ascii() && header.contains("username*="),
        "{header}"
    );
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": name }));
    check_authentication_info(&reply, &header, name, &token);
}

#[rocket::async_test]
async fn userhash_is_refused_when_not_offered() {
    let (client, token) = with_alice(json!({})).await;
    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let header = userhash_answer(&token, &challenge);
    get(&client, "/me", Some(&header)).await.assert_401(false);
}

#[rocket::async_test]
async fn sqlite_store_instances_sharing_the_secret_share_nonces_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let a = client(sqlite(&dir, json!({}))).await;
    let b = client(sqlite(&dir, json!({}))).await;
    let token = issue(&a, "alice").await;
    let challenge = challenge_for(&a, Algorithm::Sha256).await;
    let header = answer("alice", &token, &challenge, "/me", 1, "c").header();
    let reply = get(&b, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "A's nonce on B: {reply:?}");
    get(&a, "/me", Some(&header)).await.assert_401(true);
}
