//! Precomputes valid `Authorization: Digest` values for replay by a load
//! generator that does no Digest work of its own (wrk, the callgrind client
//! of bench/instructions.sh): the generator then costs the same on an open
//! and a protected route.
//!
//! ```text
//! cargo run --release --example headers -- --url http://127.0.0.1:8000/auth/hello \
//!     --user alice --token <token> --count 2000 --out /tmp/h
//! ```
//!
//! For each of `--streams` streams (one per wrk thread) it asks the server
//! for a challenge (a request without credentials, answered 401), takes the
//! one with `--algorithm`, picks one cnonce and writes `--count` header
//! values with nc 1, 2, ... to `PREFIX-<stream>.txt`, one per line (to stdout
//! without `--out`). The server must be the one that will check them: its
//! nonces are signed with its secret and, with the memory store, bound to
//! its process.
//!
//! `--interleave I` spreads each stream over I files, as one client whose
//! requests alternate between I instances (bench/wrk.sh's fleet, a wrk
//! thread per file, each pinned to an instance): file `PREFIX-<s*I+j>.txt`
//! holds stream s's nc j+1, j+1+I, j+1+2I, ... (`--count` lines per file),
//! all on the stream's one nonce and cnonce.
//!
//! Options:
//! - `--url URL` (required): `http://host[:port]/path`, the protected route
//! - `--user U --token T` (required)
//! - `--count N` headers per file (default 1000)
//! - `--streams K` (default 1)
//! - `--interleave I` files per stream (default 1; needs `--out` when above 1)
//! - `--algorithm A` (default SHA-256)
//! - `--method M` (default GET)
//! - `--out PREFIX`

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use rand::RngCore;
use rocket_digest_auth::protocol::{Algorithm, Answer, ClientChallenge, Qop};

struct Options {
    authority: String,
    target: String,
    user: String,
    token: String,
    count: u32,
    streams: u32,
    interleave: u32,
    algorithm: Algorithm,
    method: String,
    out: Option<String>,
}

const USAGE: &str = "usage: headers --url http://host:port/path --user U --token T \
[--count N] [--streams K] [--interleave I] [--algorithm A] [--method M] [--out PREFIX]";

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut user, mut token, mut out) = (None, None, None, None);
    let mut o = Options {
        authority: String::new(),
        target: String::new(),
        user: String::new(),
        token: String::new(),
        count: 1000,
        streams: 1,
        interleave: 1,
        algorithm: Algorithm::Sha256,
        method: "GET".into(),
        out: None,
    };
    let count = |v: String| -> Result<u32, String> {
        v.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("not a positive count: {v}"))
    };
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        match arg.as_str() {
            "--url" => url = Some(value),
            "--user" => user = Some(value),
            "--token" => token = Some(value),
            "--count" => o.count = count(value)?,
            "--streams" => o.streams = count(value)?,
            "--interleave" => o.interleave = count(value)?,
            "--algorithm" => {
                o.algorithm = value
                    .parse()
                    .map_err(|_| format!("unknown algorithm {value}"))?
            }
            "--method" => o.method = value,
            "--out" => out = Some(value),
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, target) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    o.authority = authority.to_string();
    o.target = target.to_string();
    o.user = user.ok_or_else(|| format!("--user is required\n{USAGE}"))?;
    o.token = token.ok_or_else(|| format!("--token is required\n{USAGE}"))?;
    if o.interleave > 1 && out.is_none() {
        return Err(format!("--interleave needs --out\n{USAGE}"));
    }
    o.out = out;
    Ok(o)
}

/// A fresh challenge with the wanted algorithm, from one request without
/// credentials.
fn challenge(o: &Options) -> Result<ClientChallenge, String> {
    let mut stream = TcpStream::connect(&o.authority).map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        o.method, o.target, o.authority
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("www-authenticate"))
        .filter_map(|(_, value)| ClientChallenge::parse(value.trim()).ok().flatten())
        .find(|c| c.algorithm == o.algorithm)
        .ok_or_else(|| {
            let status = head.lines().next().unwrap_or_default();
            format!("no {} challenge in the answer ({status})", o.algorithm)
        })
}

/// One stream: a challenge, a cnonce, and nc 1, 2, ... dealt in turn to
/// `outs` (`--count` each).
fn write_stream(o: &Options, outs: Vec<Box<dyn Write>>) -> Result<(), String> {
    let challenge = challenge(o)?;
    let mut cnonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut cnonce);
    let cnonce = hex::encode(cnonce);
    let qop = challenge.qop.contains(&Qop::Auth).then_some(Qop::Auth);
    let mut outs: Vec<_> = outs.into_iter().map(BufWriter::new).collect();
    let files = outs.len() as u32;
    let total = o
        .count
        .checked_mul(files)
        .ok_or("--count times --interleave is too large")?;
    for nc in 1..=total {
        let header = Answer {
            username: &o.user,
            password: &o.token,
            challenge: &challenge,
            method: &o.method,
            uri: &o.target,
            qop,
            nc,
            cnonce: &cnonce,
            body: b"",
            userhash: false,
        }
        .header();
        let out = &mut outs[((nc - 1) % files) as usize];
        writeln!(out, "{header}").map_err(|e| format!("write: {e}"))?;
    }
    outs.iter_mut()
        .try_for_each(|out| out.flush())
        .map_err(|e| format!("write: {e}"))
}

fn run(o: &Options) -> Result<(), String> {
    for s in 0..o.streams {
        let outs: Vec<Box<dyn Write>> = match &o.out {
            Some(prefix) => (0..o.interleave)
                .map(|j| {
                    let path = format!("{prefix}-{}.txt", s * o.interleave + j);
                    std::fs::File::create(&path)
                        .map(|f| Box::new(f) as Box<dyn Write>)
                        .map_err(|e| format!("create {path}: {e}"))
                })
                .collect::<Result<_, _>>()?,
            None => vec![Box::new(std::io::stdout().lock())],
        };
        write_stream(o, outs)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse_args().and_then(|o| run(&o));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("headers: {e}");
            ExitCode::FAILURE
        }
    }
}
