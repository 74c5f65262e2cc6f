//! What the client signed is what the request is: the method as received
//! (a HEAD that Rocket routes to a GET route, a POST whose `_method` form
//! field Rocket reroutes) and the authority of an absolute-form `uri`
//! (it must name the request's `Host`). In-process through Rocket's local
//! client, then over TCP against the example server with curl and raw
//! requests. Also: the challenge's qop list and a stray `cnonce`.

mod common;

use std::io::{Read, Write};

use common::app::{check_authentication_info, rfc2069_answer, with_alice};
use common::clients::{clients_available, curl_digest_with, EXPECTED_BODY};
use common::example::{Server, TIMEOUT};
use common::http::{self, Request};
use common::local::{challenge_for, get, send, session, with_auth, Reply};
use rocket::http::uri::Host;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalRequest};
use rocket::serde::json::json;
use rocket_digest_auth::protocol::{Algorithm, DigestClient};

/// `request` as if it had arrived with `Host: host`.
fn with_host<'c>(mut request: LocalRequest<'c>, host: &'static str) -> LocalRequest<'c> {
    let host = Host::parse(host).unwrap_or_else(|e| panic!("{host}: {e}"));
    request.inner_mut().set_host(host);
    request
}

/// `POST /me` with the form body `_method=get`, which Rocket routes to
/// `GET /me`, signed by `s` for `signed_method`.
async fn overridden_post(client: &Client, s: &mut DigestClient, signed_method: &str) -> Reply {
    let header = s.authorization(signed_method, "/me");
    let request = client
        .post("/me")
        .header(ContentType::Form)
        .body("_method=get");
    send(with_auth(request, Some(&header))).await
}

#[rocket::async_test]
async fn head_is_verified_as_head() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;

    let header = s.authorization("HEAD", "/me");
    let reply = send(with_auth(client.head("/me"), Some(&header))).await;
    check_authentication_info(&reply, &header, "alice", &token);
    assert_eq!(reply.body, "", "HEAD has no body");

    // A digest signed for GET does not open HEAD.
    let header = s.authorization("GET", "/me");
    let reply = send(with_auth(client.head("/me"), Some(&header))).await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    assert!(!reply.headers.challenges().is_empty(), "{reply:?}");

    // GET is still GET.
    let header = s.authorization("GET", "/me");
    let reply = get(&client, "/me", Some(&header)).await;
    check_authentication_info(&reply, &header, "alice", &token);
}

#[rocket::async_test]
async fn a_method_override_does_not_change_what_was_signed() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;

    // Rocket routes the POST to GET /me; the client signed POST.
    let reply = overridden_post(&client, &mut s, "POST").await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
    assert_eq!(reply.json(), json!({ "username": "alice" }));

    let reply = overridden_post(&client, &mut s, "GET").await;
    assert_eq!(reply.status, Status::Unauthorized, "{reply:?}");
    reply.assert_401(false);
}

