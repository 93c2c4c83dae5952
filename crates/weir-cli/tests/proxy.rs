//! The TCP fault proxy of the cluster tests (tests/common/proxy.rs), against an
//! echo server: it forwards, blackholes, cuts and heals as it says.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};

/// An echo server on port 0; counts the connections it accepted.
fn echo_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn connect(proxy: &Proxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Writes `text` and reads the same number of bytes back.
fn echo(stream: &mut TcpStream, text: &str) -> String {
    stream.write_all(text.as_bytes()).expect("write");
    let mut buf = vec![0u8; text.len()];
    stream.read_exact(&mut buf).expect("read the echo");
    String::from_utf8_lossy(&buf).into_owned()
}

/// Polls `probe` for up to 10 s.
fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        thread::sleep(Duration::from_millis(10));
    }
}

/// True when the peer has closed the stream (EOF or reset), false if data came.
fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn forwards_both_ways_and_counts() {
    let (target, accepted) = echo_server();
    let proxy = Proxy::start(target);
    let mut a = connect(&proxy);
    let mut b = connect(&proxy);
    assert_eq!(echo(&mut a, "hello"), "hello");
    assert_eq!(echo(&mut b, "world!"), "world!");
    assert_eq!(proxy.mode(), Mode::Forward);
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(proxy.open_connections(), 2);
    // Counted after each write, so possibly just after the echo arrived.
    eventually("every byte counted", || {
        proxy.forwarded_bytes() == 2 * (5 + 6)
    });
}

#[test]
fn blackhole_drops_traffic_silently_and_heal_cuts_the_damaged_connections() {
    let (target, accepted) = echo_server();
    let proxy = Proxy::start(target);
    let mut old = connect(&proxy);
    assert_eq!(echo(&mut old, "before"), "before");

    proxy.blackhole();
    assert_eq!(proxy.mode(), Mode::Blackhole);
    old.write_all(b"lost").expect("the write itself succeeds");
    eventually("the proxy drops the bytes", || proxy.dropped_bytes() >= 4);
    // Silence, not a close: the connection stays open with nothing coming back.
    old.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 8];
    let silent = old.read(&mut buf);
    assert!(
        matches!(&silent, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{silent:?}"
    );
    // A new connection is accepted but never reaches the target.
    let mut new = connect(&proxy);
    new.write_all(b"also lost").expect("write");
    eventually("the proxy drops the new bytes", || {
        proxy.dropped_bytes() >= 4 + 9
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    proxy.heal();
    assert_eq!(proxy.mode(), Mode::Forward);
    old.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    new.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert!(is_closed(&mut old), "a damaged stream must not carry on");
    assert!(
        is_closed(&mut new),
        "a blackholed connection is cut on heal"
    );
    let mut fresh = connect(&proxy);
    assert_eq!(echo(&mut fresh, "after"), "after");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn cut_closes_open_connections_and_new_ones_still_forward() {
    let (target, _) = echo_server();
    let proxy = Proxy::start(target);
    let mut a = connect(&proxy);
    assert_eq!(echo(&mut a, "x"), "x");
    proxy.cut();
    assert!(is_closed(&mut a));
    eventually("the link is forgotten", || proxy.open_connections() == 0);
    let mut b = connect(&proxy);
    assert_eq!(echo(&mut b, "y"), "y");
}

#[test]
fn a_down_target_looks_like_a_closed_connection_and_retargeting_works() {
    let (target, _) = echo_server();
    let down = TcpListener::bind("127.0.0.1:0").expect("bind");
    let down_addr = down.local_addr().expect("addr");
    drop(down);
    let proxy = Proxy::start(down_addr);
    let mut a = connect(&proxy);
    assert!(is_closed(&mut a));
    proxy.set_target(target);
    let mut b = connect(&proxy);
    assert_eq!(echo(&mut b, "up"), "up");
}

#[test]
fn drop_stops_listening_and_closes_everything() {
    let (target, _) = echo_server();
    let proxy = Proxy::start(target);
    let addr = proxy.addr();
    let mut a = connect(&proxy);
    assert_eq!(echo(&mut a, "x"), "x");
    drop(proxy);
    assert!(is_closed(&mut a));
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}
