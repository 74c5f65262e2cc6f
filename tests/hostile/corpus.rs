//! The hostile corpus of `tests/hostile.rs`: each entry a raw request
//! built against the running server (fresh challenges, the server's own
//! nonce key for nonces it never minted) and the status it must get.

use rocket_digest_auth::protocol::{Algorithm, Answer, ClientChallenge, NonceKey, Qop};

use super::common::http::Request;
use super::{request, send_raw, REALM, SECRET, USER};

/// What the corpus entries build their requests from.
pub struct Ctx {
    pub port: u16,
    pub token: String,
}

/// One answer, owned, to be tampered with before it is rendered.
pub struct Spec {
    username: String,
    password: String,
    challenge: ClientChallenge,
    method: String,
    uri: String,
    qop: Option<Qop>,
    nc: u32,
    cnonce: String,
    body: Vec<u8>,
}

impl Spec {
    fn header(&self) -> String {
        Answer {
            username: &self.username,
            password: &self.password,
            challenge: &self.challenge,
            method: &self.method,
            uri: &self.uri,
            qop: self.qop,
            nc: self.nc,
            cnonce: &self.cnonce,
            body: &self.body,
            userhash: false,
        }
        .header()
    }
}

impl Ctx {
    /// A fresh challenge from the server (its first, SHA-256, one).
    fn challenge(&self) -> ClientChallenge {
        let reply = send_raw(self.port, &request("GET", "/me", None, b"")).unwrap();
        assert_eq!(reply.status, 401);
        reply.headers.challenge()
    }

    /// A correct answer for `GET /me` on a fresh nonce, edited by `edit`.
    fn spec(&self, edit: impl FnOnce(&mut Spec)) -> Spec {
        let mut spec = Spec {
            username: USER.into(),
            password: self.token.clone(),
            challenge: self.challenge(),
            method: "GET".into(),
            uri: "/me".into(),
            qop: Some(Qop::Auth),
            nc: 1,
            cnonce: "0a4f113b".into(),
            body: Vec::new(),
        };
        edit(&mut spec);
        spec
    }

    /// The correct header, then `tamper` applied to its text.
    fn tampered(&self, tamper: impl FnOnce(String) -> String) -> Vec<u8> {
        tamper(self.spec(|_| {}).header()).into_bytes()
    }

    fn get_me(&self, authorization: &[u8]) -> Vec<u8> {
        request("GET", "/me", Some(authorization), b"")
    }
}

/// Replaces the value of parameter `name` (as `Answer` renders it).
pub fn set_param(header: &str, name: &str, value: &str) -> String {
    let start = header
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("{name} in {header}"))
        + name.len()
        + 2;
    let end = header[start..]
        .find(", ")
        .map_or(header.len(), |i| start + i);
    format!("{}{value}{}", &header[..start], &header[end..])
}

pub type Build = Box<dyn Fn(&Ctx) -> Vec<u8>>;

/// One entry: expected status, whether a 401 must carry `stale=true`, what
/// it is, and how to build the raw request.
pub struct Case {
    pub status: u16,
    pub stale: bool,
    pub name: &'static str,
    pub build: Build,
}

pub fn case(status: u16, name: &'static str, build: impl Fn(&Ctx) -> Vec<u8> + 'static) -> Case {
    Case {
        status,
        stale: false,
        name,
        build: Box::new(build),
    }
}

pub fn stale_case(name: &'static str, build: impl Fn(&Ctx) -> Vec<u8> + 'static) -> Case {
    Case {
        status: 401,
        stale: true,
        name,
        build: Box::new(build),
    }
}

