//! Credentials from an Apache `htdigest` file written by Apache's own
//! `htdigest` tool, served over TCP and answered by curl.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::require::{missing_programs, HTDIGEST};
use common::server::Running;
use rocket::figment::Figment;
use rocket::routes;
use rocket_digest_auth::DigestAuth;

const REALM: &str = "htdigest test";

/// Adds (or creates the file with) a user, with Apache's `htdigest` tool.
fn htdigest(file: &Path, user: &str, password: &str, create: bool) {
    let mut cmd = Command::new("htdigest");
    if create {
        cmd.arg("-c");
    }
    let mut child = cmd
        .arg(file)
        .arg(REALM)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect(
            "htdigest (Debian package apache2-utils) must be installed; ./scripts/test installs it",
        );
    let stdin = child.stdin.as_mut().expect("stdin");
    writeln!(stdin, "{password}\n{password}").expect("write password");
    assert!(child.wait().expect("htdigest ran").success());
}

fn figment(file: &Path, algorithms: &[&str]) -> Figment {
    rocket::Config::figment()
        .merge(("port", 0))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"))
        .merge(("digest_auth.realm", REALM))
        .merge(("digest_auth.algorithms", algorithms))
        .merge(("digest_auth.store", "memory"))
        .merge(("digest_auth.htdigest_file", file.to_str().unwrap()))
}

/// `curl --digest` status code for `user:password` at `port`.
fn curl(port: u16, user: &str, password: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--digest",
            "-u",
        ])
        .arg(format!("{user}:{password}"))
        .arg(format!("http://127.0.0.1:{port}/me"))
        .output()
        .expect("curl must be installed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn users_from_an_htdigest_file_authenticate_and_new_users_appear_live() {
    if !HTDIGEST.available(missing_programs(&["htdigest", "curl"])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.htdigest");
    htdigest(&file, "alice", "alice secret", true);

    let rocket = rocket::custom(figment(&file, &["MD5", "MD5-sess"]))
        .attach(DigestAuth::fairing())
        .mount("/", routes![common::me]);
    let server = Running::start(rocket).expect("MD5-only config launches");

    let check = |user, password| curl(server.port, user, password);
    assert_eq!(check("alice", "alice secret"), "200");
    assert_eq!(check("alice", "wrong"), "401");
    assert_eq!(check("bob", "bob secret"), "401");

    // A user added while the server runs is picked up without a restart.
    htdigest(&file, "bob", "bob secret", false);
    assert_eq!(check("bob", "bob secret"), "200");
    // And a changed password replaces the old one.
    htdigest(&file, "alice", "new secret", false);
    assert_eq!(check("alice", "new secret"), "200");
    assert_eq!(check("alice", "alice secret"), "401");

    server.stop().expect("clean shutdown");
}

#[rocket::async_test]
async fn offering_sha256_with_an_md5_only_file_is_refused_at_ignite() {
    if !HTDIGEST.available(missing_programs(&["htdigest"])) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.htdigest");
    htdigest(&file, "alice", "pw", true);
    let err = rocket::custom(figment(&file, &["SHA-256", "MD5"]))
        .attach(DigestAuth::fairing())
        .ignite()
        .await
        .expect_err("SHA-256 cannot be served from MD5 HA1 values");
    assert!(err.to_string().contains("fairing"), "{err}");
    // The message naming the key goes to the log; check it directly too.
    let config = DigestAuth::config(&figment(&file, &["SHA-256", "MD5"])).unwrap();
    let store = rocket_digest_auth::store::HtdigestFile::open(&file, REALM).unwrap();
    let counts = rocket_digest_auth::store::MemoryStore::new(
        rocket_digest_auth::store::StoreOptions::new(REALM),
    );
    let err = rocket_digest_auth::verifier::Verifier::new(
        config,
        std::sync::Arc::new(store),
        std::sync::Arc::new(counts),
    )
    .expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("digest_auth.algorithms"), "{message}");
    assert!(message.contains("SHA-256"), "{message}");
}

#[rocket::async_test]
async fn a_missing_htdigest_file_is_refused_at_ignite_naming_the_key() {
    let figment = figment(Path::new("/nonexistent/users.htdigest"), &["MD5"]);
    let err = rocket::custom(figment)
        .attach(DigestAuth::fairing())
        .ignite()
        .await
        .expect_err("a missing file stops ignite");
    assert!(err.to_string().contains("fairing"), "{err}");
    let message =
        match rocket_digest_auth::store::HtdigestFile::open("/nonexistent/users.htdigest", REALM) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a missing file must not open"),
        };
    assert!(message.contains("/nonexistent/users.htdigest"), "{message}");
}
