//! Plain HTTP/1.1 over TCP, one request per connection (`Connection:
//! close`): requests are raw bytes (so tests can send what no HTTP library
//! would), responses are parsed from what the server sent.
//!
//! ```ignore
//! let request = Request::get("/me").authorization(Some(&header)).end();
//! let response = http::send(port, &request, Duration::from_secs(20))?;
//! assert_eq!(response.status, 200, "{response:?}");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use super::headers::Headers;

/// A request being written: the request line, `Host` and `Connection: close`
/// first, then the header lines added, then [`Request::end`] or
/// [`Request::body`].
pub struct Request(Vec<u8>);

impl Request {
    pub fn new(method: &str, target: &str) -> Request {
        Request(
            format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
                .into_bytes(),
        )
    }

    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// Adds `name: value`; the value is written as given, bytes HTTP
    /// forbids included.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value.as_ref());
        self.0.extend_from_slice(b"\r\n");
        self
    }

    /// Adds an `Authorization` header when there is one.
    pub fn authorization(self, value: Option<&str>) -> Request {
        match value {
            Some(value) => self.header("Authorization", value),
            None => self,
        }
    }

    /// The request without a body.
    pub fn end(mut self) -> Vec<u8> {
        self.0.extend_from_slice(b"\r\n");
        self.0
    }

    /// The request with `body` (and its `Content-Length` unless it is empty).
    pub fn body(self, body: &[u8]) -> Vec<u8> {
        let mut request = if body.is_empty() {
            self
        } else {
            self.header("Content-Length", body.len().to_string())
        }
        .end();
        request.extend_from_slice(body);
        request
    }
}

/// What came back.
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a whole response: status line, headers, and a body that is
    /// complete by its framing (`Content-Length`, chunks, or up to the end).
    pub fn parse(raw: &[u8]) -> Result<Response, String> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no complete response head in {} bytes", raw.len()))?;
        let head = String::from_utf8_lossy(&raw[..end]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers = Headers(
            lines
                .map(|l| {
                    let (name, value) = l
                        .split_once(':')
                        .ok_or_else(|| format!("bad header line {l:?}"))?;
                    Ok((name.trim().to_owned(), value.trim().to_owned()))
                })
                .collect::<Result<_, String>>()?,
        );
        let rest = &raw[end + 4..];
        let body = if headers
            .all("Transfer-Encoding")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)?
        } else if let Some(length) = headers.first("Content-Length") {
            let length: usize = length
                .parse()
                .map_err(|_| format!("bad Content-Length {length:?}"))?;
            rest.get(..length)
                .ok_or_else(|| format!("body of {} bytes, {length} announced", rest.len()))?
                .to_vec()
        } else {
            rest.to_vec()
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.0)
            .field("body", &self.text())
            .finish()
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut off")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or("a chunk is cut off")?);
        body = body.get(size + 2..).ok_or("a chunk is cut off")?;
    }
}

/// A connection to `127.0.0.1:port`, reads and writes bounded by `timeout`.
pub fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Writes `request` and reads until the server closes the connection.
///
/// A write or read error is tolerated when a complete response came back
/// anyway (a server may stop reading an oversized request, answer and
/// reset the connection); without one, the error says what happened.
pub fn exchange(mut stream: TcpStream, request: &[u8]) -> Result<Response, String> {
    let write_error = stream.write_all(request).err();
    let mut raw = Vec::new();
    let read_error = stream.read_to_end(&mut raw).err();
    Response::parse(&raw)
        .map_err(|e| format!("{e} (write error {write_error:?}, read error {read_error:?})"))
}

/// [`connect`] and [`exchange`].
pub fn send(port: u16, request: &[u8], timeout: Duration) -> Result<Response, String> {
    let stream = connect(port, timeout).map_err(|e| format!("connecting to port {port}: {e}"))?;
    exchange(stream, request)
}

/// [`send`] from the local address `from` (another loopback address, as a
/// different client would come from), all within `timeout`.
pub async fn send_from(
    from: IpAddr,
    to: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
    use rocket::tokio::net::TcpSocket;

    let exchange = async {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(from, 0))
            .map_err(|e| format!("binding {from}: {e}"))?;
        let mut stream = socket
            .connect(to)
            .await
            .map_err(|e| format!("connecting to {to}: {e}"))?;
        let write_error = stream.write_all(request).await.err();
        let mut raw = Vec::new();
        let read_error = stream.read_to_end(&mut raw).await.err();
        Response::parse(&raw)
            .map_err(|e| format!("{e} (write error {write_error:?}, read error {read_error:?})"))
    };
    rocket::tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer from {to} within {timeout:?}"))?
}
