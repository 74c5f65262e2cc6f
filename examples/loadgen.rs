//! A load generator that speaks HTTP Digest authentication: point it at any
//! deployment (this crate's, Apache's mod_auth_digest, ...).
//!
//! ```text
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8000/me \
//!     --user alice --token <token> --connections 8 --duration 10
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8000/ --connections 8
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8001/me \
//!     --url http://127.0.0.1:8002/me --user alice --token <token>
//! ```
//!
//! Each connection is one keep-alive HTTP/1.1 connection over a plain
//! `TcpStream`; with `--url` given several times (the instances of a
//! fleet), one to each URL, its requests going round-robin over them, all
//! on one nonce, as a balancer spreading one client's requests sends them.
//! With `--user`/`--token` a connection first sends the request
//! without credentials, answers the first Digest challenge it can parse
//! (SHA-256 before MD5 on this crate's server, MD5 on Apache), then keeps
//! its nonce: nc counts up per request, each request has a fresh cnonce. A
//! `nextnonce` in `Authentication-Info` is switched to (nc restarts at 1),
//! and a 401 with `stale=true` is re-answered on the new nonce.
//!
//! Reported: requests/s and p50/p99/max latency of the 2xx responses, and
//! every non-2xx status with its count. Only 2xx responses count as
//! throughput. The 401 that answers a connection's first (credential-less)
//! request and the 401s with `stale=true` are part of the protocol and are
//! listed but not counted as errors; every other non-2xx status, and every
//! transport or parse failure, is an error. The exit status is 1 when there
//! was any error or no 2xx response at all.
//!
//! The last line is machine-readable:
//! `RESULT rps=.. p50_ms=.. p99_ms=.. ok=.. errors=.. challenges=.. stale=.. nextnonce=..`.
//!
//! Options:
//! - `--url URL` (required): `http://host[:port]/path[?query]`; repeatable
//! - `--user U --token T`: Digest credentials (both or neither)
//! - `--connections N` (default 8)
//! - `--duration S` seconds of measurement (default 10), or `--requests N`:
//!   stop after N 2xx responses instead (then there is no warm-up)
//! - `--warmup S` seconds run before measuring (default 1)
//! - `--threads N` runtime worker threads (default 1: leave the cores to the server)
//! - `--method M` (default GET)
//! - `--header 'Name: value'`: one more request header, sent as given
//!   (repeatable)

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::tokio;
use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
use rocket::tokio::net::TcpStream;
use rocket_digest_auth::protocol::{AuthenticationInfo, ClientChallenge, DigestClient};

/// One `--url`.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    /// The request target: path and query.
    path: String,
}

#[derive(Debug, Clone)]
struct Options {
    /// Every `--url`, in the order given.
    targets: Vec<Target>,
    user: Option<String>,
    token: Option<String>,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    requests: Option<u64>,
    threads: usize,
    method: String,
    headers: Vec<String>,
}

const USAGE: &str = "usage: loadgen --url http://host:port/path [--url ...] [--user U --token T] \
[--connections N] [--duration S | --requests N] [--warmup S] [--threads N] [--method M] \
[--header 'Name: value']...";

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut urls = Vec::new();
    let mut o = Options {
        targets: Vec::new(),
        user: None,
        token: None,
        connections: 8,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        requests: None,
        threads: 1,
        method: "GET".into(),
        headers: Vec::new(),
    };
    let secs = |v: String| -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("not a number of seconds: {v}"))
    };
    let count = |v: String| -> Result<u64, String> {
        v.parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("not a positive count: {v}"))
    };
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        match arg.as_str() {
            "--url" => urls.push(value),
            "--user" => o.user = Some(value),
            "--token" => o.token = Some(value),
            "--connections" => o.connections = count(value)? as usize,
            "--duration" => o.duration = secs(value)?,
            "--warmup" => o.warmup = secs(value)?,
            "--requests" => o.requests = Some(count(value)?),
            "--threads" => o.threads = count(value)? as usize,
            "--method" => o.method = value,
            "--header" if value.contains(':') && !value.contains(['\r', '\n']) => {
                o.headers.push(value)
            }
            "--header" => return Err(format!("not a header line: {value:?}")),
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    if o.user.is_some() != o.token.is_some() {
        return Err("--user and --token go together".into());
    }
    if urls.is_empty() {
        return Err(format!("--url is required\n{USAGE}"));
    }
    o.targets = urls
        .iter()
        .map(|u| parse_url(u))
        .collect::<Result<_, _>>()?;
    if o.requests.is_some() {
        o.warmup = Duration::ZERO;
    }
    Ok(o)
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            p.parse().map_err(|_| format!("bad port in {url}"))?,
        ),
        _ => (authority.to_string(), 80),
    };
    Ok(Target { host, port, path })
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "http://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// One parsed HTTP/1.1 response (only what the generator needs).
#[derive(Debug, Default)]
struct Response {
    status: u16,
    www_authenticate: Vec<String>,
    authentication_info: Option<String>,
    close: bool,
}

