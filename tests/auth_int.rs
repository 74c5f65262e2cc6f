//! `qop=auth-int` over real request bodies through the data guard, answered
//! by the `digest_auth` crate (a client that prefers auth-int when offered).

mod common;

#[cfg(feature = "json")]
use rocket::http::ContentType;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
#[cfg(feature = "json")]
use rocket::serde::json::{json, Json, Value};
use rocket::{post, routes};
use rocket_digest_auth::protocol::{ClientChallenge, DigestClient};
use rocket_digest_auth::{DigestAuth, DigestAuthenticated, DigestAuthenticatedData, User};

#[post("/echo", data = "<body>")]
fn echo(body: DigestAuthenticatedData<User, Vec<u8>>) -> Vec<u8> {
    body.data
}

#[cfg(feature = "json")]
#[post("/json", data = "<body>")]
fn json_echo(body: DigestAuthenticatedData<User, Json<Value>>) -> Json<Value> {
    Json(json!({ "user": body.user.username, "got": body.data.0 }))
}

#[post("/guard-only")]
fn guard_only(user: DigestAuthenticated<User>) -> String {
    user.username.to_string()
}

const LIMIT: usize = 64;

async fn client() -> (Client, String) {
    let figment = rocket::Config::figment()
        .merge(("digest_auth.store", "memory"))
        .merge(("digest_auth.qop", ["auth", "auth-int"]))
        .merge(("digest_auth.algorithms", ["MD5", "SHA-256"]))
        .merge(("limits.bytes", LIMIT))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .mount("/", routes![echo, guard_only]);
    #[cfg(feature = "json")]
    let rocket = rocket.mount("/", routes![json_echo]);
    let client = Client::tracked(rocket).await.expect("valid rocket");
    let token = common::local::issue(&client, "alice").await;
    (client, token)
}

async fn challenge(client: &Client, path: &str) -> String {
    let r = client.post(path.to_owned()).dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);
    r.headers()
        .get_one("WWW-Authenticate")
        .expect("a challenge")
        .to_owned()
}

/// The `Authorization` header the `digest_auth` crate makes for a POST of `body`.
fn real_client_header(www: &str, token: &str, uri: &str, body: &[u8]) -> String {
    let mut prompt = digest_auth::parse(www).expect("digest_auth parses our challenge");
    let context = digest_auth::AuthContext::new_post("alice", token, uri, Some(body));
    prompt
        .respond(&context)
        .expect("digest_auth answers")
        .to_header_string()
}

async fn post<'c>(client: &'c Client, path: &str, auth: String, body: &[u8]) -> LocalResponse<'c> {
    client
        .post(path.to_owned())
        .header(Header::new("Authorization", auth))
        .body(body)
        .dispatch()
        .await
}

#[rocket::async_test]
async fn challenges_offer_auth_and_auth_int() {
    let (client, _) = client().await;
    let www = challenge(&client, "/echo").await;
    assert!(www.contains(r#"qop="auth,auth-int""#), "{www}");
}

#[rocket::async_test]
async fn auth_int_with_the_right_body_succeeds() {
    let (client, token) = client().await;
    let www = challenge(&client, "/echo").await;
    let body = b"the exact bytes".as_slice();
    let auth = real_client_header(&www, &token, "/echo", body);
    assert!(
        auth.contains("qop=auth-int"),
        "the real client chose auth-int: {auth}"
    );
    let r = post(&client, "/echo", auth, body).await;
    assert_eq!(r.status(), Status::Ok);
    assert!(r.headers().get_one("Authentication-Info").is_some());
    assert_eq!(r.into_bytes().await.unwrap(), body);
}

#[rocket::async_test]
async fn auth_int_with_one_byte_changed_fails() {
    let (client, token) = client().await;
    let www = challenge(&client, "/echo").await;
    let body = b"transfer 100 to bob".to_vec();
    let auth = real_client_header(&www, &token, "/echo", &body);
    let mut tampered = body.clone();
    tampered[9] = b'9';
    let r = post(&client, "/echo", auth, &tampered).await;
    assert_eq!(r.status(), Status::Unauthorized);
    let www = r.headers().get_one("WWW-Authenticate").unwrap();
    assert!(!www.contains("stale"), "a wrong digest is not stale: {www}");
}

#[rocket::async_test]
async fn body_over_the_limit_gets_413() {
    let (client, token) = client().await;
    let www = challenge(&client, "/echo").await;
    let body = vec![b'x'; LIMIT + 1];
    let auth = real_client_header(&www, &token, "/echo", &body);
    assert_eq!(
        post(&client, "/echo", auth, &body).await.status(),
        Status::PayloadTooLarge
    );
    // Exactly at the limit is fine.
    let www = challenge(&client, "/echo").await;
    let body = vec![b'x'; LIMIT];
    let auth = real_client_header(&www, &token, "/echo", &body);
    assert_eq!(
        post(&client, "/echo", auth, &body).await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn data_guard_routes_accept_qop_auth_too() {
    let (client, token) = client().await;
    let www = challenge(&client, "/echo").await;
    let challenge = ClientChallenge::parse(&www).unwrap().unwrap();
    let mut session = DigestClient::new("alice", &token, challenge);
    let auth = session.authorization("POST", "/echo");
    assert!(auth.contains("qop=auth,"), "{auth}");
    let r = post(&client, "/echo", auth, b"hello").await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(r.into_string().await.unwrap(), "hello");
}

#[rocket::async_test]
async fn request_guard_route_refuses_auth_int_with_a_body() {
    let (client, token) = client().await;
    let www = challenge(&client, "/guard-only").await;
    let auth = real_client_header(&www, &token, "/guard-only", b"payload");
    // Rocket's local client sends no Content-Length; a real client does.
    let r = client
        .post("/guard-only")
        .header(Header::new("Authorization", auth.clone()))
        .header(Header::new("Content-Length", "7"))
        .body("payload")
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    // A POST that does not say how long its body is (as over HTTP/2) may
    // carry one: refused the same way.
    let r = post(&client, "/guard-only", auth, b"payload").await;
    assert_eq!(r.status(), Status::BadRequest);
    // With `Content-Length: 0`, auth-int covers the empty body and the
    // request guard can check it.
    let www = challenge(&client, "/guard-only").await;
    let auth = real_client_header(&www, &token, "/guard-only", b"");
    let r = client
        .post("/guard-only")
        .header(Header::new("Authorization", auth))
        .header(Header::new("Content-Length", "0"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
}

#[cfg(feature = "json")]
#[rocket::async_test]
async fn json_bodies_are_authenticated_then_parsed() {
    let (client, token) = client().await;
    let body = br#"{"amount": 100}"#;
    let www = challenge(&client, "/json").await;
    let auth = real_client_header(&www, &token, "/json", body);
    let r = client
        .post("/json")
        .header(ContentType::JSON)
        .header(Header::new("Authorization", auth))
        .body(body)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let got: Value = r.into_json().await.unwrap();
    assert_eq!(got, json!({ "user": "alice", "got": { "amount": 100 } }));

    // Authenticated but not JSON: 422, after the digest checked out.
    let www = challenge(&client, "/json").await;
    let auth = real_client_header(&www, &token, "/json", b"not json");
    let r = post(&client, "/json", auth, b"not json").await;
    assert_eq!(r.status(), Status::UnprocessableEntity);
}
