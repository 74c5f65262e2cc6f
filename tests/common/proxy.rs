//! A TCP forwarder whose link can be cut or stalled: a database outage or a
//! network partition without stopping a server other tests use.

use std::io::{Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the [`Proxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Link {
    /// Forwards both ways.
    Up,
    /// The database stopped: open connections are cut, new ones refused.
    Refused,
    /// A network partition: connections stay open, nothing gets through
    /// until the link is up again (then everything held is delivered).
    Stalled,
}

/// A TCP forwarder to the database whose link can be cut or stalled: an
/// outage without stopping a PostgreSQL server other tests use.
pub struct Proxy {
    pub port: u16,
    link: Arc<AtomicU8>,
    closing: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(host: &str, port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            link: Arc::new(AtomicU8::new(Link::Up as u8)),
            closing: Arc::new(AtomicBool::new(false)),
            live: Arc::default(),
        };
        let (link, closing, live) = (
            proxy.link.clone(),
            proxy.closing.clone(),
            proxy.live.clone(),
        );
        let upstream = format!("{host}:{port}");
        thread::spawn(move || {
            for client in listener.incoming() {
                if closing.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if link.load(Ordering::SeqCst) == Link::Refused as u8 {
                    let _ = client.shutdown(NetShutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let link = link.clone();
                    thread::spawn(move || relay(from, to, &link));
                }
                live.lock().unwrap().extend([client, server]);
            }
        });
        proxy
    }

    pub fn set(&self, link: Link) {
        self.link.store(link as u8, Ordering::SeqCst);
        if link == Link::Refused {
            for stream in self.live.lock().unwrap().drain(..) {
                let _ = stream.shutdown(NetShutdown::Both);
            }
        }
    }
}

/// Copies `from` to `to`, holding data back while the link is stalled.
pub fn relay(mut from: TcpStream, mut to: TcpStream, link: &AtomicU8) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while link.load(Ordering::SeqCst) == Link::Stalled as u8 {
            thread::sleep(Duration::from_millis(10));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(NetShutdown::Both);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Link::Refused);
        self.closing.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