#[rocket::async_test]
async fn an_absolute_form_uri_must_name_the_host() {
    let (client, token) = with_alice(json!({})).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    let cases = [
        // (Host, signed uri, status)
        ("127.0.0.1:8000", "http://127.0.0.1:8000/me", Status::Ok),
        ("127.0.0.1:8000", "HTTP://127.0.0.1:8000/me", Status::Ok),
        ("Example.org", "https://example.ORG/me", Status::Ok),
        ("example.org", "http://example.org:80/me", Status::Ok),
        ("example.org", "https://example.org:443/me", Status::Ok),
        ("example.org:443", "https://example.org/me", Status::Ok),
        ("example.org:80", "http://example.org/me", Status::Ok),
        ("[::1]:8000", "http://[::1]:8000/me", Status::Ok),
        (
            "127.0.0.1:8000",
            "http://evil.example/me",
            Status::BadRequest,
        ),
        (
            "127.0.0.1:8000",
            "https://evil.example:444/me",
            Status::BadRequest,
        ),
        ("127.0.0.1:8000", "http://127.0.0.1/me", Status::BadRequest),
        (
            "127.0.0.1:8000",
            "http://127.0.0.1:8001/me",
            Status::BadRequest,
        ),
        (
            "example.org",
            "http://example.org:443/me",
            Status::BadRequest,
        ),
        (
            "example.org:443",
            "http://example.org/me",
            Status::BadRequest,
        ),
        (
            "example.org",
            "http://alice@example.org/me",
            Status::BadRequest,
        ),
        ("example.org", "http:///me", Status::BadRequest),
    ];
    for (host, signed, status) in cases {
        let header = s.authorization("GET", signed);
        let request = with_host(with_auth(client.get("/me"), Some(&header)), host);
        let reply = send(request).await;
        assert_eq!(reply.status, status, "Host {host}, uri {signed}: {reply:?}");
        if status == Status::Ok {
            check_authentication_info(&reply, &header, "alice", &token);
        }
    }

    // Without a Host (HTTP/1.0) an absolute-form uri names nothing known;
    // the origin form needs no Host.
    let header = s.authorization("GET", "http://localhost/me");
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::BadRequest, "{reply:?}");
    let header = s.authorization("GET", "/me");
    let reply = get(&client, "/me", Some(&header)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

#[rocket::async_test]
async fn uri_prefix_with_an_absolute_form_uri_still_names_the_host() {
    let (client, token) = with_alice(json!({ "uri_prefix": "/app" })).await;
    let mut s = session(&client, "alice", &token, Algorithm::Sha256).await;
    for (signed, status) in [
        ("http://proxy.example/app/me", Status::Ok),
        ("http://proxy.example/me", Status::Ok),
        ("http://evil.example/app/me", Status::BadRequest),
    ] {
        let header = s.authorization("GET", signed);
        let request = with_host(with_auth(client.get("/me"), Some(&header)), "proxy.example");
        let reply = send(request).await;
        assert_eq!(reply.status, status, "{signed}: {reply:?}");
    }
}

#[rocket::async_test]
async fn both_qops_are_offered_without_a_space() {
    let (client, _) = with_alice(json!({ "qop": ["auth", "auth-int"] })).await;
    let reply = get(&client, "/me", None).await;
    reply.assert_401(false);
    for www in reply.headers.all("WWW-Authenticate") {
        assert!(www.contains(r#"qop="auth,auth-int""#), "{www}");
    }
}

#[rocket::async_test]
async fn a_cnonce_without_qop_gets_the_challenge() {
    // What Java sends when offered auth-int only: the RFC 2069 response
    // with a cnonce.
    let (client, token) = with_alice(json!({ "qop": ["auth-int"] })).await;
    let challenge = challenge_for(&client, Algorithm::Md5).await;
    let stray = format!(
        "{}, cnonce=\"0a4f113b\"",
        rfc2069_answer(&token, &challenge, "/me")
    );
    get(&client, "/me", Some(&stray)).await.assert_401(false);

    // Where RFC 2069 answers are allowed, it is one, cnonce or not.
    let (client, token) = with_alice(json!({ "qop": ["auth-int"], "allow_rfc2069": true })).await;
    let challenge = challenge_for(&client, Algorithm::Md5).await;
    let stray = format!(
        "{}, cnonce=\"0a4f113b\"",
        rfc2069_answer(&token, &challenge, "/me")
    );
    let reply = get(&client, "/me", Some(&stray)).await;
    assert_eq!(reply.status, Status::Ok, "{reply:?}");
}

/// `method /me` to the example server with `headers`, over its own
/// connection (`Host: 127.0.0.1`).
fn send_to(server: &Server, method: &str, headers: &[(&str, &str)], body: &[u8]) -> http::Response {
    let request = headers
        .iter()
        .fold(Request::new(method, "/me"), |r, (name, value)| {
            r.header(name, value)
        })
        .body(body);
    http::send(server.port, &request, TIMEOUT)
        .unwrap_or_else(|e| panic!("{method} /me on port {}: {e}", server.port))
}

#[test]
fn curl_head_and_what_the_client_signed_over_tcp() {
    if !clients_available() {
        return;
    }
    let server = Server::start(None);
    let token = server.create_token("alice");

    let head = curl_digest_with(&["--head"], &server.url("/me"), "alice", &token);
    assert_eq!(head.status, 200, "curl -I --digest: {head:?}");

    let mut s = DigestClient::new("alice", &token, server.challenge());
    let get_signed = s.authorization("GET", "/me");
    let head = Request::new("HEAD", "/me")
        .authorization(Some(&get_signed))
        .end();
    let mut raw = Vec::new();
    let mut stream = http::connect(server.port, TIMEOUT).expect("connecting");
    stream.write_all(&head).expect("sending HEAD");
    stream
        .read_to_end(&mut raw)
        .expect("reading the answer to HEAD");
    // No body follows, whatever Content-Length says: only the status line.
    let status_line = String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .map(str::to_owned);
    assert_eq!(
        status_line.as_deref(),
        Some("HTTP/1.1 401 Unauthorized"),
        "a GET digest on HEAD"
    );

    let form = ("Content-Type", "application/x-www-form-urlencoded");
    for (signed_method, status) in [("POST", 200), ("GET", 401)] {
        let header = s.authorization(signed_method, "/me");
        let auth = ("Authorization", header.as_str());
        let r = send_to(&server, "POST", &[form, auth], b"_method=get");
        assert_eq!(
            r.status, status,
            "{signed_method} digest, overridden POST: {r:?}"
        );
        if status == 200 {
            assert_eq!(r.text(), EXPECTED_BODY);
        }
    }

    // The requests carry `Host: 127.0.0.1`.
    for (signed, status) in [
        ("http://127.0.0.1/me", 200),
        ("https://127.0.0.1:443/me", 200),
        ("http://evil.example/me", 400),
        ("https://evil.example:444/me", 400),
        ("http://127.0.0.1:444/me", 400),
    ] {
        let header = s.authorization("GET", signed);
        let r = send_to(&server, "GET", &[("Authorization", header.as_str())], b"");
        assert_eq!(r.status, status, "{signed}: {r:?}");
    }
}
