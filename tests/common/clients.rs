//! Real HTTP clients nobody here wrote, run against a server: curl
//! `--digest`, Python `requests` and `httpx` (through
//! `tests/clients/digest_clients.py`), Perl's LWP and GNU wget. Each
//! reports the final status and body and the `Authorization` header it sent
//! last.
//!
//! ```ignore
//! if !clients_available() { return; }
//! curl_digest(&server.url("/me"), "alice", &token).assert_alice();
//! ```

use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rocket_digest_auth::protocol::Authorization;

use super::require::{missing_programs, missing_python_modules, REAL_CLIENTS};

/// The example server's answer to alice on `GET /me`.
pub const EXPECTED_BODY: &str = r#"{"username":"alice"}"#;

/// Runs a tool that CI installs; a missing one fails with how to get it.
pub fn run_tool(program: &str, args: &[&str], install: &str) -> Output {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; these tests need it ({install})")
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// What a real client got, and the `Authorization` header it sent last.
#[derive(Debug)]
pub struct ClientResult {
    pub status: u16,
    pub body: String,
    pub authorization: Option<String>,
}

impl ClientResult {
    /// Asserts the request succeeded as alice; returns what the client sent.
    pub fn assert_alice(&self) -> Authorization<'static> {
        assert_eq!(
            (self.status, self.body.as_str()),
            (200, EXPECTED_BODY),
            "{self:?}"
        );
        parse_authorization(self.authorization.as_deref())
    }
}

/// `curl --digest --user user:token url`.
pub fn curl_digest(url: &str, user: &str, token: &str) -> ClientResult {
    curl_digest_with(&[], url, user, token)
}

/// [`curl_digest`] with more of curl's options (e.g. `--head`).
pub fn curl_digest_with(options: &[&str], url: &str, user: &str, token: &str) -> ClientResult {
    let credentials = format!("{user}:{token}");
    let mut args = vec![
        "--silent",
        "--show-error",
        "--verbose",
        "--max-time",
        "20",
        "--digest",
        "--user",
        &credentials,
        "--write-out",
        "\n%{http_code}",
    ];
    args.extend_from_slice(options);
    args.push(url);
    let out = run_tool("curl", &args, "apt-get install curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {stderr}");
    let (body, status) = stdout.rsplit_once('\n').expect("curl's --write-out line");
    let authorization = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> Authorization: "))
        .next_back()
        .map(|a| a.trim().to_owned());
    ClientResult {
        status: status.trim().parse().expect("curl's status code"),
        body: body.to_owned(),
        authorization,
    }
}

/// The requests made by a Python library, as `tests/clients/digest_clients.py`
/// reports them, with how many challenges each answered.
pub fn python_client(args: &[&str]) -> Vec<(ClientResult, u64)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/digest_clients.py");
    let script = script.to_str().expect("UTF-8 path");
    let mut full = vec![script];
    full.extend_from_slice(args);
    let out = run_tool(
        "python3",
        &full,
        "apt-get install python3; python3 -m pip install requests httpx",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python3 {} failed ({}): {}\n{stdout}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let result = ClientResult {
                status: v["status"].as_u64().expect("status") as u16,
                body: v["body"].as_str().expect("body").to_owned(),
                authorization: v["authorization"].as_str().map(str::to_owned),
            };
            let answered = v["challenges_answered"].as_u64().expect("history");
            (result, answered)
        })
        .collect()
}

/// Perl's `LWP::UserAgent` (Debian `libwww-perl`) getting `url` with the
/// credentials for `realm`.
pub fn perl_lwp(url: &str, realm: &str, user: &str, token: &str) -> ClientResult {
    const SCRIPT: &str = r#"
        use strict; use warnings; use LWP::UserAgent; use URI;
        my ($url, $realm, $user, $token) = @ARGV;
        my $ua = LWP::UserAgent->new(timeout => 20);
        $ua->credentials(URI->new($url)->host_port, $realm, $user, $token);
        my $res = $ua->get($url);
        print $res->code, "\n", ($res->request->header("Authorization") // ""), "\n";
        print $res->decoded_content;
    "#;
    let out = run_tool(
        "perl",
        &["-e", SCRIPT, url, realm, user, token],
        "apt-get install libwww-perl",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "perl LWP failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.splitn(3, '\n');
    let status = lines.next().and_then(|s| s.parse().ok());
    let authorization = lines.next().filter(|a| !a.is_empty()).map(str::to_owned);
    ClientResult {
        status: status.unwrap_or_else(|| panic!("LWP printed no status: {stdout}")),
        authorization,
        body: lines.next().unwrap_or_default().to_owned(),
    }
}

/// GNU `wget --user user --password token url`, with its debug output for
/// the headers it sent and got.
pub fn wget_digest(url: &str, user: &str, token: &str) -> ClientResult {
    let user = format!("--user={user}");
    let password = format!("--password={token}");
    let args = [
        "--no-config",
        "--no-proxy",
        "--debug",
        "--tries=1",
        "--timeout=20",
        "--output-document=-",
        &user,
        &password,
        url,
    ];
    // wget exits non-zero on a refusal: the status comes from its log.
    let out = run_tool("wget", &args, "apt-get install wget");
    let log = String::from_utf8_lossy(&out.stderr);
    let last_with = |prefix: &str| {
        log.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .next_back()
            .map(|v| v.trim().to_owned())
    };
    let status = last_with("HTTP/1.1 ")
        .and_then(|line| line.get(..3).and_then(|code| code.parse().ok()))
        .unwrap_or_else(|| panic!("no response in wget's log ({}):\n{log}", out.status));
    ClientResult {
        status,
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
        authorization: last_with("Authorization: "),
    }
}

/// Whether Perl's LWP and GNU wget are both here.
pub fn lwp_and_wget_available() -> bool {
    let lwp = || {
        let loads = Command::new("perl")
            .args(["-MLWP::UserAgent", "-e1"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!loads).then(|| "perl cannot load LWP::UserAgent".to_owned())
    };
    REAL_CLIENTS.available(missing_programs(&["perl", "wget"]).or_else(lwp))
}

/// Whether curl and Python's requests and httpx are all here.
pub fn clients_available() -> bool {
    REAL_CLIENTS.available(
        missing_programs(&["curl", "python3"])
            .or_else(|| missing_python_modules(&["requests", "httpx"])),
    )
}

pub fn parse_authorization(header: Option<&str>) -> Authorization<'static> {
    let header = header.expect("the client sent an Authorization header");
    Authorization::parse(header)
        .unwrap_or_else(|e| panic!("{header:?}: {e:?}"))
        .expect("a Digest Authorization header")
        .into_owned()
}