/// A keep-alive connection with a read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    async fn open(t: &Target) -> std::io::Result<Conn> {
        let stream = TcpStream::connect((t.host.as_str(), t.port)).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(8192),
        })
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads `n` bytes past the buffer's start and drops them.
    async fn skip(&mut self, n: usize) -> std::io::Result<()> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        self.buf.drain(..n);
        Ok(())
    }

    /// Reads a line (without CRLF) off the buffer.
    async fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn exchange(&mut self, request: &[u8], head_only: bool) -> std::io::Result<Response> {
        self.stream.write_all(request).await?;
        let head = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 4);
                break head;
            }
            self.fill().await?;
        };
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut response = Response {
            status: status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("no status code"))?,
            close: status_line.starts_with("HTTP/1.0"),
            ..Response::default()
        };
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| bad("Content-Length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("www-authenticate") {
                response.www_authenticate.push(value.to_string());
            } else if name.eq_ignore_ascii_case("authentication-info") {
                response.authentication_info = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                response.close = v.contains("close");
            }
        }
        if head_only || response.status == 204 || response.status == 304 {
            return Ok(response);
        }
        if chunked {
            loop {
                let size_line = self.line().await?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.line().await?.is_empty() {}
                    break;
                }
                self.skip(size + 2).await?;
            }
        } else if let Some(n) = length {
            self.skip(n).await?;
        } else {
            // A body delimited by the end of the connection.
            loop {
                let mut chunk = [0u8; 8192];
                if self.stream.read(&mut chunk).await? == 0 {
                    break;
                }
            }
            self.buf.clear();
            response.close = true;
        }
        Ok(response)
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    /// Every non-2xx status, with its count.
    statuses: BTreeMap<u16, u64>,
    /// 401s answering a credential-less first request (a handshake).
    challenges: u64,
    /// 401s with stale=true on an authenticated request, re-answered.
    stale: u64,
    /// Switches to a nextnonce.
    nextnonce: u64,
    /// Wrong answers and failures.
    errors: u64,
    /// Transport or parse failures, by message.
    failures: BTreeMap<String, u64>,
}

struct Shared {
    options: Options,
    measuring: AtomicBool,
    stop: AtomicBool,
    /// 2xx responses still wanted with `--requests`.
    remaining: AtomicU64,
}

