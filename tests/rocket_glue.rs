//! The Rocket glue around the verifier: the optional guard, the Sentinel,
//! configuration errors at ignite, `catcher = false`, an app's own user
//! type and credential store, and stores that are down (503).

mod common;

use std::collections::BTreeMap;

use common::app::{
    app, base_figment, check_authentication_info, client, client_with, memory, sentinel_routes,
    signed_get, with_alice, REALM,
};
use common::local::{challenge_for, get, issue, session};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;
use rocket::{catch, catchers, Request};
use rocket_digest_auth::catcher::ChallengeResponse;
use rocket_digest_auth::protocol::{digest, Algorithm, DigestClient, HashFunction};
use rocket_digest_auth::store::{
    Claim, ClaimRequest, Credential, CredentialStore, NonceCountStore, Secret, StoreError,
};
use rocket_digest_auth::{DigestAuth, Tokens};

/// An app's own 401 catcher, for `catcher = false`.
#[catch(401)]
fn sign_in_please(request: &Request<'_>) -> ChallengeResponse {
    ChallengeResponse::for_request(request).with_body("Please sign in.\n")
}

/// An app's own credential store: fixed tokens.
struct FixedTokens(BTreeMap<&'static str, &'static str>);

#[rocket::async_trait]
impl CredentialStore for FixedTokens {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self
            .0
            .get(username)
            .map(|token| Credential::token(username, token)))
    }
}

/// An htdigest-like store: only MD5 HA1 values.
struct Md5Ha1Only {
    username: &'static str,
    ha1: String,
}

#[rocket::async_trait]
impl CredentialStore for Md5Ha1Only {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        Ok((username == self.username).then(|| Credential {
            username: username.into(),
            secret: Secret::Ha1 {
                md5: Some(self.ha1.as_str().into()),
                sha256: None,
                sha512_256: None,
            },
            created_at: None,
        }))
    }

    fn hash_functions(&self) -> &'static [HashFunction] {
        &[HashFunction::Md5]
    }
}

/// A credential store whose database is down.
struct DownCredentials;

#[rocket::async_trait]
impl CredentialStore for DownCredentials {
    async fn credential(&self, _: &str) -> Result<Option<Credential>, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

/// A nonce-count store whose database is down.
struct DownCounts;

#[rocket::async_trait]
impl NonceCountStore for DownCounts {
    async fn claim(&self, _: ClaimRequest<'_>) -> Result<Claim, StoreError> {
        Err(StoreError::new("connection refused"))
    }

    async fn remove_expired(&self, _: i64) -> Result<u64, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

#[rocket::async_test]
async fn optional_guard_is_anonymous_without_header_and_the_user_with_one() {
    let (client, token) = with_alice(json!({})).await;
    let reply = get(&client, "/maybe", None).await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.json(), json!({ "username": null }));
    assert!(reply.headers.all("WWW-Authenticate").is_empty());

    let challenge = challenge_for(&client, Algorithm::Sha256).await;
    let mut s = DigestClient::new("alice", &token, challenge);
    let (header, reply) = signed_get(&client, &mut s, "/maybe").await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.json(), json!({ "username": "alice" }));
    check_authentication_info(&reply, &header, "alice", &token);
}

#[rocket::async_test]
async fn guard_without_the_fairing_stops_launch_through_the_sentinel() {
    use rocket::error::ErrorKind;

    // Without guarded routes the same rocket ignites: the config is fine.
    let [public, guarded, optional] = sentinel_routes();
    let plain = rocket::custom(base_figment()).mount("/", public);
    assert!(plain.ignite().await.is_ok());

    // Rocket 0.5 queries Sentinels inside `ignite()`, so it is ignite that fails.
    for routes in [guarded.clone(), optional] {
        let rocket = rocket::custom(base_figment()).mount("/", routes);
        match rocket.ignite().await {
            Ok(_) => panic!("ignite succeeded without the fairing"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::SentinelAborts(sentries) if !sentries.is_empty()),
                "{e}"
            ),
        }
    }
    let rocket = rocket::custom(base_figment()).mount("/", guarded);
    match Client::tracked(rocket).await {
        Ok(_) => panic!("a client launched without the fairing"),
        Err(e) => assert!(matches!(e.kind(), ErrorKind::SentinelAborts(_)), "{e}"),
    }
}

#[rocket::async_test]
async fn invalid_config_stops_ignite_naming_the_key() {
    use rocket::error::ErrorKind;

    let cases = [
        (json!({ "realm": "" }), "realm"),
        (json!({ "realm": "   " }), "realm"),
        (json!({ "algorithms": ["SHA-1"] }), "algorithms"),
        (json!({ "algorithms": [] }), "algorithms"),
        (json!({ "nonce_lifetime": 0 }), "nonce_lifetime"),
        (json!({ "secret": "too short" }), "secret"),
        (json!({ "nc_window": 8 }), "nc_window"),
        (json!({ "no_such_key": 1 }), "no_such_key"),
    ];
    for (settings, key) in cases {
        let figment = memory(settings.clone());
        let message = DigestAuth::config(&figment).unwrap_err().to_string();
        assert!(message.contains(key), "{settings}: {message}");
        match Client::tracked(app(DigestAuth::fairing(), figment)).await {
            Ok(_) => panic!("{settings}: launched"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::FailedFairings(f)
                    if f.iter().any(|i| i.name == "Digest Authentication")),
                "{settings}: {e}"
            ),
        }
    }
}