/// The corpus. 400: refused as malformed (by the parser, the verifier, or
/// hyper for bytes HTTP forbids in a header); 401: a challenge (no usable
/// Digest header, or an answer that is not right for this server); 431:
/// hyper refuses a request head over its limit (about 400 KB) before Rocket
/// sees it. `stale`: the 401 carries `stale=true`.
pub fn corpus() -> Vec<Case> {
    vec![
        // Truncation and broken syntax.
        case(400, "truncated quote inside username", |c| {
            c.get_me(b"Digest username=\"ali")
        }),
        case(400, "truncated: last closing quote removed", |c| {
            c.get_me(&c.tampered(|h| h[..h.len() - 1].to_owned()))
        }),
        case(400, "header cut in the middle of a parameter name", |c| {
            c.get_me(&c.tampered(|h| {
                let at = h.find(", realm").unwrap() + 5;
                h[..at].to_owned()
            }))
        }),
        case(400, "unterminated escape at the end", |c| {
            c.get_me(b"Digest username=\"alice\\")
        }),
        case(400, "scheme only", |c| c.get_me(b"Digest")),
        case(400, "only separators", |c| c.get_me(b"Digest , , ,")),
        case(400, "33 parameters", |c| {
            c.get_me(&c.tampered(|h| {
                let extra: Vec<String> = (0..23).map(|i| format!("x{i}=1")).collect();
                format!("{h}, {}", extra.join(", "))
            }))
        }),
        // Duplicated parameters: refused, not resolved by first or last wins.
        case(400, "two response= (bogus first, correct second)", |c| {
            c.get_me(&c.tampered(|h| {
                h.replacen(
                    "Digest ",
                    "Digest response=\"00000000000000000000000000000000\", ",
                    1,
                )
            }))
        }),
        case(400, "two response= with the same correct value", |c| {
            c.get_me(&c.tampered(|h| {
                let response = h.split("response=\"").nth(1).unwrap()[..64].to_owned();
                format!("{h}, response=\"{response}\"")
            }))
        }),
        case(400, "two nc=", |c| {
            c.get_me(&c.tampered(|h| format!("{h}, nc=00000002")))
        }),
        case(400, "two nc= differing in case (NC=)", |c| {
            c.get_me(&c.tampered(|h| format!("{h}, NC=00000001")))
        }),
        case(400, "two username=", |c| {
            c.get_me(&c.tampered(|h| format!("{h}, username=\"mallory\"")))
        }),
        case(400, "username and username* together", |c| {
            c.get_me(&c.tampered(|h| format!("{h}, username*=UTF-8''alice")))
        }),
        // Huge values.
        case(431, "a 1 MB header (refused by hyper)", |c| {
            let mut h = b"Digest username=\"".to_vec();
            h.resize(h.len() + (1 << 20), b'a');
            h.push(b'"');
            c.get_me(&h)
        }),
        case(400, "a 100 KB username", |c| {
            c.get_me(
                &c.tampered(|h| {
                    set_param(&h, "username", &format!("\"{}\"", "a".repeat(100 << 10)))
                }),
            )
        }),
        case(
            400,
            "a header one byte over the parser's 16 KB limit",
            |c| {
                let base = c.spec(|_| {}).header();
                let pad = 16 * 1024 + 1 - base.len() - ", x=\"\"".len();
                c.get_me(format!("{base}, x=\"{}\"", "p".repeat(pad)).as_bytes())
            },
        ),
        case(401, "a 10 KB nonce", |c| {
            c.get_me(
                &c.tampered(|h| set_param(&h, "nonce", &format!("\"{}\"", "n".repeat(10 << 10)))),
            )
        }),
        case(400, "a 257-byte cnonce", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "cnonce", &format!("\"{}\"", "c".repeat(257)))))
        }),
        // Bytes HTTP does not allow in a header value: hyper answers 400.
        case(400, "NUL byte in username", |c| {
            c.get_me(&c.tampered(|h| h.replacen("alice", "al\0ice", 1)))
        }),
        case(400, "control byte 0x01 in a quoted value", |c| {
            c.get_me(&c.tampered(|h| h.replacen("alice", "al\x01ice", 1)))
        }),
        case(400, "ESC byte in a quoted value", |c| {
            c.get_me(&c.tampered(|h| h.replacen("alice", "al\x1bice", 1)))
        }),
        case(400, "DEL byte in a quoted value", |c| {
            c.get_me(&c.tampered(|h| h.replacen("alice", "al\x7fice", 1)))
        }),
        case(400, "bare CR inside the header", |c| {
            c.get_me(&c.tampered(|h| h.replacen("alice", "al\rice", 1)))
        }),
        case(400, "obs-fold line continuation", |c| {
            c.get_me(&c.tampered(|h| h.replacen(", realm", ",\r\n realm", 1)))
        }),
        // Non-UTF-8 bytes reach Rocket, which drops the header: a challenge.
        case(401, "non-UTF-8 bytes in username", |c| {
            let h = c.spec(|_| {}).header();
            let mut raw = h.replacen("alice", "al\u{1}ice", 1).into_bytes();
            let at = raw.iter().position(|&b| b == 1).unwrap();
            raw.splice(at..=at, [0xff, 0xfe]);
            c.get_me(&raw)
        }),
        case(401, "a lone continuation byte 0x80 after the scheme", |c| {
            c.get_me(b"Digest \x80username=\"alice\"")
        }),
        // nc values.
        case(400, "nc=0", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "0")))
        }),
        case(400, "nc=-1", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "-1")))
        }),
        case(400, "nc=0x10", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "0x10")))
        }),
        case(400, "nc of 9 hex digits", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "000000001")))
        }),
        case(400, "nc=\"\" (empty)", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "\"\"")))
        }),
        case(400, "nc= (no value)", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nc", "")))
        }),
        case(401, "nc=ffffffff with a wrong token", |c| {
            let spec = c.spec(|s| {
                s.nc = u32::MAX;
                s.password = "not the token".into();
            });
            c.get_me(spec.header().as_bytes())
        }),
        // The top count with the right token is a legitimate request; its
        // replay must not wrap around into acceptance.
        stale_case("nc=ffffffff correct, then replayed", |c| {
            let h = c.spec(|s| s.nc = u32::MAX).header();
            let first = send_raw(c.port, &c.get_me(h.as_bytes())).unwrap();
            assert_eq!(first.status, 200, "nc=ffffffff with the right token");
            c.get_me(h.as_bytes())
        }),
        // Empty values.
        case(401, "username=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "username", "\"\"")))
        }),
        case(401, "realm=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "realm", "\"\"")))
        }),
        case(401, "nonce=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "nonce", "\"\"")))
        }),
        case(400, "uri=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "uri", "\"\"")))
        }),
        case(400, "response=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "response", "\"\"")))
        }),
        case(400, "cnonce=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "cnonce", "\"\"")))
        }),
        case(400, "qop=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "qop", "\"\"")))
        }),
        case(400, "algorithm=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "algorithm", "\"\"")))
        }),
        case(401, "opaque=\"\"", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "opaque", "\"\"")))
        }),
        // Other malformed values.
        case(400, "response is not hex", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "response", "\"zz\"")))
        }),
        case(400, "qop=auth-conf", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "qop", "auth-conf")))
        }),
        case(400, "algorithm=SHA-1 (unknown)", |c| {
            c.get_me(&c.tampered(|h| set_param(&h, "algorithm", "SHA-1")))
        }),
        case(400, "username* with an unknown charset", |c| {
            c.get_me(&c.tampered(|h| {
                set_param(&h, "username", "\"x\"").replacen(
                    "username=\"x\"",
                    "username*=KOI8-R''alice",
                    1,
                )
            }))
        }),
        case(400, "uri names another path", |c| {
            let spec = c.spec(|s| s.uri = "/other".into());
            c.get_me(spec.header().as_bytes())
        }),
        // Right syntax, wrong for this server: a challenge.
        case(
            401,
            "correct digest under SHA-512-256, which is not offered",
            |c| {
                let spec = c.spec(|s| s.challenge.algorithm = Algorithm::Sha512_256);
                c.get_me(spec.header().as_bytes())
            },
        ),
        case(
            401,
            "correct digest under MD5-sess, which is not offered",
            |c| {
                let spec = c.spec(|s| s.challenge.algorithm = Algorithm::Md5Sess);
                c.get_me(spec.header().as_bytes())
            },
        ),
        case(401, "correct digest for another realm", |c| {
            let spec = c.spec(|s| s.challenge.realm = "another realm".into());
            c.get_me(spec.header().as_bytes())
        }),
        case(401, "opaque tampered", |c| {
            let spec = c.spec(|s| s.challenge.opaque = Some("opaque-7f3b".into()));
            c.get_me(spec.header().as_bytes())
        }),
        case(401, "opaque left out", |c| {
            let spec = c.spec(|s| s.challenge.opaque = None);
            c.get_me(spec.header().as_bytes())
        }),
        case(
            401,
            "correct digest over a nonce minted with another secret",
            |c| {
                let other =
                    NonceKey::new(b"another secret, also thirty-two bytes long", REALM, None);
                let spec = c.spec(|s| s.challenge.nonce = other.mint(now()));
                c.get_me(spec.header().as_bytes())
            },
        ),
        case(
            401,
            "correct digest over a nonce from the server's key, dated 1 h ahead",
            |c| {
                let key = NonceKey::new(SECRET.as_bytes(), REALM, None);
                let spec = c.spec(|s| s.challenge.nonce = key.mint(now() + 3600));
                c.get_me(spec.header().as_bytes())
            },
        ),
        // The control for the entry above: the same key dated now yields a
        // nonce the server recognises as its own (stale only because the
        // memory store binds nonces to the process), so the 401 above is the
        // timestamp's doing, not a wrong key's.
        stale_case("control: the server's key dated now", |c| {
            let key = NonceKey::new(SECRET.as_bytes(), REALM, None);
            let spec = c.spec(|s| s.challenge.nonce = key.mint(now()));
            c.get_me(spec.header().as_bytes())
        }),
        case(401, "wrong token", |c| {
            let spec = c.spec(|s| s.password = "guess".into());
            c.get_me(spec.header().as_bytes())
        }),
        case(401, "unknown user", |c| {
            let spec = c.spec(|s| s.username = "mallory".into());
            c.get_me(spec.header().as_bytes())
        }),
        case(401, "userhash=true, which is not offered", |c| {
            c.get_me(&c.tampered(|h| format!("{h}, userhash=true")))
        }),
        case(
            401,
            "correct RFC 2069 answer (no qop), which is not allowed",
            |c| {
                let spec = c.spec(|s| s.qop = None);
                c.get_me(spec.header().as_bytes())
            },
        ),
        case(401, "another scheme (Basic)", |c| {
            c.get_me(b"Basic YWxpY2U6c2VjcmV0")
        }),
        case(
            400,
            "two Authorization headers, Basic then a correct Digest",
            |c| {
                let good = c.spec(|_| {}).header();
                Request::get("/me")
                    .header("Authorization", "Basic YWxpY2U6c2VjcmV0")
                    .header("Authorization", good)
                    .end()
            },
        ),
        case(400, "two Authorization headers, the first malformed", |c| {
            let good = c.spec(|_| {}).header();
            Request::get("/me")
                .header("Authorization", "Digest username=\"alice")
                .header("Authorization", good)
                .end()
        }),
        stale_case("a correct request replayed", |c| {
            let h = c.spec(|_| {}).header();
            let first = send_raw(c.port, &c.get_me(h.as_bytes())).unwrap();
            assert_eq!(first.status, 200, "the original request");
            c.get_me(h.as_bytes())
        }),
        // auth-int where the body cannot be checked (request guard only).
        case(
            400,
            "qop=auth-int with a body on a request-guard POST route",
            |c| {
                let body = b"amount=1000000&to=mallory".to_vec();
                let spec = c.spec(|s| {
                    s.qop = Some(Qop::AuthInt);
                    s.method = "POST".into();
                    s.uri = "/submit".into();
                    s.body = body.clone();
                });
                request("POST", "/submit", Some(spec.header().as_bytes()), &body)
            },
        ),
        case(
            400,
            "qop=auth-int with a body on a request-guard GET route",
            |c| {
                let spec = c.spec(|s| {
                    s.qop = Some(Qop::AuthInt);
                    s.body = b"x".to_vec();
                });
                request("GET", "/me", Some(spec.header().as_bytes()), b"x")
            },
        ),
    ]
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