fn request_bytes(o: &Options, t: &Target, authorization: Option<&str>) -> Vec<u8> {
    let host = if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let mut r = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rocket_digest_auth-loadgen\r\n",
        o.method, t.path
    );
    for h in &o.headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if let Some(a) = authorization {
        r.push_str("Authorization: ");
        r.push_str(a);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The first challenge among `values` this client can answer.
fn pick_challenge(values: &[String]) -> Option<ClientChallenge> {
    values
        .iter()
        .find_map(|v| ClientChallenge::parse(v).ok().flatten())
}

async fn connection(shared: Arc<Shared>) -> Tally {
    let o = &shared.options;
    let head_only = o.method.eq_ignore_ascii_case("HEAD");
    let mut tally = Tally::default();
    // One keep-alive connection per target; requests go round-robin.
    let mut conns: Vec<Option<Conn>> = o.targets.iter().map(|_| None).collect();
    let mut next = 0usize;
    let mut client: Option<DigestClient> = None;
    let credentials = o.user.as_deref().zip(o.token.as_deref());
    let fail = |tally: &mut Tally, measuring: bool, what: String| {
        if measuring {
            tally.errors += 1;
            *tally.failures.entry(what).or_default() += 1;
        }
    };
    while !shared.stop.load(Ordering::Relaxed) {
        if o.requests.is_some() && shared.remaining.load(Ordering::Relaxed) == 0 {
            break;
        }
        let measuring = shared.measuring.load(Ordering::Relaxed);
        let target = &o.targets[next % o.targets.len()];
        let conn = &mut conns[next % o.targets.len()];
        next = next.wrapping_add(1);
        let c = match conn {
            Some(c) => c,
            None => match Conn::open(target).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    fail(&mut tally, measuring, format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let authorization = match (&mut client, credentials) {
            (Some(client), Some(_)) => Some(client.authorization(&o.method, &target.path)),
            _ => None,
        };
        let request = request_bytes(o, target, authorization.as_deref());
        let started = Instant::now();
        let response = match c.exchange(&request, head_only).await {
            Ok(r) => r,
            Err(e) => {
                // A server closing an idle keep-alive connection is not an
                // error of the server: reconnect and carry on.
                let idle_close = e.kind() == std::io::ErrorKind::UnexpectedEof && c.buf.is_empty();
                if !idle_close {
                    fail(&mut tally, measuring, format!("exchange: {e}"));
                }
                *conn = None;
                continue;
            }
        };
        let elapsed = started.elapsed();
        if response.close {
            *conn = None;
        }
        if (200..300).contains(&response.status) {
            if let (Some(info), Some(client)) = (&response.authentication_info, &mut client) {
                let next = AuthenticationInfo::parse(info)
                    .ok()
                    .and_then(|i| i.nextnonce);
                if let Some(next) = next {
                    client.set_nonce(&next);
                    if measuring {
                        tally.nextnonce += 1;
                    }
                }
            }
            let counted = match o.requests {
                Some(_) => shared
                    .remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok(),
                None => measuring,
            };
            if counted {
                tally
                    .latencies_us
                    .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
            }
            continue;
        }
        if measuring || o.requests.is_some() {
            *tally.statuses.entry(response.status).or_default() += 1;
        }
        let challenge = pick_challenge(&response.www_authenticate);
        match (response.status, credentials, challenge) {
            (401, Some((user, token)), Some(challenge)) => {
                let handshake = client.is_none();
                let stale = challenge.stale && !handshake;
                if measuring || o.requests.is_some() {
                    if handshake {
                        tally.challenges += 1;
                    } else if stale {
                        tally.stale += 1;
                    } else {
                        // A 401 without stale=true to an answered challenge:
                        // the server refused the answer.
                        tally.errors += 1;
                    }
                }
                client = Some(DigestClient::new(user, token, challenge));
            }
            _ => {
                if measuring || o.requests.is_some() {
                    tally.errors += 1;
                }
            }
        }
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(options))
}

async fn run(o: Options) -> ExitCode {
    let urls: Vec<String> = o.targets.iter().map(Target::to_string).collect();
    println!(
        "loadgen: {} {} ({}), {} connections, {}",
        o.method,
        urls.join(" + "),
        if o.user.is_some() {
            "Digest"
        } else {
            "no credentials"
        },
        o.connections,
        match o.requests {
            Some(n) => format!("until {n} 2xx responses"),
            None => format!(
                "{:.1} s after {:.1} s of warm-up",
                o.duration.as_secs_f64(),
                o.warmup.as_secs_f64()
            ),
        }
    );
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(o.warmup.is_zero()),
        stop: AtomicBool::new(false),
        remaining: AtomicU64::new(o.requests.unwrap_or(0)),
        options: o.clone(),
    });
    let tasks: Vec<_> = (0..o.connections)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    tokio::time::sleep(o.warmup).await;
    shared.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    if o.requests.is_none() {
        tokio::time::sleep(o.duration).await;
        shared.stop.store(true, Ordering::Relaxed);
    }
    let mut total = Tally::default();
    for task in tasks {
        let t = task.await.expect("a connection task");
        total.latencies_us.extend(t.latencies_us);
        for (s, n) in t.statuses {
            *total.statuses.entry(s).or_default() += n;
        }
        for (f, n) in t.failures {
            *total.failures.entry(f).or_default() += n;
        }
        total.challenges += t.challenges;
        total.stale += t.stale;
        total.nextnonce += t.nextnonce;
        total.errors += t.errors;
    }
    // With --duration, requests in flight at the stop finish a little later:
    // they were issued in the window, so the window is what counts.
    let secs = match o.requests {
        Some(_) => started.elapsed().as_secs_f64(),
        None => o.duration.as_secs_f64(),
    };
    let ok = total.latencies_us.len() as u64;
    total.latencies_us.sort_unstable();
    let rps = ok as f64 / secs;
    let (p50, p99) = (
        percentile(&total.latencies_us, 50.0),
        percentile(&total.latencies_us, 99.0),
    );
    let max = total
        .latencies_us
        .last()
        .map_or(f64::NAN, |&m| m as f64 / 1000.0);
    println!("2xx responses: {ok} in {secs:.2} s = {rps:.1} requests/s");
    println!("latency of 2xx: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms");
    if total.statuses.is_empty() {
        println!("non-2xx statuses: none");
    } else {
        let list: Vec<String> = total
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} x {n}"))
            .collect();
        println!(
            "non-2xx statuses: {} (of the 401s: {} handshake challenges, {} stale=true re-answered)",
            list.join(", "),
            total.challenges,
            total.stale
        );
    }
    println!("nextnonce switches: {}", total.nextnonce);
    for (f, n) in &total.failures {
        println!("failure: {f} x {n}");
    }
    println!("errors (wrong answers and failures): {}", total.errors);
    println!(
        "RESULT rps={rps:.1} p50_ms={p50:.3} p99_ms={p99:.3} ok={ok} errors={} challenges={} stale={} nextnonce={}",
        total.errors, total.challenges, total.stale, total.nextnonce
    );
    if total.errors > 0 || ok == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
