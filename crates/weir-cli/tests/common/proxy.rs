//! A TCP fault proxy for cluster tests: listens on 127.0.0.1 port 0 and forwards
//! every connection to a target address, until told to fail.
//!
//! Faults, on command:
//! - [`Proxy::blackhole`]: bytes in both directions are read and dropped, and new
//!   connections are accepted but never reach the target: both sides see a silent
//!   peer, as across a network partition (no reset, no EOF, just nothing).
//! - [`Proxy::cut`]: every open connection is shut down (both sides see EOF or a
//!   reset), as when a peer's host goes away.
//! - [`Proxy::heal`]: forwards again. Connections that were blackholed are cut
//!   first: bytes were dropped mid-stream, so a Kafka frame on them could never be
//!   whole again (real TCP would have retransmitted; the proxy cannot).
//!
//! Plain threads and blocking sockets, so tests need no runtime for it; every
//! thread ends when the proxy is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the proxy does with traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Forward both ways.
    Forward,
    /// Accept and read, forward nothing.
    Blackhole,
}

/// One proxied connection: the two sockets, for cutting it.
#[derive(Debug)]
struct Link {
    id: u64,
    client: TcpStream,
    /// `None` while blackholed from the start (the target was never dialled).
    target: Option<TcpStream>,
    /// Traffic was dropped on this link, so it must not carry any more.
    damaged: bool,
}

#[derive(Debug)]
struct Shared {
    target: Mutex<SocketAddr>,
    mode: Mutex<Mode>,
    links: Mutex<Vec<Link>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    /// Bytes forwarded (both directions), for tests of the proxy itself.
    forwarded: AtomicU64,
    /// Bytes read and dropped while blackholed.
    dropped: AtomicU64,
    /// Connections accepted so far.
    accepted: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking pump thread must not take the proxy down with it.
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Shared {
    fn mode(&self) -> Mode {
        *lock(&self.mode)
    }

    fn remove(&self, id: u64) {
        lock(&self.links).retain(|l| l.id != id);
    }

    fn mark_damaged(&self, id: u64) {
        if let Some(link) = lock(&self.links).iter_mut().find(|l| l.id == id) {
            link.damaged = true;
        }
    }

    /// Shuts down the links `pick` chooses; their pump threads then end.
    fn cut_where(&self, pick: impl Fn(&Link) -> bool) {
        let mut links = lock(&self.links);
        links.retain(|link| {
            if !pick(link) {
                return true;
            }
            let _ = link.client.shutdown(Shutdown::Both);
            if let Some(target) = &link.target {
                let _ = target.shutdown(Shutdown::Both);
            }
            false
        });
    }
}

/// A fault proxy in front of one address; see the module docs.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding from a fresh 127.0.0.1 port to `target`.
    pub(crate) fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            target: Mutex::new(target),
            mode: Mutex::new(Mode::Forward),
            links: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        });
        let s = shared.clone();
        let acceptor = thread::spawn(move || accept_loop(listener, s));
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients of the proxy connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Points new connections at another target (existing ones keep theirs).
    pub(crate) fn set_target(&self, target: SocketAddr) {
        *lock(&self.shared.target) = target;
    }

    /// Drops all traffic, on open and new connections alike, silently.
    pub(crate) fn blackhole(&self) {
        *lock(&self.shared.mode) = Mode::Blackhole;
        for link in lock(&self.shared.links).iter_mut() {
            link.damaged = true;
        }
    }

    /// Shuts down every open connection; new ones are handled per the mode.
    pub(crate) fn cut(&self) {
        self.shared.cut_where(|_| true);
    }

    /// Forwards again, after cutting the connections whose traffic was dropped.
    pub(crate) fn heal(&self) {
        *lock(&self.shared.mode) = Mode::Forward;
        self.shared.cut_where(|l| l.damaged);
    }

    /// The current mode.
    pub(crate) fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Open connections.
    pub(crate) fn open_connections(&self) -> usize {
        lock(&self.shared.links).len()
    }

    /// Connections accepted since the start.
    pub(crate) fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Bytes forwarded since the start, both directions.
    pub(crate) fn forwarded_bytes(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Bytes dropped while blackholed.
    pub(crate) fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.shared.cut_where(|_| true);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let target = match shared.mode() {
            Mode::Blackhole => None,
            Mode::Forward => {
                let addr = *lock(&shared.target);
                match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                    Ok(t) => Some(t),
                    // The target is down: the client sees its connection closed, as
                    // it would see a refusal.
                    Err(_) => continue,
                }
            }
        };
        if let Some(t) = &target {
            let _ = t.set_nodelay(true);
        }
        let (Ok(client_read), Ok(client_keep)) = (client.try_clone(), client.try_clone()) else {
            continue;
        };
        let target_clones = target.as_ref().map(|t| (t.try_clone(), t.try_clone()));
        lock(&shared.links).push(Link {
            id,
            client: client_keep,
            target: target.as_ref().and_then(|t| t.try_clone().ok()),
            damaged: target.is_none(),
        });
        match target_clones {
            Some((Ok(target_read), Ok(target_write))) => {
                let s = shared.clone();
                thread::spawn(move || pump(client_read, target_write, id, s));
                let s = shared.clone();
                thread::spawn(move || pump(target_read, client, id, s));
            }
            _ => {
                let s = shared.clone();
                thread::spawn(move || sink(client_read, id, s));
            }
        }
    }
}

/// Copies `from` to `to` while forwarding, drops bytes while blackholed; on EOF or
/// an error, shuts both down so the other direction ends too.
fn pump(mut from: TcpStream, mut to: TcpStream, id: u64, shared: Arc<Shared>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.mode() == Mode::Blackhole {
            shared.dropped.fetch_add(n as u64, Ordering::SeqCst);
            shared.mark_damaged(id);
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        shared.forwarded.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.remove(id);
}

/// Reads and drops everything from a connection accepted while blackholed.
fn sink(mut from: TcpStream, id: u64, shared: Arc<Shared>) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        shared.dropped.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = from.shutdown(Shutdown::Both);
    shared.remove(id);
}
