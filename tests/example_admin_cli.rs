//! The example server as a user runs it: `GET /admin` admits `admin` and
//! answers 403 to everyone else (no challenge, no failed attempt counted),
//! and the library's command line (`create-token`, `revoke-token`,
//! `list-tokens`) prints only its result on stdout, with exit codes that
//! say what happened.

mod common;

use std::path::Path;
use std::process::Output;

use rocket_digest_auth::protocol::DigestClient;

use common::example::{example_command, Server};

#[test]
fn admin_is_forbidden_to_alice_without_counting_failures_and_open_to_admin() {
    let server = Server::start(None);
    let alice_token = server.create_token("alice");
    let admin_token = server.create_token("admin");

    let mut alice = DigestClient::new("alice", &alice_token, server.challenge());
    // Twice `max_failures` (10): a refusal is not a failed guess.
    for attempt in 1..=20 {
        let reply = server.get("/admin", Some(&alice.authorization("GET", "/admin")));
        assert_eq!(reply.status, 403, "attempt {attempt}: {reply:?}");
        assert!(reply.headers.challenges().is_empty(), "{reply:?}");
        assert_eq!(reply.headers.one("Authentication-Info"), None, "{reply:?}");
    }
    let reply = server.get("/me", Some(&alice.authorization("GET", "/me")));
    assert_eq!(reply.status, 200, "alice is not locked out: {reply:?}");
    assert_eq!(reply.text(), r#"{"username":"alice"}"#);

    let mut admin = DigestClient::new("admin", &admin_token, server.challenge());
    let reply = server.get("/admin", Some(&admin.authorization("GET", "/admin")));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.text(), r#"{"admin":"admin"}"#);
    assert!(
        reply.headers.one("Authentication-Info").is_some(),
        "{reply:?}"
    );
}

/// The example binary run with `args` on the SQLite database in `dir`,
/// with `ROCKET_DIGEST_AUTH=<digest_auth>`.
fn cli(dir: &Path, digest_auth: Option<&str>, args: &[&str]) -> Output {
    example_command(dir, 0, digest_auth)
        .args(args)
        .output()
        .expect("running the example binary")
}

/// Its stdout, after checking the exit code.
fn run(dir: &Path, args: &[&str], code: i32) -> String {
    let out = cli(dir, None, args);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 on stdout");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: stdout {stdout:?}, stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `username<TAB>created<TAB>changed` with times like `2026-12-07T16:00:00Z`.
fn assert_list_line(line: &str, username: &str) {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 3, "{line:?}");
    assert_eq!(fields[0], username, "{line:?}");
    for time in &fields[1..] {
        let parsed = chrono::DateTime::parse_from_rfc3339(time);
        assert!(
            parsed.is_ok() && time.ends_with('Z') && time.len() == 20,
            "{line:?}"
        );
    }
}

#[test]
fn token_commands_print_only_their_result_and_exit_with_what_happened() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir = dir.path();

    let token = run(dir, &["create-token", "bob"], 0);
    assert_eq!(token.len(), 41, "one line of 40 hex digits: {token:?}");
    assert!(token[..40].bytes().all(|b| b.is_ascii_hexdigit()) && token.ends_with('\n'));
    run(dir, &["create-token", "alice"], 0);

    let list = run(dir, &["list-tokens"], 0);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list:?}");
    assert_list_line(lines[0], "alice");
    assert_list_line(lines[1], "bob");
    assert!(!list.contains(token.trim()), "never a token: {list:?}");

    assert_eq!(run(dir, &["revoke-token", "alice"], 0), "");
    assert_eq!(run(dir, &["revoke-token", "alice"], 1), "", "unknown user");
    let list = run(dir, &["list-tokens"], 0);
    assert_eq!(list.lines().count(), 1, "{list:?}");
    assert_list_line(list.trim_end(), "bob");

    // Usage: unknown command, wrong arguments, invalid username.
    for args in [
        &["frobnicate"][..],
        &["revoke-token"],
        &["create-token", "a", "b"],
        &["create-token", "a\tb"],
    ] {
        assert_eq!(run(dir, args, 2), "", "{args:?}");
    }
    assert!(run(dir, &["help"], 0).starts_with("usage: "));

    // A configuration mistake: the rocket does not ignite, and says why.
    let out = cli(dir, Some("{nonce_lifetime=0}"), &["list-tokens"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(out.stdout, b"", "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("digest_auth.nonce_lifetime"), "{stderr}");

    // A database that cannot be opened: the store is unavailable.
    let missing = dir.join("no such directory").join("db.sqlite");
    let out = example_command(dir, 0, None)
        .env(
            "ROCKET_DATABASES",
            format!(
                "{{digest_auth={{url=\"{}\"}}}}",
                common::sqlite_url(&missing)
            ),
        )
        .args(["create-token", "carol"])
        .output()
        .expect("running the example binary");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(out.stdout, b"", "{out:?}");
}
