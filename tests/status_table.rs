//! Every row of the status table (README, crate docs), written once and run
//! on each built-in store: memory, SQLite in a temporary file, and
//! PostgreSQL where its test database is reachable (else skipped, see
//! `tests/common/require.rs`).
//!
//! Challenges are answered with the crate's own client
//! (`protocol::{ClientChallenge, DigestClient, Answer}`); `Authentication-Info`
//! is checked by recomputing `rspauth` with `protocol::digest`.

mod common;

/// The tests, for the store `$store` (a `common::app::Store`).
macro_rules! status_table_tests {
    ($store:expr) => {
        use std::collections::BTreeSet;
        use std::sync::Arc;
        use std::time::Duration;

        use rocket::http::Status;
        use rocket::serde::json::json;
        use rocket_digest_auth::protocol::{Algorithm, Authorization, ClientChallenge, DigestClient};

        use crate::common::app::{
            answer, attempt_from, check_authentication_info, rfc2069_answer, signed_get,
            userhash_answer, App, REALM,
        };
        use crate::common::headers::params;
        use crate::common::local::{challenge_for, get, issue, session, Reply};
        use crate::test_name;

        // -- 401 challenges

        #[rocket::async_test]
        async fn no_header_gets_one_challenge_per_algorithm_sha256_first_then_md5() {
            let Some(client) = $store.launch(test_name!(), json!({})).await else { return };
            let reply = get(&client, "/me", None).await;
            reply.assert_401(false);
            let values = reply.headers.all("WWW-Authenticate");
            assert_eq!(values.len(), 2, "{values:?}");
            let mut nonces = Vec::new();
            for (value, algorithm) in values.iter().zip(["SHA-256", "MD5"]) {
                assert!(value.starts_with("Digest "), "{value}");
                let p = params(value);
                assert_eq!(p["realm"], REALM);
                assert_eq!(p["qop"], "auth");
                assert_eq!(p["algorithm"], algorithm);
                assert_eq!(p["charset"], "UTF-8");
                assert!(!p["nonce"].is_empty());
                for absent in ["opaque", "userhash", "domain", "stale"] {
                    assert!(!p.contains_key(absent), "{absent} in {value}");
                }
                nonces.push(p["nonce"].clone());
            }
            assert_eq!(nonces[0], nonces[1], "the challenges share one nonce");
            // Every 401 carries a fresh nonce.
            let again = get(&client, "/me", None).await;
            assert_ne!(again.headers.challenge().nonce, nonces[0]);
        }

        #[rocket::async_test]
        async fn other_schemes_get_the_challenge_like_no_header() {
            let Some(client) = $store.launch(test_name!(), json!({})).await else { return };
            let none = get(&client, "/me", None).await;
            for header in ["Basic YWxpY2U6c2VjcmV0", "Bearer abc.def", "Digest-ish x=y"] {
                let reply = get(&client, "/me", Some(header)).await;
                reply.assert_401(false);
                assert_eq!(reply.headers.names(), none.headers.names(), "{header}");
                let algorithms: Vec<Algorithm> =
                    reply.headers.challenges().iter().map(|c| c.algorithm).collect();
                assert_eq!(algorithms, [Algorithm::Sha256, Algorithm::Md5], "{header}");
            }
        }

        // -- success

        #[rocket::async_test]
        async fn default_config_authenticates_with_sha256_and_md5() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            for alg in [Algorithm::Sha256, Algorithm::Md5] {
                let mut s = session(&client, "alice", &token, alg).await;
                let (header, reply) = signed_get(&client, &mut s, "/me").await;
                assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
                assert_eq!(reply.json(), json!({ "username": "alice" }));
                check_authentication_info(&reply, &header, "alice", &token);
                assert!(reply.headers.all("WWW-Authenticate").is_empty());
            }
        }

        // -- 400: malformed header, uri

        #[rocket::async_test]
        async fn malformed_digest_headers_get_400() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let challenge = challenge_for(&client, Algorithm::Sha256).await;
            let good = answer("alice", &token, &challenge, "/me", 1, "abc").header();
            assert!(good.contains("nc=00000001"));
            let cases = [
                ("duplicate parameter", format!("{good}, nc=00000002")),
                ("duplicate realm, other case", format!("{good}, REALM=\"x\"")),
                ("unterminated quote", good.replacen("cnonce=\"abc\"", "cnonce=\"abc", 1)),
                ("non-hex nc", good.replace("nc=00000001", "nc=0000000g")),
                ("short nc", good.replace("nc=00000001", "nc=1")),
                ("nc without qop", good.replace("qop=auth, ", "")),
                ("missing uri", good.replacen("uri=\"/me\", ", "", 1)),
                ("unknown algorithm", good.replace("algorithm=SHA-256", "algorithm=SHA-1")),
                ("non-hex response", good.replacen("response=\"", "response=\"zz", 1)),
                ("garbage", "Digest ,,, =".to_owned()),
                ("too long", format!("{good}, x=\"{}\"", "a".repeat(20_000))),
            ];
            for (what, header) in cases {
                let reply = get(&client, "/me", Some(&header)).await;
                assert_eq!(reply.status, Status::BadRequest, "{what}: {reply:?}");
            }
            // The well-formed header still works: nothing was spent by the bad ones.
            let reply = get(&client, "/me", Some(&good)).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
        }

        #[rocket::async_test]
        async fn uri_that_is_not_the_request_target_gets_400() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
            for signed in ["/maybe", "/me/", "/ME", "/me?x=1", "http://localhost/other"] {
                let header = s.authorization("GET", signed);
                let reply = get(&client, "/me", Some(&header)).await;
                assert_eq!(reply.status, Status::BadRequest, "{signed}: {reply:?}");
            }
        }

        // -- 401 without stale: what the server did not offer, forged nonces, wrong users

        #[rocket::async_test]
        async fn wrong_realm_algorithm_qop_or_opaque_gets_401_without_stale() {
            let settings = json!({ "algorithms": ["SHA-256"], "opaque": "the-opaque" });
            let Some((client, token)) = $store.with_alice(test_name!(), settings).await else { return };
            let good = challenge_for(&client, Algorithm::Sha256).await;
            let variants = [
                ("wrong realm", ClientChallenge { realm: "other realm".into(), ..good.clone() }),
                ("MD5 not offered", ClientChallenge { algorithm: Algorithm::Md5, ..good.clone() }),
                ("opaque tampered", ClientChallenge { opaque: Some("the-opaque2".into()), ..good.clone() }),
                ("opaque left out", ClientChallenge { opaque: None, ..good.clone() }),
            ];
            for (what, challenge) in &variants {
                let header = answer("alice", &token, challenge, "/me", 1, "c").header();
                let reply = get(&client, "/me", Some(&header)).await;
                reply.assert_401(false);
                assert!(reply.headers.one("Authentication-Info").is_none(), "{what}");
            }
            let auth_int = rocket_digest_auth::protocol::Answer {
                qop: Some(rocket_digest_auth::protocol::Qop::AuthInt),
                ..answer("alice", &token, &good, "/me", 1, "c")
            }
            .header();
            get(&client, "/me", Some(&auth_int)).await.assert_401(false);
            // The untampered answer with the same nonce, nc and cnonce still works:
            // refusals spent nothing.
            let header = answer("alice", &token, &good, "/me", 1, "c").header();
            let reply = get(&client, "/me", Some(&header)).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
        }

        #[rocket::async_test]
        async fn forged_or_altered_nonce_gets_401_without_stale() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let good = challenge_for(&client, Algorithm::Sha256).await;
            let mut altered = good.nonce.clone().into_bytes();
            let last = altered.len() - 2;
            altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
            let nonces = [
                String::from_utf8(altered).unwrap(),
                "dcd98b7102dd2f0e8b11d0f600bfb0c093".to_owned(),
                "x".repeat(good.nonce.len()),
                String::new(),
            ];
            for nonce in nonces {
                let forged = ClientChallenge { nonce: nonce.clone(), ..good.clone() };
                let header = answer("alice", &token, &forged, "/me", 1, "c").header();
                let reply = get(&client, "/me", Some(&header)).await;
                reply.assert_401(false);
                assert_ne!(reply.headers.challenge().nonce, nonce);
            }
        }

        #[rocket::async_test]
        async fn unknown_user_and_wrong_token_look_the_same() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let challenge = challenge_for(&client, Algorithm::Sha256).await;
            let unknown = answer("nobody", &token, &challenge, "/me", 1, "c").header();
            let wrong = answer("alice", "not-the-token", &challenge, "/me", 1, "c").header();
            let a = get(&client, "/me", Some(&unknown)).await;
            let b = get(&client, "/me", Some(&wrong)).await;
            a.assert_401(false);
            b.assert_401(false);
            assert_eq!(a.status, b.status);
            assert_eq!(a.body, b.body);
            assert_eq!(a.headers.names(), b.headers.names());
            let shape = |r: &Reply| -> Vec<String> {
                let nonce = r.headers.challenge().nonce;
                r.headers
                    .all("WWW-Authenticate")
                    .iter()
                    .map(|v| v.replace(nonce.as_str(), "<nonce>"))
                    .collect()
            };
            assert_eq!(shape(&a), shape(&b));
            assert_ne!(a.headers.challenge().nonce, b.headers.challenge().nonce);
            for (name, value) in &a.headers.0 {
                if !name.eq_ignore_ascii_case("WWW-Authenticate") {
                    assert_eq!(b.headers.all(name), [value.as_str()], "{name}");
                }
            }
        }

        #[rocket::async_test]
        async fn userhash_resolves_to_the_real_user() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({ "userhash": true })).await else { return };
            for alg in [Algorithm::Sha256, Algorithm::Md5] {
                let challenge = challenge_for(&client, alg).await;
                assert!(challenge.userhash, "{alg}");
                let header = userhash_answer(&token, &challenge);
                let sent = Authorization::parse(&header).unwrap().unwrap();
                assert!(sent.userhash && sent.username != "alice", "{header}");
                let reply = get(&client, "/me", Some(&header)).await;
                assert_eq!(reply.status, Status::Ok, "{alg}: {reply:?}");
                assert_eq!(reply.json(), json!({ "username": "alice" }));
                check_authentication_info(&reply, &header, "alice", &token);
            }
        }

        // -- 401 with stale=true: expired nonces and replays

        #[rocket::async_test]
        async fn expired_nonce_with_right_digest_gets_stale_and_the_client_recovers() {
            let settings = json!({ "nonce_lifetime": 2, "nextnonce_within": 0 });
            let Some((client, token)) = $store.with_alice(test_name!(), settings).await else { return };
            let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
            rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
            let (_, reply) = signed_get(&client, &mut s, "/me").await;
            reply.assert_401(true);
            assert!(reply.headers.one("Authentication-Info").is_none());

            // The client takes the new nonce without asking the user again.
            let fresh = reply
                .headers
                .challenges()
                .into_iter()
                .find(|c| c.algorithm == Algorithm::Sha256)
                .unwrap();
            s.set_nonce(&fresh.nonce);
            let (_, reply) = signed_get(&client, &mut s, "/me").await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
        }

        #[rocket::async_test]
        async fn expired_nonce_with_wrong_digest_gets_401_without_stale() {
            let settings = json!({ "nonce_lifetime": 2, "nextnonce_within": 0 });
            let Some((client, _)) = $store.with_alice(test_name!(), settings).await else { return };
            let mut wrong = session(&client, "alice", "not-the-token", Algorithm::Sha256).await;
            let mut unknown = session(&client, "nobody", "whatever", Algorithm::Sha256).await;
            rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
            for header in [wrong.authorization("GET", "/me"), unknown.authorization("GET", "/me")] {
                get(&client, "/me", Some(&header)).await.assert_401(false);
            }
        }

        #[rocket::async_test]
        async fn replay_of_the_same_header_gets_401_stale() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            for alg in [Algorithm::Sha256, Algorithm::Md5] {
                let mut s = session(&client, "alice", &token, alg).await;
                let header = s.authorization("GET", "/me");
                assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
                let replay = get(&client, "/me", Some(&header)).await;
                replay.assert_401(true);
                assert!(replay.headers.one("Authentication-Info").is_none());
                // The session goes on with the next count.
                let next = s.authorization("GET", "/me");
                assert_eq!(get(&client, "/me", Some(&next)).await.status, Status::Ok);
            }
        }

        #[rocket::async_test]
        async fn out_of_order_nc_within_the_window_succeed_once_each() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let challenge = challenge_for(&client, Algorithm::Sha256).await;
            for nc in [5, 3, 4, 1, 2, 200, 7] {
                let header = answer("alice", &token, &challenge, "/me", nc, "0a4f113b").header();
                let reply = get(&client, "/me", Some(&header)).await;
                assert_eq!(reply.status, Status::Ok, "nc {nc}: {reply:?}");
                check_authentication_info(&reply, &header, "alice", &token);
            }
            for nc in [3, 200] {
                let header = answer("alice", &token, &challenge, "/me", nc, "0a4f113b").header();
                get(&client, "/me", Some(&header)).await.assert_401(true);
            }
        }

        #[rocket::async_test]
        async fn nc_below_the_window_fails() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({ "nc_window": 64 })).await else { return };
            let challenge = challenge_for(&client, Algorithm::Sha256).await;
            let at = |nc| answer("alice", &token, &challenge, "/me", nc, "c").header();
            assert_eq!(get(&client, "/me", Some(&at(100))).await.status, Status::Ok);
            // 100 - 64 = 36 is out of the window; 37 is the lowest still accepted.
            get(&client, "/me", Some(&at(36))).await.assert_401(true);
            get(&client, "/me", Some(&at(1))).await.assert_401(true);
            assert_eq!(get(&client, "/me", Some(&at(37))).await.status, Status::Ok);
        }

        #[rocket::async_test]
        async fn a_wrong_response_does_not_burn_the_clients_count() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let challenge = challenge_for(&client, Algorithm::Sha256).await;
            // An attacker sees nonce, nc and cnonce go by and sends them first with a bad response.
            let attack = answer("alice", "guess", &challenge, "/me", 1, "c").header();
            get(&client, "/me", Some(&attack)).await.assert_401(false);
            let real = answer("alice", &token, &challenge, "/me", 1, "c").header();
            assert_eq!(get(&client, "/me", Some(&real)).await.status, Status::Ok);
        }

        #[rocket::async_test]
        async fn rfc2069_request_succeeds_once_per_nonce_when_allowed() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({ "allow_rfc2069": true })).await else { return };
            let challenge = challenge_for(&client, Algorithm::Md5).await;
            let rfc2069 = |uri| rfc2069_answer(&token, &challenge, uri);
            let reply = get(&client, "/me", Some(&rfc2069("/me"))).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
            assert_eq!(reply.json(), json!({ "username": "alice" }));
            let info = reply.headers.authentication_info().expect("Authentication-Info");
            assert!(!info.rspauth.is_empty() && info.qop.is_none(), "{info:?}");
            // The nonce is spent, also for another uri.
            get(&client, "/me", Some(&rfc2069("/me"))).await.assert_401(true);
            get(&client, "/me?x", Some(&rfc2069("/me?x"))).await.assert_401(true);
            // A new nonce works once more.
            let fresh = challenge_for(&client, Algorithm::Md5).await;
            let header = rfc2069_answer(&token, &fresh, "/me");
            assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
        }

        #[rocket::tokio::test(flavor = "multi_thread", worker_threads = 2, crate = "rocket::tokio")]
        async fn hundred_parallel_requests_on_one_nonce_then_each_replayed() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({})).await else { return };
            let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
            let headers: Vec<String> = (0..100).map(|_| s.authorization("GET", "/me")).collect();
            let ncs: BTreeSet<u32> = headers
                .iter()
                .map(|h| Authorization::parse(h).unwrap().unwrap().qop.unwrap().nc)
                .collect();
            assert_eq!(ncs.len(), 100, "distinct nc");

            let client: Arc<App> = Arc::new(client);
            let run_all = |headers: Vec<String>| {
                let tasks: Vec<_> = headers
                    .into_iter()
                    .map(|header| {
                        let client = client.clone();
                        rocket::tokio::spawn(async move {
                            let reply = get(&client, "/me", Some(&header)).await;
                            (reply.status, reply.headers.stale())
                        })
                    })
                    .collect();
                async move {
                    let mut out = Vec::new();
                    for task in tasks {
                        out.push(task.await.expect("task"));
                    }
                    out
                }
            };
            let first = run_all(headers.clone()).await;
            assert!(first.iter().all(|(status, _)| *status == Status::Ok), "{first:?}");
            let replays = run_all(headers).await;
            assert!(
                replays.iter().all(|r| *r == (Status::Unauthorized, Some(true))),
                "{replays:?}"
            );
        }

        // -- 429: brute force per (user, address)

        #[rocket::async_test]
        async fn too_many_failures_from_one_address_get_429_but_not_elsewhere() {
            let settings = json!({ "max_failures": 3, "failure_window": 300 });
            let Some((client, token)) = $store.with_alice(test_name!(), settings).await else { return };
            let mut guesser = session(&client, "alice", "guess", Algorithm::Sha256).await;
            for attempt in 1..=3 {
                let reply = attempt_from(&client, 1, &mut guesser).await;
                assert_eq!(reply.status, Status::Unauthorized, "attempt {attempt}");
            }
            let fourth = attempt_from(&client, 1, &mut guesser).await;
            assert_eq!(fourth.status, Status::TooManyRequests, "{fourth:?}");
            let retry_after: u64 =
                fourth.headers.one("Retry-After").expect("Retry-After").parse().expect("seconds");
            assert!((1..=300).contains(&retry_after), "{retry_after}");

            // Even the right token is refused from that address for now...
            let mut real = session(&client, "alice", &token, Algorithm::Sha256).await;
            let reply = attempt_from(&client, 1, &mut real).await;
            assert_eq!(reply.status, Status::TooManyRequests);
            // ...but the same user from another address is not locked out,
            let reply = attempt_from(&client, 2, &mut real).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
            // and neither is another user from the attacker's address.
            let bob = issue(&client, "bob").await;
            let mut bob = session(&client, "bob", &bob, Algorithm::Sha256).await;
            let reply = attempt_from(&client, 1, &mut bob).await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
        }

        #[rocket::async_test]
        async fn success_resets_the_failure_count() {
            let Some((client, token)) = $store.with_alice(test_name!(), json!({ "max_failures": 3 })).await else { return };
            let mut guesser = session(&client, "alice", "typo", Algorithm::Sha256).await;
            let mut real = session(&client, "alice", &token, Algorithm::Sha256).await;
            for _ in 0..2 {
                let reply = attempt_from(&client, 3, &mut guesser).await;
                assert_eq!(reply.status, Status::Unauthorized);
            }
            let reply = attempt_from(&client, 3, &mut real).await;
            assert_eq!(reply.status, Status::Ok);
            // Counted from zero again: three more failures are 401s, then 429.
            for n in 1..=3 {
                let reply = attempt_from(&client, 3, &mut guesser).await;
                assert_eq!(reply.status, Status::Unauthorized, "failure {n} after the reset");
            }
            let reply = attempt_from(&client, 3, &mut guesser).await;
            assert_eq!(reply.status, Status::TooManyRequests);
        }

        // -- tokens: issue, rotate, revoke

        #[rocket::async_test]
        async fn tokens_issue_rotates_and_revoke_refuses() {
            let Some(client) = $store.launch(test_name!(), json!({})).await else { return };
            let tokens = client.rocket().state::<rocket_digest_auth::Tokens>().expect("Tokens");
            let old = tokens.issue("alice").await.unwrap();
            let mut s = session(&client, "alice", &old, Algorithm::Sha256).await;
            let reply = get(&client, "/me", Some(&s.authorization("GET", "/me"))).await;
            assert_eq!(reply.status, Status::Ok);

            let new = tokens.issue("alice").await.unwrap();
            assert_ne!(new, old);
            assert!(new.len() >= 40, "at least 160 bits as hex: {new}");
            get(&client, "/me", Some(&s.authorization("GET", "/me"))).await.assert_401(false);
            let mut s: DigestClient = session(&client, "alice", &new, Algorithm::Sha256).await;
            let (header, reply) = signed_get(&client, &mut s, "/me").await;
            assert_eq!(reply.status, Status::Ok, "{reply:?}");
            check_authentication_info(&reply, &header, "alice", &new);

            assert!(tokens.revoke("alice").await.unwrap());
            get(&client, "/me", Some(&s.authorization("GET", "/me"))).await.assert_401(false);
            assert!(!tokens.revoke("alice").await.unwrap(), "nothing left to revoke");
        }
    };
}

mod memory {
    status_table_tests!(crate::common::app::Store::Memory);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    status_table_tests!(crate::common::app::Store::Sqlite);
}

#[cfg(feature = "postgres")]
mod postgres {
    status_table_tests!(crate::common::app::Store::Postgres);
}