#[rocket::async_test]
async fn catcher_false_leaves_the_401_to_the_apps_own_catcher() {
    // Without any catcher: Rocket's default 401, no challenge.
    let bare = client(memory(json!({ "catcher": false }))).await;
    let reply = get(&bare, "/me", None).await;
    assert_eq!(reply.status, Status::Unauthorized);
    assert!(
        reply.headers.all("WWW-Authenticate").is_empty(),
        "{reply:?}"
    );

    // An app's own catcher built on ChallengeResponse.
    let rocket = app(DigestAuth::fairing(), memory(json!({ "catcher": false })))
        .register("/", catchers![sign_in_please]);
    let client = match Client::tracked(rocket).await {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    };
    let reply = get(&client, "/me", None).await;
    assert_eq!(reply.status, Status::Unauthorized);
    assert_eq!(reply.body, "Please sign in.\n");
    assert_eq!(reply.headers.challenges().len(), 2);
    assert!(!reply.headers.is_stale());
    let token = issue(&client, "alice").await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let header = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
    // stale=true reaches the app's catcher too.
    let replay = get(&client, "/me", Some(&header)).await;
    assert_eq!(replay.status, Status::Unauthorized);
    assert!(replay.headers.is_stale(), "{replay:?}");
}

#[rocket::async_test]
async fn custom_user_type_refusing_a_user_gets_401() {
    let client = client(memory(json!({}))).await;
    let alice = issue(&client, "alice").await;
    let mallory = issue(&client, "mallory").await;

    let mut s = session(&client, "alice", &alice, Algorithm::Sha256).await;
    let (_, reply) = signed_get(&client, &mut s, "/vip").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "vip": "alice" }));

    let mut s = session(&client, "mallory", &mallory, Algorithm::Sha256).await;
    let (_, refused) = signed_get(&client, &mut s, "/vip").await;
    refused.assert_401(false);
    // Mallory's credentials are fine elsewhere: it is the user type that refused.
    let header = s.authorization("GET", "/me");
    assert_eq!(get(&client, "/me", Some(&header)).await.status, Status::Ok);
}

#[rocket::async_test]
async fn custom_user_type_refusal_looks_like_any_other_401() {
    let client = client(memory(json!({}))).await;
    let mallory = issue(&client, "mallory").await;
    let mut s = session(&client, "mallory", &mallory, Algorithm::Sha256).await;
    let refused = get(&client, "/vip", Some(&s.authorization("GET", "/vip"))).await;
    let mut wrong = session(&client, "mallory", "not-the-token", Algorithm::Sha256).await;
    let failed = get(&client, "/vip", Some(&wrong.authorization("GET", "/vip"))).await;
    refused.assert_401(false);
    failed.assert_401(false);
    // A refused request is not a successful authentication: no
    // Authentication-Info (rspauth) on the 401.
    assert_eq!(
        refused.headers.names(),
        failed.headers.names(),
        "{refused:?}"
    );
}

#[rocket::async_test]
async fn custom_credential_store_is_used_instead_of_the_builtin_one() {
    let store = FixedTokens(BTreeMap::from([("carol", "carol's fixed token")]));
    let fairing = DigestAuth::fairing().with_credential_store(store);
    let client = client_with(fairing, memory(json!({}))).await;
    assert!(
        client.rocket().state::<Tokens>().is_none(),
        "built-in Tokens would not be the ones in use"
    );
    let mut s = session(&client, "carol", "carol's fixed token", Algorithm::Sha256).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "carol" }));
    check_authentication_info(&reply, &header, "carol", "carol's fixed token");

    let mut wrong = session(&client, "carol", "other", Algorithm::Sha256).await;
    get(&client, "/me", Some(&wrong.authorization("GET", "/me")))
        .await
        .assert_401(false);
}

#[rocket::async_test]
async fn ha1_only_store_serves_its_algorithm_and_refuses_others_at_ignite() {
    let ha1 = || Md5Ha1Only {
        username: "dave",
        ha1: digest::ha1(Algorithm::Md5, "dave", REALM, "dave's password"),
    };
    let fairing = DigestAuth::fairing().with_credential_store(ha1());
    let client = client_with(fairing, memory(json!({ "algorithms": ["MD5"] }))).await;
    let mut s = session(&client, "dave", "dave's password", Algorithm::Md5).await;
    let (header, reply) = signed_get(&client, &mut s, "/me").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    check_authentication_info(&reply, &header, "dave", "dave's password");

    // The default config offers SHA-256, which this store cannot serve.
    let rocket = app(
        DigestAuth::fairing().with_credential_store(ha1()),
        memory(json!({})),
    );
    match Client::tracked(rocket).await {
        Ok(_) => panic!("launched offering SHA-256 over MD5-only credentials"),
        Err(e) => assert!(
            matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{e}"
        ),
    }
}

#[rocket::async_test]
async fn credential_store_down_gets_503_never_the_route() {
    let fairing = DigestAuth::fairing().with_credential_store(DownCredentials);
    let client = client_with(fairing, memory(json!({}))).await;
    let mut s = session(&client, "alice", "token", Algorithm::Sha256).await;
    let reply = get(&client, "/me", Some(&s.authorization("GET", "/me"))).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    assert!(!reply.body.contains("alice"));
    // No header: no store access needed, still the challenge.
    get(&client, "/me", None).await.assert_401(false);
}

#[rocket::async_test]
async fn nonce_count_store_down_gets_503_even_with_the_right_digest() {
    let fairing = DigestAuth::fairing().with_nonce_count_store(DownCounts);
    let client = client_with(fairing, memory(json!({}))).await;
    let token = issue(&client, "alice").await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let reply = get(&client, "/me", Some(&s.authorization("GET", "/me"))).await;
    assert_eq!(reply.status, Status::ServiceUnavailable, "{reply:?}");
    assert!(reply.headers.one("Authentication-Info").is_none());
}
